"""The alert page: one alert with its context, and the actions on it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from monitor import tenancy
from monitor.composition import of
from monitor.queries.common import AccessDenied, Scope, alert_store
from monitor.queries.kpis import kpi_specs
from monitor.queries.model import Series, series_by, to_series
from monitor.service import Services
from monitor.timerange import TimeRange
from storage import reads
from storage.types import ALL, AlertRecord


@dataclass(frozen=True)
class Notification:
    at: datetime
    status: str
    channel: str
    event: str
    attempts: int
    detail: str


@dataclass(frozen=True)
class AlertView:
    """One alert and its context. ``silences`` / ``inhibitors`` say what mutes its
    notifications now (``silenced`` is True when a silence does)."""

    alert: AlertRecord
    signal: list[Series]
    kpis: list[Series]
    notifications: list[Notification]
    silenced: bool
    computed_at: datetime | None
    silences: tuple[Any, ...] = ()
    inhibitors: tuple[AlertRecord, ...] = ()
    # the all-tenants alert of this series (for a per-tenant alert), or its per-tenant
    # alerts (for a tenant "*" alert): alerts.twins
    all_tenants: AlertRecord | None = None
    tenant_alerts: tuple[AlertRecord, ...] = ()
    start: datetime | None = None  # the range the charts show
    end: datetime | None = None
    signal_metrics: list[str] = field(default_factory=list)  # each signal series' metric
    kpi_units: dict[str, str] = field(default_factory=dict)  # KPI name → its unit
    # the rule's channels that do not exist or are disabled (when none of them can deliver,
    # the alert waits for one: alerts.engine)
    missing_channels: tuple[str, ...] = ()
    # the rule's channels (empty: the rule sends nowhere; None: the rule is gone)
    rule_channels: tuple[str, ...] | None = None


def alert_window(a: AlertRecord, now: datetime) -> tuple[datetime, datetime]:
    """The range an alert's charts show by default: a week before its first breaching
    window to two days after it, or on to now while it is open (to its last window plus two
    days once resolved)."""
    anchor = a.active_at
    if a.state == "resolved":
        last = a.last_window_end or a.ends_at or anchor
        return anchor - timedelta(days=7), max(anchor, last) + timedelta(days=2)
    return anchor - timedelta(days=7), max(anchor + timedelta(days=2), now)


def alert_view(
    services: Services,
    scope: Scope,
    alert_id: int,
    now: datetime | None = None,
    span: TimeRange | None = None,
) -> AlertView | None:
    """One alert with its signal around the time it fired (or over ``span``), its tenant's
    KPIs and the log of its notifications. None when unknown *or out of scope* (no hint
    that it exists)."""
    store = alert_store(services)
    a = store.get_alert(alert_id)
    if a is None or not tenancy.sees(scope, a.tenant_id):
        return None
    now = now or services.now()
    start, end = (span.start, span.end) if span is not None else alert_window(a, now)
    ctx = {**a.labels, **{k: str(v) for k, v in a.context.items() if isinstance(v, str)}}
    monitor = ctx.get("monitor") or ctx.get("source_name")
    column = ctx.get("column") or ctx.get("feature")
    metric = ctx.get("metric")
    signal: list[Series] = []
    signal_metrics: list[str] = []
    if monitor or a.model:
        rows = reads.results_between(
            services.metadata,
            start=start,
            end=end,
            source=None,
            model=a.model or None,
            tenant_ids=(a.tenant_id,) if a.tenant_id else scope,
            include_all=a.tenant_id in ("", ALL),
            source_name=monitor,
            columns=(column,) if column else None,
        )
        if metric:
            rows = [r for r in rows if r.metric == metric]
        rows = [r for r in rows if r.model_version == ALL]
        for (src, col, met), rs in sorted(
            series_by(rows, lambda r: (r.source_name, r.column, r.metric)).items()
        )[:6]:
            # a KPI's source and metric are both its name: say it once
            name = " ".join(dict.fromkeys(x for x in (src, col, met) if x))
            signal.append(to_series(name, rs))
            signal_metrics.append(met)
    kpis: list[Series] = []
    kpi_units: dict[str, str] = {}
    if a.tenant_id and a.tenant_id != ALL:
        krows = reads.results_between(
            services.metadata,
            start=start,
            end=end,
            source="kpi",
            tenant_ids=(a.tenant_id,),
            include_all=False,
        )
        specs = kpi_specs(services)
        for name, rs in sorted(series_by(krows, lambda r: r.source_name).items()):
            main = [r for r in rs if r.metric == name]
            if main:
                kpis.append(to_series(name, main))
                spec = specs.get(name, {})
                unit = (main[-1].details or {}).get("unit") or spec.get("unit") or ""
                kpi_units[name] = str(unit)
    rule = store.get_rule(a.rule)
    wanted = tuple((rule.spec.get("channels") or ()) if rule is not None else ())
    # "not sent" alone read as a failed delivery; a rule without channels never sends
    unsent = "not sent"
    if rule is not None and not wanted:
        unsent = f"not sent: the rule {a.rule!r} has no channel"
    notes: list[Notification] = []
    group = store.get_group(a.group_key) if a.group_key else None
    if group is not None:
        for n in store.list_notifications(group_id=group.id, limit=50):
            # this instance's notifications (an earlier instance of the same fingerprint
            # had its own); old notifications without ids fall back to the fingerprint
            ids = n.payload.get("alert_ids")
            if (
                (a.id not in ids)
                if ids
                else (n.fingerprints and a.fingerprint not in n.fingerprints)
            ):
                continue
            event = str(n.payload.get("status", n.status))
            deliveries = store.list_deliveries(notification_id=n.id, limit=20)
            if not deliveries:
                notes.append(Notification(n.created_at, n.status, "", event, 0, unsent))
            for d in deliveries:
                detail = d.last_error or (
                    f"HTTP {d.last_status_code}" if d.last_status_code else ""
                )
                notes.append(
                    Notification(
                        d.delivered_at or d.updated_at,
                        d.status,
                        d.channel_name,
                        d.event,
                        d.attempts,
                        detail,
                    )
                )
    notes.sort(key=lambda n: n.at, reverse=True)
    engine = of(services).alerting.engine
    twins = engine.twins([a]).get(a.id or 0)
    if twins is not None and scope is not None:  # a scoped user sees its tenants' only
        twins = replace(
            twins, tenants=tuple(t for t in twins.tenants if tenancy.sees(scope, t.tenant_id))
        )
    m = engine.mutings([a], now).get(a.fingerprint)
    silences = m.silences if m is not None and a.state != "resolved" else ()
    inhibitors = m.inhibitors if m is not None and a.state != "resolved" else ()
    present = {ch.name: ch for ch in store.list_channels()} if wanted else {}
    missing = tuple(str(n) for n in wanted if n not in present or not present[n].enabled)
    return AlertView(
        a,
        signal,
        kpis,
        notes,
        bool(silences),
        reads.last_computed(services.metadata),
        silences,
        inhibitors,
        twins.all_tenants if twins else None,
        twins.tenants if twins else (),
        start=start,
        end=end,
        signal_metrics=signal_metrics,
        kpi_units=kpi_units,
        missing_channels=missing,
        rule_channels=wanted if rule is not None else None,
    )


def acknowledge(services: Services, scope: Scope, alert_id: int, actor: str) -> AlertRecord:
    """Acknowledge an alert in scope through the alert engine (PagerDuty gets its event)."""
    store = alert_store(services)
    a = store.get_alert(alert_id)
    if a is None or not tenancy.sees(scope, a.tenant_id):
        raise AccessDenied(f"alert {alert_id} not found")
    return of(services).alerting.engine.acknowledge(alert_id, actor)


def silence(
    services: Services,
    scope: Scope,
    alert_id: int,
    hours: float,
    reason: str,
    actor: str,
) -> Any:
    """Silence the alert's labels for ``hours`` (a tenant-scoped user's silence always names
    its tenant, so it cannot mute other tenants' alerts)."""
    if not reason.strip():
        raise ValueError("a silence needs a reason")
    if not 0 < hours <= 24 * 30:
        raise ValueError(f"duration {hours} h must be between 0 and 720 hours")
    store = alert_store(services)
    a = store.get_alert(alert_id)
    if a is None or not tenancy.sees(scope, a.tenant_id):
        raise AccessDenied(f"alert {alert_id} not found")
    matchers = [{"name": k, "value": v, "op": "="} for k, v in sorted(a.labels.items())]
    if not any(m["name"] == "alertname" for m in matchers):
        matchers.append({"name": "alertname", "value": a.rule, "op": "="})
    end = store.now() + timedelta(hours=hours)
    return of(services).alerting.engine.silence(matchers, reason, actor, end)
