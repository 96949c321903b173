"""ORM tables of monitoring: monitors, their version history, runs and metric results.

Same ``Base`` as ``models.py`` (one metadata, one Alembic history); migration ``0003``. Rows
never leave ``storage.metadata``: ``monitoring.MonitoringStore`` converts them to frozen types.
APScheduler's job table (``apscheduler_jobs``) is created by its SQLAlchemyJobStore, not here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.metadata.base import Base, DefinitionColumns

RESULT_STATUSES = ("ok", "warn", "alert", "no_data")
RUN_STATUSES = ("running", "ok", "error")


class MonitorRow(DefinitionColumns):
    __tablename__ = "monitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(32))
    # The validated monitor config (``monitor.monitors.MonitorConfig``) as JSON.
    config: Mapped[dict[str, Any]] = mapped_column(JSON)


class MonitorVersionRow(Base):
    """Every definition a monitor ever had: who changed it, when, and what changed."""

    __tablename__ = "monitor_versions"
    __table_args__ = (UniqueConstraint("monitor", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitor: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # create, update, delete
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    diff: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(256))
    ts: Mapped[datetime]


class MonitorRunRow(Base):
    __tablename__ = "monitor_runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        Index("ix_monitor_runs_monitor_window", "monitor", "window_start"),
        Index("ix_monitor_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    monitor: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(63))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, catchup, late, backfill, manual
    definition_version: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    rows_scanned: Mapped[int] = mapped_column(BigInteger, default=0)
    results: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class MetricResultRow(Base):
    """One ``storage.types.MetricResult``; its key is unique, so a re-run replaces it."""

    __tablename__ = "metric_results"
    __table_args__ = (
        CheckConstraint(f"status IN {RESULT_STATUSES!r}", name="status"),
        UniqueConstraint(
            "source",
            "source_name",
            "window_start",
            "tenant_id",
            "model_version",
            "column_name",
            "metric",
            name="uq_metric_results_key",
        ),
        Index("ix_metric_results_model_window", "model", "window_start"),
        Index("ix_metric_results_source_window", "source_name", "window_start"),
        Index("ix_metric_results_tenant_window", "tenant_id", "window_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))
    source_name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(63), nullable=True)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    tenant_id: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(128))
    # "column" is an SQL keyword: the attribute and the database column say column_name.
    column_name: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    definition_version: Mapped[int] = mapped_column(Integer, default=1)
    computed_at: Mapped[datetime]
