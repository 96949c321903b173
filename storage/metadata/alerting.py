"""``AlertStore``: alert rules, alert instances, silences, channels, groups and the outbox.

It shares the :class:`~storage.metadata.store.MetadataStore`'s engine, clock and audit log.
The outbox is durable: notification rows and their deliveries are written in the transaction
that updates the group's notification log; alert state changes and the group's "flush at" mark
are written together; so a crash at any point either loses nothing or repeats a whole step.
Deliveries are claimed with a lease; a worker that dies mid-send leaves rows whose lease runs
out and that any worker claims again (same ``webhook_id``: receivers deduplicate).

Channel URLs and signing secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under
the key given to the store; only :meth:`AlertStore.channel_secrets` decrypts them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    Table,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.metadata.definitions import Definitions
from storage.metadata.errors import AlreadyExists, MetadataError, NotFound
from storage.metadata.models_alerting import (
    AlertGroupRow,
    AlertRow,
    AlertRuleRow,
    AlertSeriesRow,
    ChannelRow,
    DeliveryAttemptRow,
    DeliveryRow,
    NotificationRow,
    SilenceRow,
)
from storage.metadata.store import MetadataStore
from storage.types import (
    CHANNEL_KINDS,
    AlertRecord,
    ChannelKind,
    ChannelRecord,
    ChannelSecrets,
    DeliveryAttempt,
    DeliveryRecord,
    DeliveryStatus,
    FiringAlert,
    GroupRecord,
    NotificationRecord,
    OutboxItem,
    RuleRecord,
    SilenceRecord,
)


class SecretError(MetadataError):
    """A stored secret cannot be decrypted with the configured key (key changed?)."""


# how ``AlertStore.page_alerts`` can sort (see its docstring)
ALERT_SORTS = (
    "priority",
    "since",
    "started",
    "updated",
    "state",
    "severity",
    "rule",
    "tenant",
    "model",
)
# what ``AlertStore.count_alerts`` can count by
COUNT_FIELDS = ("state", "severity", "tenant_id", "model", "rule")


def derive_key(secret: str | bytes) -> bytes:
    """A Fernet key from any secret string (SHA-256, url-safe base64)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def url_hint(url: str) -> str:
    """``https://hooks.slack.com/…``: enough to recognise a URL without its secret path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    if parts.path in ("", "/") and not parts.query and not parts.fragment:
        return f"{parts.scheme}://{host}{port}/"
    return f"{parts.scheme}://{host}{port}/…"  # paths and queries often carry tokens


@dataclass(frozen=True)
class GroupMark:
    """Put an alert's group on the planner's agenda at ``flush_at`` (earliest wins)."""

    group_key: str
    rule: str
    labels: dict[str, str]
    flush_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker has leased, with what it needs to send it."""

    delivery: DeliveryRecord
    channel: ChannelRecord
    secrets: ChannelSecrets


def _alert(row: AlertRow) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        fingerprint=row.fingerprint,
        rule=row.rule,
        state=cast(Any, row.state),
        severity=row.severity,
        tenant_id=row.tenant_id,
        model=row.model,
        labels=dict(row.labels),
        annotations=dict(row.annotations),
        value=row.value,
        threshold=row.threshold,
        breach_streak=row.breach_streak,
        clear_streak=row.clear_streak,
        last_window_end=row.last_window_end,
        active_at=row.active_at,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        updated_at=row.updated_at,
        context=dict(row.context or {}),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        group_key=row.group_key,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
    )


_ALERT_FIELDS = (
    "fingerprint",
    "rule",
    "state",
    "severity",
    "tenant_id",
    "model",
    "labels",
    "annotations",
    "value",
    "threshold",
    "breach_streak",
    "clear_streak",
    "last_window_end",
    "active_at",
    "starts_at",
    "ends_at",
    "updated_at",
    "context",
    "acknowledged_by",
    "acknowledged_at",
    "group_key",
    "fired_at",
    "resolved_at",
)


def _rule(row: AlertRuleRow) -> RuleRecord:
    return RuleRecord(
        name=row.name,
        spec=dict(row.spec),
        enabled=row.enabled,
        version=row.version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _silence(row: SilenceRow) -> SilenceRecord:
    return SilenceRecord(
        id=row.id,
        matchers=tuple(dict(m) for m in row.matchers),
        reason=row.reason,
        created_by=row.created_by,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_at=row.created_at,
        expired_by=row.expired_by,
    )


def _group(row: AlertGroupRow) -> GroupRecord:
    return GroupRecord(
        id=row.id,
        group_key=row.group_key,
        rule=row.rule,
        labels=dict(row.labels),
        next_flush_at=row.next_flush_at,
        last_notified_at=row.last_notified_at,
        notified_firing=tuple(row.notified_firing),
        notified_resolved=tuple(row.notified_resolved),
        created_at=row.created_at,
    )


def _notification(row: NotificationRow) -> NotificationRecord:
    return NotificationRecord(
        id=row.id,
        group_id=row.group_id,
        status=row.status,
        fingerprints=tuple(row.fingerprints),
        payload=dict(row.payload),
        created_at=row.created_at,
    )


def _attempt(row: DeliveryAttemptRow) -> DeliveryAttempt:
    return DeliveryAttempt(
        attempt=row.attempt,
        at=row.at,
        status_code=row.status_code,
        error=row.error,
        duration_ms=row.duration_ms,
        outcome=row.outcome,
    )


def _delivery(
    row: DeliveryRow, channel_name: str, history: Sequence[DeliveryAttempt] = ()
) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        notification_id=row.notification_id,
        channel_id=row.channel_id,
        channel_name=channel_name,
        webhook_id=row.webhook_id,
        event=row.event,
        status=cast(DeliveryStatus, row.status),
        body=row.body,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        history=tuple(history),
    )


