"""ORM tables of the metadata store (SQLAlchemy 2 typed declarative).

These classes never leave ``storage.metadata``: the store converts rows to the frozen types of
``storage.types`` before returning. Every schema change here needs an Alembic migration in
``storage/migrations/versions``; ``tests/storage/test_metadata_migrations.py`` fails otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.metadata.base import Base as Base  # re-exported: the declarative base

ROLE_VALUES = ("admin", "engineer", "viewer")
TASK_VALUES = ("binary", "multiclass", "regression")


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
