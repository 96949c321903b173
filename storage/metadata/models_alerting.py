"""ORM tables of alerting: rules, alert instances, silences, channels, groups, the outbox.

Same ``Base`` as ``models.py`` (one metadata, one Alembic history); migration ``0002``. Rows
never leave ``storage.metadata``: ``alerting.AlertStore`` converts them to ``storage.types``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.metadata.base import Base, DefinitionColumns
from storage.types import CHANNEL_KINDS

ALERT_STATES = ("pending", "firing", "resolved")
DELIVERY_STATES = ("pending", "sending", "delivered", "dead", "cancelled")


class AlertRuleRow(DefinitionColumns):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # The rule as its JSON/YAML form; ``alerts.rules.Rule.from_dict`` parses and validates it.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # before ``version`` here, as migration 0002 created it
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(f"state IN {ALERT_STATES!r}", name="state"),
        Index("ix_alerts_fingerprint_state", "fingerprint", "state"),
        Index("ix_alerts_rule_state", "rule", "state"),
        Index("ix_alerts_state", "state"),
        Index("ix_alerts_group_key", "group_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    breach_streak: Mapped[int] = mapped_column(Integer, default=0)
    clear_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_window_end: Mapped[datetime | None]
    # Data times (migration 0007): the first breaching window's start, set as ``starts_at``
    # once firing; ``ends_at`` the start of the window that resolved it. Wall-clock times of
    # Driftwatch's own actions: ``fired_at``, ``resolved_at``, ``updated_at``.
    active_at: Mapped[datetime]
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    fired_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    acknowledged_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    acknowledged_at: Mapped[datetime | None]
    group_key: Mapped[str] = mapped_column(String(512), default="")


class SilenceRow(Base):
    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_ends_at", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[list[Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime]
    expired_by: Mapped[str | None] = mapped_column(String(256), nullable=True)


class ChannelRow(Base):
    __tablename__ = "alert_channels"
    __table_args__ = (CheckConstraint(f"kind IN {CHANNEL_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Slack URLs and PagerDuty routing keys are credentials: stored encrypted (Fernet).
    url_enc: Mapped[str] = mapped_column(Text)
    url_hint: Mapped[str] = mapped_column(String(512))
    secrets_enc: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertGroupRow(Base):
    __tablename__ = "alert_groups"
    __table_args__ = (Index("ix_alert_groups_next_flush_at", "next_flush_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(512), unique=True)
    rule: Mapped[str] = mapped_column(String(128))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    next_flush_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    # The notification log: which fingerprints the last notification reported as firing /
    # resolved. A new notification goes out only when these sets change (or on repeat).
    notified_firing: Mapped[list[Any]] = mapped_column(JSON)
    notified_resolved: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class NotificationRow(Base):
    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_group_id", "group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("alert_groups.id"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16))
    fingerprints: Mapped[list[Any]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class DeliveryRow(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN {DELIVERY_STATES!r}", name="status"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
        Index("ix_alert_deliveries_webhook_id", "webhook_id", unique=True),
        Index("ix_alert_deliveries_notification_id", "notification_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("alert_notifications.id"), nullable=True
    )
    channel_id: Mapped[int] = mapped_column(Integer, ForeignKey("alert_channels.id"))
    # Standard Webhooks message id: the idempotency key, the same on every retry.
    webhook_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)  # exact bytes sent on every attempt (UTF-8)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeliveryAttemptRow(Base):
    __tablename__ = "alert_delivery_attempts"
    __table_args__ = (Index("ix_alert_delivery_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(Integer, ForeignKey("alert_deliveries.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))


class AlertSeriesRow(Base):
    """The newest window each ``missing_data`` rule saw per series: its heartbeat."""

    __tablename__ = "alert_series"
    __table_args__ = (Index("ix_alert_series_rule", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_window_end: Mapped[datetime]
    updated_at: Mapped[datetime]
