"""Monitoring: monitors, monitor versions (audit of every change), runs, metric results.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:59:42.180271
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=63), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("column_name", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('ok', 'warn', 'alert', 'no_data')", name=op.f("ck_metric_results_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_results")),
        sa.UniqueConstraint(
            "source",
            "source_name",
            "window_start",
            "tenant_id",
            "model_version",
            "column_name",
            "metric",
            name="uq_metric_results_key",
        ),
    )
    with op.batch_alter_table("metric_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_metric_results_model_window", ["model", "window_start"], unique=False
        )
        batch_op.create_index(
            "ix_metric_results_source_window", ["source_name", "window_start"], unique=False
        )
        batch_op.create_index(
            "ix_metric_results_tenant_window", ["tenant_id", "window_start"], unique=False
        )

    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=63), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("rows_scanned", sa.BigInteger(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'error')", name=op.f("ck_monitor_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_runs")),
    )
    with op.batch_alter_table("monitor_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_runs_monitor_window", ["monitor", "window_start"], unique=False
        )
        batch_op.create_index("ix_monitor_runs_started_at", ["started_at"], unique=False)

    op.create_table(
        "monitor_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_versions")),
        sa.UniqueConstraint("monitor", "version", name=op.f("uq_monitor_versions_monitor_version")),
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )


def downgrade() -> None:
    op.drop_table("monitors")
    op.drop_table("monitor_versions")
    with op.batch_alter_table("monitor_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_runs_started_at")
        batch_op.drop_index("ix_monitor_runs_monitor_window")

    op.drop_table("monitor_runs")
    with op.batch_alter_table("metric_results", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_results_tenant_window")
        batch_op.drop_index("ix_metric_results_source_window")
        batch_op.drop_index("ix_metric_results_model_window")

    op.drop_table("metric_results")