def new_webhook_id() -> str:
    """A Standard Webhooks message id: ``msg_`` + 26 url-safe random characters."""
    return "msg_" + _secrets.token_urlsafe(20)


class AlertStore:
    """Alerting tables behind typed methods (thread-safe; one short transaction per call).

    Parameters
    ----------
    metadata : MetadataStore
        A migrated store; its engine, clock and audit log are shared.
    secret_key : str or bytes
        Any secret string; channel URLs and signing secrets are encrypted with a key derived
        from it. Changing it makes stored channel secrets unreadable (:class:`SecretError`).
    """

    def __init__(self, metadata: MetadataStore, secret_key: str | bytes) -> None:
        self._m = metadata
        self._fernet = Fernet(derive_key(secret_key))
        self._rules = Definitions(
            metadata,
            AlertRuleRow,
            _rule,
            noun="alert rule",
            action="rule",
            object_type="alert_rule",
        )

    @property
    def metadata(self) -> MetadataStore:
        return self._m

    def now(self) -> datetime:
        return self._m.now()

    # ------------------------------------------------------------------ secrets
    def _encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretError(
                "cannot decrypt a channel secret: the secret key changed since it was stored"
            ) from exc

    # ------------------------------------------------------------------ rules
    def put_rule(
        self, name: str, spec: Mapping[str, Any], enabled: bool = True, actor: str = "system"
    ) -> RuleRecord:
        """Create or replace a rule (its version goes up by one on every change)."""
        with self._m.writing() as s:
            row = self._rules.find(s, name)
            if row is None:
                return _rule(
                    self._rules.add(s, name, actor, enabled, {"version": 1}, spec=dict(spec))
                )
            if row.spec == dict(spec) and row.enabled == enabled:
                return _rule(row)
            row.spec = dict(spec)
            return self._rules.bump(s, row, actor, enabled, {"version": row.version + 1})

    def get_rule(self, name: str) -> RuleRecord | None:
        return self._rules.get(name)

    def list_rules(self, enabled_only: bool = False) -> list[RuleRecord]:
        return self._rules.list(True if enabled_only else None)

    def delete_rule(self, name: str, actor: str = "system") -> None:
        self._rules.delete(name, actor)

    # ------------------------------------------------------------------ alerts
    def latest_alerts(self, rules: Iterable[str] | None = None) -> dict[str, AlertRecord]:
        """The newest instance of every fingerprint (of ``rules`` when given)."""
        with self._m.reading() as s:
            newest = select(func.max(AlertRow.id)).group_by(AlertRow.fingerprint)
            if rules is not None:
                newest = newest.where(AlertRow.rule.in_(list(rules)))
            rows = s.scalars(select(AlertRow).where(AlertRow.id.in_(newest.scalar_subquery())))
            return {r.fingerprint: _alert(r) for r in rows}

    def apply_evaluation(
        self,
        alerts: Sequence[AlertRecord],
        marks: Sequence[GroupMark] = (),
        series: Sequence[tuple[str, str, dict[str, str], datetime]] = (),
    ) -> list[AlertRecord]:
        """Store evaluated alerts, put their groups on the agenda and record heartbeats, in
        one transaction.

        ``alerts`` with ``id=None`` are inserted (new instances); others update their row.
        ``series`` are ``(rule, fingerprint, labels, last_window_end)`` heartbeats of
        ``missing_data`` rules. Returns the alerts with their ids.
        """
        out: list[AlertRecord] = []
        now = self._m.now()
        with self._m.writing() as s:
            inserts = [a for a in alerts if a.id is None]
            new_ids: list[int] = []
            if inserts:
                # Core bulk insert (insertmanyvalues) with ids back in order: thousands of
                # new alerts in one statement batch instead of one ORM object each.
                table = cast(Table, AlertRow.__table__)  # a declarative class's is a Table
                new_ids = list(
                    s.connection()
                    .execute(
                        insert(table).returning(table.c.id, sort_by_parameter_order=True),
                        [{f: getattr(a, f) for f in _ALERT_FIELDS} for a in inserts],
                    )
                    .scalars()
                )
            updates = [a for a in alerts if a.id is not None]
            if updates:
                s.execute(
                    update(AlertRow),
                    [{"id": a.id, **{f: getattr(a, f) for f in _ALERT_FIELDS}} for a in updates],
                )
            ids = iter(new_ids)
            for a in alerts:
                out.append(a if a.id is not None else _with_id(a, next(ids)))
            self._mark(s, marks, now)
            existing: dict[str, AlertSeriesRow] = {}
            fps = [fp for _, fp, _, _ in series]
            for chunk in range(0, len(fps), 500):  # bounded IN lists
                for found in s.scalars(
                    select(AlertSeriesRow).where(
                        AlertSeriesRow.fingerprint.in_(fps[chunk : chunk + 500])
                    )
                ):
                    existing[found.fingerprint] = found
            for rule, fp, labels, last_end in series:
                row = existing.get(fp)
                if row is None:
                    row = AlertSeriesRow(
                        rule=rule,
                        fingerprint=fp,
                        labels=labels,
                        last_window_end=last_end,
                        updated_at=now,
                    )
                    s.add(row)
                    existing[fp] = row
                elif last_end > row.last_window_end:
                    row.last_window_end = last_end
                    row.updated_at = now
        return out

    def _mark(self, s: Session, marks: Sequence[GroupMark], now: datetime) -> None:
        by_key: dict[str, GroupMark] = {}
        for m in marks:
            prev = by_key.get(m.group_key)
            if prev is None or (
                m.flush_at is not None and (prev.flush_at is None or m.flush_at < prev.flush_at)
            ):
                by_key[m.group_key] = m
        if not by_key:
            return
        existing = {
            g.group_key: g
            for g in s.scalars(
                select(AlertGroupRow).where(AlertGroupRow.group_key.in_(list(by_key)))
            )
        }
        for key, m in by_key.items():
            row = existing.get(key)
            if row is None:
                s.add(
                    AlertGroupRow(
                        group_key=key,
                        rule=m.rule,
                        labels=m.labels,
                        next_flush_at=m.flush_at,
                        last_notified_at=None,
                        notified_firing=[],
                        notified_resolved=[],
                        created_at=now,
                    )
                )
            elif m.flush_at is not None and (
                row.next_flush_at is None or m.flush_at < row.next_flush_at
            ):
                row.next_flush_at = m.flush_at

    def set_group_keys(self, keys: Mapping[int, str]) -> None:
        """Move alerts (id → group key) to other groups; only that column is written, so an
        evaluation storing the same alerts at the same time loses nothing."""
        if not keys:
            return
        with self._m.writing() as s:
            s.execute(
                update(AlertRow),
                [{"id": alert_id, "group_key": key} for alert_id, key in keys.items()],
            )

    def series(self, rules: Iterable[str]) -> list[tuple[str, str, dict[str, str], datetime]]:
        """Heartbeats ``(rule, fingerprint, labels, last_window_end)`` of ``rules``."""
        with self._m.reading() as s:
            rows = s.scalars(select(AlertSeriesRow).where(AlertSeriesRow.rule.in_(list(rules))))
            return [(r.rule, r.fingerprint, dict(r.labels), r.last_window_end) for r in rows]

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        with self._m.reading() as s:
            row = s.get(AlertRow, alert_id)
            return None if row is None else _alert(row)

    def list_alerts(
        self,
        *,
        state: str | Sequence[str] | None = None,
        rule: str | None = None,
        tenant_id: str | None = None,
        model: str | None = None,
        severity: str | None = None,
        group_key: str | None = None,
        fingerprints: Sequence[str] | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[AlertRecord]:
        """Alerts, newest first, filtered on any of the given fields."""
        with self._m.reading() as s:
            stmt = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit).offset(offset)
            if state is not None:
                states = [state] if isinstance(state, str) else list(state)
                stmt = stmt.where(AlertRow.state.in_(states))
            if rule is not None:
                stmt = stmt.where(AlertRow.rule == rule)
            if tenant_id is not None:
                stmt = stmt.where(AlertRow.tenant_id == tenant_id)
            if model is not None:
                stmt = stmt.where(AlertRow.model == model)
            if severity is not None:
                stmt = stmt.where(AlertRow.severity == severity)
            if group_key is not None:
                stmt = stmt.where(AlertRow.group_key == group_key)
            if fingerprints is not None:
                stmt = stmt.where(AlertRow.fingerprint.in_(list(fingerprints)))
            return [_alert(r) for r in s.scalars(stmt)]

    def page_alerts(
        self,
        *,
        state: str | Sequence[str] | None = None,
        severity: str | None = None,
        tenant_ids: Sequence[str] | None = None,
        model: str | None = None,
        rule: str | None = None,
        active_from: datetime | None = None,
        active_to: datetime | None = None,
        sort: str = "priority",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[AlertRecord], int]:
        """One page of alerts sorted in SQL, and how many match in all.

        ``tenant_ids`` limits to those tenants (an empty list matches nothing). ``sort`` is one
        of :data:`ALERT_SORTS`: ``priority`` puts firing before pending before resolved, then
        critical before warning before info, open alerts oldest first (by their first
        breaching window) and resolved ones most recently resolved first; the others sort
        by one column (``descending`` reverses it). Ties go newest alert first.

        ``active_from`` / ``active_to`` keep alerts open at some time in that range, in data
        time: first breaching window before ``active_to``, and still open or resolved by a
        window ending after ``active_from``.
        """
        if sort not in ALERT_SORTS:
            raise ValueError(f"sort {sort!r} is not one of {', '.join(ALERT_SORTS)}")
        state_rank = case({"firing": 0, "pending": 1, "resolved": 2}, value=AlertRow.state, else_=3)
        severity_rank = case(
            {"critical": 0, "warning": 1, "info": 2}, value=AlertRow.severity, else_=3
        )
        where: list[ColumnElement[bool]] = []
        if state is not None:
            where.append(AlertRow.state.in_([state] if isinstance(state, str) else list(state)))
        if severity is not None:
            where.append(AlertRow.severity == severity)
        if tenant_ids is not None:
            where.append(AlertRow.tenant_id.in_(list(tenant_ids)))
        if model is not None:
            where.append(AlertRow.model == model)
        if rule is not None:
            where.append(AlertRow.rule == rule)
        if active_to is not None:
            where.append(AlertRow.active_at < active_to)
        if active_from is not None:
            where.append(
                or_(
                    AlertRow.state != "resolved",
                    AlertRow.last_window_end.is_(None),
                    AlertRow.last_window_end > active_from,
                )
            )
        if sort == "priority":
            open_since = case((AlertRow.state == "resolved", None), else_=AlertRow.active_at)
            order: list[Any] = [
                state_rank,
                severity_rank,
                open_since.asc().nulls_last(),
                AlertRow.ends_at.desc().nulls_last(),
            ]
        else:
            column = {
                "since": AlertRow.active_at,
                "started": AlertRow.starts_at,
                "updated": AlertRow.updated_at,
                "state": state_rank,
                "severity": severity_rank,
                "rule": AlertRow.rule,
                "tenant": AlertRow.tenant_id,
                "model": AlertRow.model,
            }[sort]
            order = [column.desc().nulls_last() if descending else column.asc().nulls_last()]
        with self._m.reading() as s:
            total = s.scalar(select(func.count()).select_from(AlertRow).where(*where)) or 0
            stmt = (
                select(AlertRow)
                .where(*where)
                .order_by(*order, AlertRow.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_alert(r) for r in s.scalars(stmt)], int(total)

    def acknowledge(
        self, alert_id: int, actor: str, outbox: Sequence[OutboxItem] = ()
    ) -> AlertRecord:
        """Mark a firing alert acknowledged (idempotent) and queue ``outbox`` deliveries
        (PagerDuty ``acknowledge`` events) in the same transaction."""
        now = self._m.now()
        with self._m.writing() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise NotFound(f"alert {alert_id} not found")
            if row.state != "firing":
                raise MetadataError(
                    f"alert {alert_id} is {row.state}; only firing alerts can be acknowledged"
                )
            if row.acknowledged_at is None:
                row.acknowledged_by = actor
                row.acknowledged_at = now
                self._enqueue(s, None, outbox, now)
                self._m.record_audit(s, actor, "alert.ack", "alert", str(alert_id))
            return _alert(row)

    def firing_labels(self) -> list[FiringAlert]:
        """Every firing alert's fingerprint, severity, model, tenant and labels: what counting
        them and their inhibition needs, without reading their texts and context (the
        overview's count over thousands of firing alerts)."""
        cols = (AlertRow.fingerprint, AlertRow.severity, AlertRow.model, AlertRow.tenant_id)
        with self._m.reading() as s:
            rows = s.execute(select(*cols, AlertRow.labels).where(AlertRow.state == "firing"))
            return [FiringAlert(fp, sev, m, t, dict(lb or {})) for fp, sev, m, t, lb in rows]

    def count_alerts(
        self,
        by: Sequence[str],
        *,
        state: str | Sequence[str] | None = None,
        tenant_ids: Sequence[str] | None = None,
    ) -> dict[tuple[str, ...], int]:
        """How many alerts there are per value of the ``by`` fields (any of
        :data:`COUNT_FIELDS`), counted in SQL (``GROUP BY``), so the counts hold however many
        alerts the store has. ``tenant_ids`` limits to those tenants (an empty list matches
        nothing)."""
        unknown = [f for f in by if f not in COUNT_FIELDS]
        if unknown or not by:
            raise ValueError(f"count by {list(by)!r}: fields are {', '.join(COUNT_FIELDS)}")
        columns = [getattr(AlertRow, f) for f in by]
        stmt = select(*columns, func.count()).group_by(*columns)
        if state is not None:
            stmt = stmt.where(AlertRow.state.in_([state] if isinstance(state, str) else state))
        if tenant_ids is not None:
            stmt = stmt.where(AlertRow.tenant_id.in_(list(tenant_ids)))
        with self._m.reading() as s:
            return {tuple(row[:-1]): int(row[-1]) for row in s.execute(stmt)}

    def state_counts(self) -> dict[str, int]:
        with self._m.reading() as s:
            rows = s.execute(select(AlertRow.state, func.count()).group_by(AlertRow.state))
            return {state: int(n) for state, n in rows}

    # ------------------------------------------------------------------ silences
    def create_silence(
        self,
        matchers: Sequence[Mapping[str, str]],
        reason: str,
        created_by: str,
        starts_at: datetime,
        ends_at: datetime,
    ) -> SilenceRecord:
        if ends_at <= starts_at:
            raise ValueError(f"ends_at {ends_at} must be after starts_at {starts_at}")
        now = self._m.now()
        with self._m.writing() as s:
            row = SilenceRow(
                matchers=[dict(m) for m in matchers],
                reason=reason,
                created_by=created_by,
                starts_at=starts_at,
                ends_at=ends_at,
                created_at=now,
            )
            s.add(row)
            s.flush()
            self._m.record_audit(
                s, created_by, "silence.create", "silence", str(row.id), {"reason": reason}
            )
            return _silence(row)

    def list_silences(self, active_at: datetime | None = None) -> list[SilenceRecord]:
        """All silences, newest first; only those active at ``active_at`` when given."""
        with self._m.reading() as s:
            stmt = select(SilenceRow).order_by(SilenceRow.id.desc())
            if active_at is not None:
                stmt = stmt.where(SilenceRow.starts_at <= active_at, SilenceRow.ends_at > active_at)
            return [_silence(r) for r in s.scalars(stmt)]

    def get_silence(self, silence_id: int) -> SilenceRecord | None:
        with self._m.reading() as s:
            row = s.get(SilenceRow, silence_id)
            return None if row is None else _silence(row)

    def expire_silence(self, silence_id: int, actor: str) -> SilenceRecord:
        """End a silence now (its notifications resume at the groups' next flush)."""
        now = self._m.now()
        with self._m.writing() as s:
            row = s.get(SilenceRow, silence_id)
            if row is None:
                raise NotFound(f"silence {silence_id} not found")
            if row.ends_at > now:
                row.ends_at = max(now, row.starts_at)
                row.expired_by = actor
                self._m.record_audit(s, actor, "silence.expire", "silence", str(silence_id))
            return _silence(row)

    # ------------------------------------------------------------------ channels
    def create_channel(
        self,
        name: str,
        kind: ChannelKind,
        url: str,
        secrets: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        routing_key: str | None = None,
        actor: str = "system",
    ) -> ChannelRecord:
        if kind not in CHANNEL_KINDS:
            raise ValueError(f"channel kind {kind!r} is not one of {', '.join(CHANNEL_KINDS)}")
        now = self._m.now()
        payload = json.dumps({"secrets": list(secrets), "routing_key": routing_key})
        try:
            with self._m.writing() as s:
                row = ChannelRow(
                    name=name,
                    kind=kind,
                    url_enc=self._encrypt(url),
                    url_hint=url_hint(url)[:512],
                    secrets_enc=self._encrypt(payload),
                    options=dict(options or {}),
                    enabled=True,
                    disabled_reason=None,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                self._m.record_audit(s, actor, "channel.create", "channel", name, {"kind": kind})
                return self._channel(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"channel {name!r} exists") from exc

    def _channel(self, row: ChannelRow) -> ChannelRecord:
        count = len(json.loads(self._decrypt(row.secrets_enc)).get("secrets", []))
        return ChannelRecord(
            id=row.id,
            name=row.name,
            kind=row.kind,
            url_hint=row.url_hint,
            options=dict(row.options),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            secret_count=count,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def update_channel(
        self,
        name: str,
        *,
        url: str | None = None,
        options: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
        routing_key: str | None = None,
        actor: str = "system",
    ) -> ChannelRecord:
        now = self._m.now()
        with self._m.writing() as s:
            row = self._channel_row(s, name)
            if url is not None:
                row.url_enc = self._encrypt(url)
                row.url_hint = url_hint(url)[:512]
            if options is not None:
                row.options = dict(options)
            if enabled is not None:
                row.enabled = enabled
                row.disabled_reason = None if enabled else f"disabled by {actor}"
            if routing_key is not None:
                data = json.loads(self._decrypt(row.secrets_enc))
                data["routing_key"] = routing_key
                row.secrets_enc = self._encrypt(json.dumps(data))
            row.updated_at = now
            self._m.record_audit(s, actor, "channel.update", "channel", name)
            return self._channel(row)

    def rotate_secret(self, name: str, new_secret: str, actor: str = "system") -> ChannelRecord:
        """Start signing with ``new_secret``; the previous one stays valid (two active
        secrets, newest first) until the next rotation drops it."""
        now = self._m.now()
        with self._m.writing() as s:
            row = self._channel_row(s, name)
            data = json.loads(self._decrypt(row.secrets_enc))
            data["secrets"] = [new_secret, *data.get("secrets", [])][:2]
            row.secrets_enc = self._encrypt(json.dumps(data))
            row.updated_at = now
            self._m.record_audit(s, actor, "channel.rotate_secret", "channel", name)
            return self._channel(row)

    def _channel_row(self, s: Session, name_or_id: str | int) -> ChannelRow:
        if isinstance(name_or_id, int):
            row = s.get(ChannelRow, name_or_id)
        else:
            row = s.scalar(select(ChannelRow).where(ChannelRow.name == name_or_id))
        if row is None:
            raise NotFound(f"channel {name_or_id!r} not found")
        return row

    def get_channel(self, name_or_id: str | int) -> ChannelRecord | None:
        with self._m.reading() as s:
            try:
                return self._channel(self._channel_row(s, name_or_id))
            except NotFound:
                return None

    def list_channels(self) -> list[ChannelRecord]:
        with self._m.reading() as s:
            return [
                self._channel(r) for r in s.scalars(select(ChannelRow).order_by(ChannelRow.name))
            ]

    def channel_secrets(self, name_or_id: str | int) -> ChannelSecrets:
        """The full URL and the signing secrets: for the delivery worker only."""
        with self._m.reading() as s:
            row = self._channel_row(s, name_or_id)
            data = json.loads(self._decrypt(row.secrets_enc))
            return ChannelSecrets(
                url=self._decrypt(row.url_enc),
                secrets=tuple(data.get("secrets", [])),
                routing_key=data.get("routing_key"),
            )

    def delete_channel(self, name: str, actor: str = "system") -> None:
        """Delete a channel; a channel with deliveries is disabled instead (history stays)."""
        with self._m.writing() as s:
            row = self._channel_row(s, name)
            used = s.scalar(select(func.count()).where(DeliveryRow.channel_id == row.id))
            if used:
                row.enabled = False
                row.disabled_reason = f"deleted by {actor}"
                s.execute(
                    update(DeliveryRow)
                    .where(DeliveryRow.channel_id == row.id, DeliveryRow.status == "pending")
                    .values(status="cancelled", updated_at=self._m.now())
                )
            else:
                s.delete(row)
            self._m.record_audit(s, actor, "channel.delete", "channel", name)

    # ------------------------------------------------------------------ groups
    def mark_groups_due(self, at: datetime, group_keys: Sequence[str] | None = None) -> int:
        """Bring the next flush of groups (all with alerts when None) forward to ``at``."""
        with self._m.writing() as s:
            stmt = update(AlertGroupRow).where(
                or_(AlertGroupRow.next_flush_at.is_(None), AlertGroupRow.next_flush_at > at)
            )
            if group_keys is not None:
                stmt = stmt.where(AlertGroupRow.group_key.in_(list(group_keys)))
            return _rowcount(s.execute(stmt.values(next_flush_at=at)))

    def due_groups(self, now: datetime, limit: int = 100) -> list[GroupRecord]:
        with self._m.reading() as s:
            stmt = (
                select(AlertGroupRow)
                .where(AlertGroupRow.next_flush_at <= now)
                .order_by(AlertGroupRow.next_flush_at)
                .limit(limit)
            )
            return [_group(r) for r in s.scalars(stmt)]

    def get_group(self, group_key: str) -> GroupRecord | None:
        with self._m.reading() as s:
            row = s.scalar(select(AlertGroupRow).where(AlertGroupRow.group_key == group_key))
            return None if row is None else _group(row)

    def get_groups(self, group_keys: Sequence[str]) -> dict[str, GroupRecord]:
        with self._m.reading() as s:
            rows = s.scalars(
                select(AlertGroupRow).where(AlertGroupRow.group_key.in_(list(group_keys)))
            )
            return {r.group_key: _group(r) for r in rows}

    def group_alerts(self, group_key: str) -> list[AlertRecord]:
        """The newest instance of each fingerprint of a group."""
        with self._m.reading() as s:
            newest = (
                select(func.max(AlertRow.id))
                .where(AlertRow.group_key == group_key)
                .group_by(AlertRow.fingerprint)
            )
            rows = s.scalars(
                select(AlertRow)
                .where(AlertRow.id.in_(newest.scalar_subquery()))
                .order_by(AlertRow.id)
            )
            return [_alert(r) for r in rows]

    def record_flush(
        self,
        group: GroupRecord,
        *,
        next_flush_at: datetime | None,
        notified_firing: Sequence[str],
        notified_resolved: Sequence[str],
        notification: Mapping[str, Any] | None = None,
        outbox: Sequence[OutboxItem] = (),
    ) -> NotificationRecord | None:
        """Write a group's new log entry and, when it notifies, the notification and one
        outbox row per channel, all in one transaction.

        The update is conditional on the group's log not having moved since ``group`` was
        read, so two planners racing on one group cannot both notify.
        """
        now = self._m.now()
        with self._m.writing() as s:
            # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers):
            # a second planner waits here, then sees the log moved and backs off.
            row = s.get(AlertGroupRow, group.id, with_for_update=self._m.backend == "postgresql")
            if row is None or row.last_notified_at != group.last_notified_at:
                return None
            if (
                row.next_flush_at is not None
                and group.next_flush_at is not None
                and (row.next_flush_at < group.next_flush_at)
            ):
                # A change arrived after we read the group: flush again at once.
                next_flush_at = row.next_flush_at
            row.next_flush_at = next_flush_at
            row.notified_firing = list(notified_firing)
            row.notified_resolved = list(notified_resolved)
            if notification is None:
                return None
            row.last_notified_at = now
            note = NotificationRow(
                group_id=row.id,
                status=str(notification.get("status", "firing")),
                fingerprints=list(notification.get("fingerprints", [])),
                payload=dict(notification),
                created_at=now,
            )
            s.add(note)
            s.flush()
            self._enqueue(s, note.id, outbox, now)
            return _notification(note)

    def list_notifications(
        self, group_id: int | None = None, limit: int = 100
    ) -> list[NotificationRecord]:
        with self._m.reading() as s:
            stmt = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
            if group_id is not None:
                stmt = stmt.where(NotificationRow.group_id == group_id)
            return [_notification(r) for r in s.scalars(stmt)]

    # ------------------------------------------------------------------ outbox
    def _enqueue(
        self, s: Session, notification_id: int | None, outbox: Sequence[OutboxItem], now: datetime
    ) -> list[DeliveryRow]:
        rows = [
            DeliveryRow(
                notification_id=notification_id,
                channel_id=item.channel_id,
                webhook_id=new_webhook_id(),
                event=item.event,
                status="pending",
                body=item.body,
                attempts=0,
                next_attempt_at=now,
                lease_until=None,
                created_at=now,
                updated_at=now,
                delivered_at=None,
                last_status_code=None,
                last_error=None,
            )
            for item in outbox
        ]
        s.add_all(rows)
        s.flush()
        return rows

    def enqueue(self, outbox: Sequence[OutboxItem]) -> list[DeliveryRecord]:
        """Queue deliveries that belong to no group notification (channel tests)."""
        now = self._m.now()
        with self._m.writing() as s:
            rows = self._enqueue(s, None, outbox, now)
            names = self._channel_names(s, {r.channel_id for r in rows})
            return [_delivery(r, names.get(r.channel_id, "")) for r in rows]

    def _channel_names(self, s: Session, ids: Iterable[int]) -> dict[int, str]:
        ids = list(ids)
        if not ids:
            return {}
        return dict(
            s.execute(select(ChannelRow.id, ChannelRow.name).where(ChannelRow.id.in_(ids))).all()
        )

    def claim_due(self, now: datetime, limit: int, lease_seconds: float) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (pending and due, or leased by a worker whose
        lease ran out: it crashed) to the caller."""
        lease_until = now + timedelta(seconds=lease_seconds)
        due = or_(
            (DeliveryRow.status == "pending") & (DeliveryRow.next_attempt_at <= now),
            (DeliveryRow.status == "sending") & (DeliveryRow.lease_until < now),
        )
        # A cheap read first: an idle worker must not take SQLite's write lock every turn.
        with self._m.reading() as s:
            if s.scalar(select(DeliveryRow.id).where(due).limit(1)) is None:
                return []
        with self._m.writing() as s:
            stmt = (
                select(DeliveryRow)
                .where(
                    or_(
                        (DeliveryRow.status == "pending") & (DeliveryRow.next_attempt_at <= now),
                        (DeliveryRow.status == "sending") & (DeliveryRow.lease_until < now),
                    )
                )
                .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
                .limit(limit)
            )
            if self._m.backend == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(s.scalars(stmt))
            if not rows:
                return []
            channels = {
                c.id: c
                for c in s.scalars(
                    select(ChannelRow).where(ChannelRow.id.in_({r.channel_id for r in rows}))
                )
            }
            out: list[Claimed] = []
            for row in rows:
                channel = channels[row.channel_id]
                if not channel.enabled:
                    row.status = "cancelled"
                    row.last_error = (
                        f"channel {channel.name} is disabled: {channel.disabled_reason}"
                    )
                    row.updated_at = now
                    continue
                row.status = "sending"
                row.lease_until = lease_until
                row.updated_at = now
                try:
                    data = json.loads(self._decrypt(channel.secrets_enc))
                    out.append(
                        Claimed(
                            delivery=_delivery(row, channel.name),
                            channel=self._channel(channel),
                            secrets=ChannelSecrets(
                                url=self._decrypt(channel.url_enc),
                                secrets=tuple(data.get("secrets", [])),
                                routing_key=data.get("routing_key"),
                            ),
                        )
                    )
                except SecretError as exc:
                    # unreadable for good under this key: a dead letter saying why, not a row
                    # that fails every claim
                    row.status = "dead"
                    row.last_error = str(exc)
                    row.lease_until = None
            return out

    def finish_attempt(
        self,
        delivery_id: int,
        attempt: DeliveryAttempt,
        status: DeliveryStatus,
        next_attempt_at: datetime | None = None,
        disable_channel: str | None = None,
    ) -> None:
        """Record one attempt and move the delivery to ``status`` (``pending`` with
        ``next_attempt_at`` to retry); ``disable_channel`` disables the channel (410 Gone)."""
        self.finish_attempts([(delivery_id, attempt, status, next_attempt_at, disable_channel)])

    def finish_attempts(
        self,
        items: Sequence[tuple[int, DeliveryAttempt, DeliveryStatus, datetime | None, str | None]],
    ) -> None:
        """:meth:`finish_attempt` for many deliveries in one transaction (the worker records
        a whole batch at once: one commit instead of one per webhook)."""
        if not items:
            return
        with self._m.writing() as s:
            rows = {
                r.id: r
                for r in s.scalars(
                    select(DeliveryRow).where(DeliveryRow.id.in_([i[0] for i in items]))
                )
            }
            for delivery_id, attempt, status, next_attempt_at, disable_channel in items:
                row = rows.get(delivery_id)
                if row is None:
                    raise NotFound(f"delivery {delivery_id} not found")
                s.add(
                    DeliveryAttemptRow(
                        delivery_id=delivery_id,
                        attempt=attempt.attempt,
                        at=attempt.at,
                        status_code=attempt.status_code,
                        error=attempt.error,
                        duration_ms=attempt.duration_ms,
                        outcome=attempt.outcome,
                    )
                )
                row.attempts = max(row.attempts, attempt.attempt)
                row.status = status
                row.lease_until = None
                row.updated_at = attempt.at
                row.last_status_code = attempt.status_code
                row.last_error = attempt.error
                if next_attempt_at is not None:
                    row.next_attempt_at = next_attempt_at
                if status == "delivered":
                    row.delivered_at = attempt.at
                if disable_channel is not None:
                    channel = s.get(ChannelRow, row.channel_id)
                    if channel is not None:
                        channel.enabled = False
                        channel.disabled_reason = disable_channel
                        channel.updated_at = attempt.at
                        s.flush()
                        s.execute(
                            update(DeliveryRow)
                            .where(
                                DeliveryRow.channel_id == channel.id,
                                DeliveryRow.status == "pending",
                            )
                            .values(
                                status="cancelled",
                                last_error=disable_channel,
                                updated_at=attempt.at,
                            )
                            .execution_options(synchronize_session=False)
                        )

    def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        with self._m.reading() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                return None
            history = [
                _attempt(a)
                for a in s.scalars(
                    select(DeliveryAttemptRow)
                    .where(DeliveryAttemptRow.delivery_id == delivery_id)
                    .order_by(DeliveryAttemptRow.id)
                )
            ]
            return _delivery(
                row, self._channel_names(s, [row.channel_id]).get(row.channel_id, ""), history
            )

    def list_deliveries(
        self,
        *,
        status: str | Sequence[str] | None = None,
        channel: str | None = None,
        notification_id: int | None = None,
        with_attempts: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[DeliveryRecord]:
        with self._m.reading() as s:
            stmt = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit).offset(offset)
            if status is not None:
                statuses = [status] if isinstance(status, str) else list(status)
                stmt = stmt.where(DeliveryRow.status.in_(statuses))
            if channel is not None:
                stmt = stmt.join(ChannelRow, ChannelRow.id == DeliveryRow.channel_id).where(
                    ChannelRow.name == channel
                )
            if notification_id is not None:
                stmt = stmt.where(DeliveryRow.notification_id == notification_id)
            rows = list(s.scalars(stmt))
            names = self._channel_names(s, {r.channel_id for r in rows})
            history: dict[int, list[DeliveryAttempt]] = {}
            if with_attempts and rows:
                for a in s.scalars(
                    select(DeliveryAttemptRow)
                    .where(DeliveryAttemptRow.delivery_id.in_([r.id for r in rows]))
                    .order_by(DeliveryAttemptRow.id)
                ):
                    history.setdefault(a.delivery_id, []).append(_attempt(a))
            return [_delivery(r, names.get(r.channel_id, ""), history.get(r.id, ())) for r in rows]

    def retry_delivery(self, delivery_id: int, actor: str = "system") -> DeliveryRecord:
        """Send a dead-lettered (or cancelled) delivery again, now, with the same webhook id."""
        now = self._m.now()
        with self._m.writing() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                raise NotFound(f"delivery {delivery_id} not found")
            if row.status not in ("dead", "cancelled"):
                raise MetadataError(
                    f"delivery {delivery_id} is {row.status}; only dead or cancelled deliveries "
                    "can be retried"
                )
            row.status = "pending"
            row.next_attempt_at = now
            row.updated_at = now
            self._m.record_audit(s, actor, "delivery.retry", "delivery", str(delivery_id))
            return _delivery(row, self._channel_names(s, [row.channel_id]).get(row.channel_id, ""))

    def delivery_counts(self) -> dict[str, int]:
        with self._m.reading() as s:
            rows = s.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status))
            return {status: int(n) for status, n in rows}

    def attempt_counts(self) -> dict[str, int]:
        with self._m.reading() as s:
            rows = s.execute(
                select(DeliveryAttemptRow.outcome, func.count()).group_by(
                    DeliveryAttemptRow.outcome
                )
            )
            return {outcome: int(n) for outcome, n in rows}

    def next_due_at(self) -> datetime | None:
        """When the earliest pending delivery or group flush is due (the worker's sleep)."""
        with self._m.reading() as s:
            a = s.scalar(
                select(func.min(DeliveryRow.next_attempt_at)).where(DeliveryRow.status == "pending")
            )
            b = s.scalar(select(func.min(AlertGroupRow.next_flush_at)))
        times = [t for t in (a, b) if t is not None]
        if not times:
            return None
        # func.min bypasses the UTC type decorator on SQLite: normalise here.
        return min(t if t.tzinfo else t.replace(tzinfo=UTC) for t in times)


def _with_id(alert: AlertRecord, alert_id: int) -> AlertRecord:
    return replace(alert, id=alert_id)


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (``Session.execute`` is typed as returning a plain
    ``Result``; a DML statement's is a ``CursorResult``)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)
