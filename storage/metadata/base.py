"""The declarative base of the metadata tables: naming convention and column types.

Its own module so that the table modules (``models``, ``models_alerting``, ...) all import it
and ``models`` imports them to register every table, without an import circle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = ["NAMING_CONVENTION", "Base", "DefinitionColumns", "UTCDateTime"]

# Deterministic constraint names: Alembic needs names to alter or drop constraints, and SQLite
# batch migrations recreate tables, so unnamed constraints would differ between backends.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",  # indexes below are named explicitly
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz`` and returns it in the session time zone; SQLite has no
    time zone at all. Values are converted to UTC on the way in (naive values are refused, as
    their meaning is unknown), stored naive on SQLite so text comparison stays chronological,
    and always come back as aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class DefinitionColumns(Base):
    """The columns of a versioned, audited definition's table (monitors, KPIs, alert rules;
    ``storage.metadata.definitions``) besides its id and body. Abstract: each table declares
    ``name`` with its own length, and these columns come after its own."""

    __abstract__ = True

    name: Mapped[str]
    version: Mapped[int] = mapped_column(Integer, default=1)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
