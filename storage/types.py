"""Plain value types shared by the storage layer and its callers.

These are the only project types ``storage`` knows; ``monitor`` builds them from user input
(validation lives there) and hands them down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Task = Literal["binary", "multiclass", "regression"]
FeatureKind = Literal["numeric", "categorical", "boolean", "text"]
Role = Literal["admin", "engineer", "viewer"]

TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")
FEATURE_KINDS: tuple[str, ...] = ("numeric", "categorical", "boolean", "text")
ROLES: tuple[str, ...] = ("admin", "engineer", "viewer")

# Columns every inference table has; feature/score names may not reuse them.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {"request_id", "ts", "tenant_id", "model_version", "received_at", "label"}
)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature of a model. ``segment`` marks a categorical feature used for attribution."""

    name: str
    kind: FeatureKind
    segment: bool = False


@dataclass(frozen=True)
class ModelSchema:
    """What a model's inference rows look like.

    The prediction (and the label that arrives later) is stored as DOUBLE for regression,
    INTEGER 0/1 for binary and VARCHAR (the class name) for multiclass. ``scores`` are DOUBLE
    columns: one probability of the positive class for binary, one per class (same order as
    ``classes``) for multiclass, optional for regression.
    """

    task: Task
    features: tuple[FeatureSpec, ...]
    prediction: str = "prediction"
    scores: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    # (column as the user's rows name it, the field it is): e.g. ("id", "request_id"); the
    # server renames these columns on every ingest path of the model
    aliases: tuple[tuple[str, str], ...] = ()

    def feature(self, name: str) -> FeatureSpec | None:
        return next((f for f in self.features if f.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "features": [
                {"name": f.name, "kind": f.kind, "segment": f.segment} for f in self.features
            ],
            "prediction": self.prediction,
            "scores": list(self.scores),
            "classes": list(self.classes),
            **({"aliases": dict(self.aliases)} if self.aliases else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSchema:
        return cls(
            task=data["task"],
            features=tuple(
                FeatureSpec(f["name"], f["kind"], bool(f.get("segment", False)))
                for f in data["features"]
            ),
            prediction=data.get("prediction", "prediction"),
            scores=tuple(data.get("scores", ())),
            classes=tuple(data.get("classes", ())),
            aliases=tuple((data.get("aliases") or {}).items()),
        )


@dataclass(frozen=True)
class ModelInfo:
    name: str
    schema: ModelSchema
    description: str
    created_at: datetime
    updated_at: datetime

    @property
    def task(self) -> Task:
        return self.schema.task


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as the service sees it; the secret itself is never stored nor returned."""

    id: int
    name: str
    prefix: str
    role: Role
    tenant_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AppendResult:
    """Outcome of one append: rows newly stored and rows already present (idempotent retry)."""

    accepted: int
    duplicates: int


@dataclass(frozen=True)
class QuarantineRow:
    """A rejected input row, kept with why it was refused."""

    kind: Literal["inference", "label", "event", "reference"]
    model: str | None
    row_index: int
    field: str
    reason: str
    raw: str  # the row as JSON text, exactly as received where possible
    tenant_id: str | None = None
    batch_id: str | None = None


Status = Literal["ok", "warn", "alert", "no_data"]
STATUSES: tuple[str, ...] = ("ok", "warn", "alert", "no_data")
ALL = "*"  # tenant_id / model_version of a result over all tenants or all versions together


@dataclass(frozen=True)
class MetricResult:
    """One checked number: a monitor's or a KPI's metric for one window and segment.

    The key ``(source, source_name, window_start, tenant_id, model_version, column, metric)``
    is unique: re-running a window replaces its rows. ``tenant_id`` and ``model_version`` are
    ``ALL`` ("*") for results over all tenants / versions together; ``column`` is "" when the
    metric is not about one column (row count, accuracy, a KPI).
    """

    source: Literal["monitor", "kpi"]
    source_name: str  # monitor or KPI name
    kind: str  # monitor kind (feature_drift, prediction_drift, ...) or "kpi"
    model: str | None
    window_start: datetime
    window_end: datetime
    tenant_id: str
    model_version: str
    column: str
    metric: str
    value: float | None
    threshold: float | None
    status: Status
    details: dict[str, Any] = field(default_factory=dict)  # JSON-able: p-value, sizes, drivers
    definition_version: int = 1
    computed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, datetime, str, str, str, str]:
        return (
            self.source,
            self.source_name,
            self.window_start,
            self.tenant_id,
            self.model_version,
            self.column,
            self.metric,
        )


# ---------------------------------------------------------------------------- alerting
AlertState = Literal["pending", "firing", "resolved"]
ALERT_STATES: tuple[str, ...] = ("pending", "firing", "resolved")
Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
# The channel kinds the database accepts (the ``alert_channels.kind`` check; a new kind needs a
# migration). What each kind does is its module in ``alerts/channels/``.
CHANNEL_KINDS: tuple[str, ...] = ("webhook", "slack", "pagerduty")
ChannelKind = str
DeliveryStatus = Literal["pending", "sending", "delivered", "dead", "cancelled"]
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "sending", "delivered", "dead", "cancelled")


@dataclass(frozen=True)
class RuleRecord:
    """A stored alert rule: its JSON form (``spec``) is parsed by ``alerts.rules``."""

    name: str
    spec: dict[str, Any]
    enabled: bool
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FiringAlert:
    """What counting firing alerts and judging their inhibition needs, without an alert's
    texts and context (``AlertStore.firing_labels``: a fraction of a full read's cost)."""

    fingerprint: str
    severity: str
    model: str
    tenant_id: str
    labels: dict[str, str]
    state: str = "firing"


@dataclass(frozen=True)
class AlertRecord:
    """One alert instance: a rule's state for one fingerprint (rule + labels).

    ``breach_streak`` counts consecutive breaching windows (``for``), ``clear_streak``
    consecutive clear windows while firing (``keep_firing_for``).

    Times of the data (what an on-call engineer reads as "since when"): ``active_at`` is the
    start of the first breaching window; ``starts_at`` is the same instant once the alert fires
    (None while it is pending: never fired), ``ends_at`` the start of the window that resolved
    it. An alert born during a backfill carries these historical times. Times of Driftwatch
    (wall clock): ``fired_at`` when it started firing, ``resolved_at`` when it resolved,
    ``updated_at`` its last change. ``id`` is None until stored.
    """

    fingerprint: str
    rule: str
    state: AlertState
    severity: str
    tenant_id: str
    model: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    threshold: float | None
    breach_streak: int
    clear_streak: int
    last_window_end: datetime | None
    active_at: datetime
    starts_at: datetime | None
    ends_at: datetime | None
    updated_at: datetime
    context: dict[str, Any] = field(default_factory=dict)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    id: int | None = None
    group_key: str = ""
    fired_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class SilenceRecord:
    """Label matchers (``[{"name", "value", "op"}]``, op ``=``, ``!=``, ``=~``, ``!~``) that
    mute notifications of matching alerts between ``starts_at`` and ``ends_at``."""

    id: int
    matchers: tuple[dict[str, str], ...]
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    expired_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class ChannelRecord:
    """A notification channel as the service shows it: no URL secret, no signing secret."""

    id: int
    name: str
    kind: ChannelKind
    url_hint: str  # scheme://host/… — enough to recognise, not enough to call
    options: dict[str, Any]
    enabled: bool
    disabled_reason: str | None
    secret_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChannelSecrets:
    """What only the delivery worker needs: the full URL and the signing secrets (newest
    first; two during a rotation), or the PagerDuty routing key."""

    url: str
    secrets: tuple[str, ...]
    routing_key: str | None = None


@dataclass(frozen=True)
class GroupRecord:
    """A notification group and its log entry: what was last sent and when the next flush is."""

    id: int
    group_key: str
    rule: str
    labels: dict[str, str]
    next_flush_at: datetime | None
    last_notified_at: datetime | None
    notified_firing: tuple[str, ...]
    notified_resolved: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class NotificationRecord:
    id: int
    group_id: int | None
    status: str
    fingerprints: tuple[str, ...]
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class OutboxItem:
    """A delivery to write with a notification: one request body for one channel."""

    channel_id: int
    event: str
    body: str


@dataclass(frozen=True)
class DeliveryAttempt:
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    outcome: str  # delivered, retry, failed, dead, disabled


@dataclass(frozen=True)
class DeliveryRecord:
    """One outbox row: a body to send to one channel, with its attempts so far."""

    id: int
    notification_id: int | None
    channel_id: int
    channel_name: str
    webhook_id: str
    event: str
    status: DeliveryStatus
    body: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    history: tuple[DeliveryAttempt, ...] = ()


# ---------------------------------------------------------------------------- KPIs
@dataclass(frozen=True)
class KpiRecord:
    """A stored KPI definition: its JSON form (``spec``) is parsed by ``monitor.kpis``."""

    name: str
    spec: dict[str, Any]
    version: int
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (every stored timestamp is UTC); aware ones unchanged."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def leaf_diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b": [old, new]}`` for every leaf that differs between two JSON objects (a key
    missing on one side is ``None`` there): a monitor version's diff, what ``apply`` shows."""
    out: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.update(leaf_diff(a, b, path + "."))
        elif a != b:
            out[path] = [a, b]
    return out
