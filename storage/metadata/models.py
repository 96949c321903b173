"""ORM tables of the metadata store (SQLAlchemy 2 typed declarative).

These classes never leave ``storage.metadata``: the store converts rows to the frozen types of
``storage.types`` before returning. Every schema change here needs an Alembic migration in
``storage/migrations/versions``; ``tests/storage/test_metadata_migrations.py`` fails otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names: Alembic needs names to alter or drop constraints, and SQLite
# batch migrations recreate tables, so unnamed constraints would differ between backends.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",  # indexes below are named explicitly
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLE_VALUES = ("admin", "engineer", "viewer")
TASK_VALUES = ("binary", "multiclass", "regression")


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


class TenantRow(Base):
    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (CheckConstraint(f"task IN {TASK_VALUES!r}", name="task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(String(32))
    # ``ModelSchema.to_dict()``; ``task`` is duplicated in a column so it can be filtered on.
    schema: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLE_VALUES!r}", name="role"),
        Index("ix_api_keys_key_hash", "key_hash", unique=True),
        Index("ix_api_keys_prefix", "prefix"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(
        String(128), ForeignKey("tenants.tenant_id"), nullable=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_ts", "ts"),
        Index("ix_audit_log_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]]


# Tables of other features live in their own modules on the same Base; importing them here puts
# them in ``Base.metadata``, which Alembic and ``schema_diff`` compare against.
from storage.metadata import models_alerting as _models_alerting  # noqa: E402, F401
from storage.metadata import models_jobs as _models_jobs  # noqa: E402, F401
from storage.metadata import models_kpis as _models_kpis  # noqa: E402, F401
from storage.metadata import models_monitoring as _models_monitoring  # noqa: E402, F401
from storage.metadata import models_users as _models_users  # noqa: E402, F401
