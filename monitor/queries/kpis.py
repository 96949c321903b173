"""The KPI pages: the portfolio across tenants and one tenant's KPIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.queries.common import (
    AccessDenied,
    Scope,
    alert_store,
    check_tenant,
    parse_range,
    visible_tenants,
    worst_status,
)
from monitor.queries.model import Series, as_number, series_by, to_series
from monitor.service import Services
from monitor.timerange import TimeRange
from storage import reads
from storage.metadata.kpis import KpiStore
from storage.types import ALL, MetricResult


@dataclass(frozen=True)
class KpiCard:
    name: str
    tenant_id: str
    description: str
    unit: str
    direction: str
    target: float | None
    value: float | None
    previous: float | None
    change: float | None  # relative change of ``period`` vs the period before (None: n/a)
    attainment: float | None
    status: str
    message: str
    window_start: datetime | None
    trend: Series
    # business-value KPIs: how the newest value was obtained (realized, estimated, mixed,
    # partial) and the windows whose value is (partly) estimated from predictions
    basis: str | None = None
    estimated: Series | None = None
    period: str = "previous window"  # what ``change`` compares
    period_value: float | None = None  # the mean over the period (when a period of windows)
    change_abs: float | None = None  # absolute change, for values near or below zero


PERIOD_WINDOWS = 7  # "period" of the KPI pages: the last 7 windows vs the 7 before


@dataclass(frozen=True)
class ModelHealth:
    model: str
    status: str
    last_incident: datetime | None
    data_until: datetime | None


def model_health_status(result_statuses: Sequence[str], alert_states: Sequence[str]) -> str:
    """A model's light on a tenant's KPI page: "alert" ("has an open problem", red) only
    with a firing alert; a check flagged in its newest window with no alert open is "warn"
    ("needs a look"): the page said "has an open problem" next to "Still open 0"."""
    if any(s == "firing" for s in alert_states):
        return "alert"
    status = worst_status(result_statuses)
    return "warn" if status == "alert" else status


@dataclass(frozen=True)
class Incidents:
    count: int
    open: int
    mean_ack: timedelta | None
    mean_resolve: timedelta | None


@dataclass(frozen=True)
class KpiTenantView:
    tenant: str
    tenants: list[str]
    range_key: str
    cards: list[KpiCard]
    health: list[ModelHealth]
    incidents: Incidents
    alert_marks: list[tuple[datetime, str]]
    versions: list[tuple[datetime, str, str]]  # (first seen, model, version)
    computed_at: datetime | None


@dataclass(frozen=True)
class Portfolio:
    kpis: list[str]
    tenants: list[str]
    cells: dict[tuple[str, str], KpiCard]
    computed_at: datetime | None


def kpi_specs(services: Services) -> dict[str, dict[str, Any]]:
    return {k.name: dict(k.spec) for k in KpiStore(services.metadata).list()}


def _card(name: str, tenant: str, spec: dict[str, Any], rs: Sequence[MetricResult]) -> KpiCard:
    rs = sorted(rs, key=lambda r: r.window_start)
    valued = [r for r in rs if r.value is not None]
    last = rs[-1] if rs else None
    cur = valued[-1] if valued else None
    prev = valued[-2] if len(valued) > 1 else None
    d = (cur.details if cur else {}) or {}
    value = cur.value if cur else None
    change = change_abs = period_value = None
    period = "previous window"
    values = [float(r.value) for r in valued if r.value is not None]
    if len(values) >= 2 * PERIOD_WINDOWS:
        # compare periods, not single windows: a daily KPI swings with the weekday
        now_mean = sum(values[-PERIOD_WINDOWS:]) / PERIOD_WINDOWS
        before = sum(values[-2 * PERIOD_WINDOWS : -PERIOD_WINDOWS]) / PERIOD_WINDOWS
        period, period_value = f"last {PERIOD_WINDOWS} windows", now_mean
        change_abs = now_mean - before
        change = change_abs / abs(before) if before > 0 and now_mean >= 0 else None
    elif cur and prev and prev.value is not None and cur.value is not None:
        change_abs = cur.value - prev.value
        change = change_abs / abs(prev.value) if prev.value > 0 and cur.value >= 0 else None
    basis = d.get("value_basis")
    est = [r for r in valued if (r.details or {}).get("value_basis") in ("estimated", "mixed")]
    real = [r for r in valued if (r.details or {}).get("value_basis") not in ("estimated", "mixed")]
    return KpiCard(
        name=name,
        tenant_id=tenant,
        description=str(spec.get("description", "")),
        unit=str(d.get("unit", spec.get("unit", ""))),
        direction=str(d.get("direction", spec.get("direction", "higher"))),
        target=as_number(d.get("target", spec.get("target"))),
        value=value,
        previous=prev.value if prev else None,
        change=change,
        attainment=as_number(d.get("attainment")),
        status=last.status if last else "no_data",
        message=str((last.details or {}).get("message", "")) if last else "no value yet",
        window_start=last.window_start if last else None,
        trend=to_series(name, real),
        basis=str(basis) if basis else None,
        estimated=to_series(f"{name} (estimated)", est) if est else None,
        period=period,
        period_value=period_value,
        change_abs=change_abs,
    )


def kpi_portfolio(
    services: Services,
    scope: Scope,
    range_key: str | TimeRange | None = None,
    now: datetime | None = None,
) -> Portfolio:
    """Tenants × KPIs with the newest value and status."""
    tenants = visible_tenants(services, scope)
    specs = kpi_specs(services)
    _key, start, end = parse_range(range_key or "30d", now or services.now())
    rows = reads.results_between(
        services.metadata, start=start, end=end, source="kpi", tenant_ids=scope, include_all=False
    )
    main = [r for r in rows if r.metric == r.source_name]
    groups = series_by(main, lambda r: (r.source_name, r.tenant_id))
    names = sorted(set(specs) | {n for n, _ in groups})
    cells = {
        (n, t): _card(n, t, specs.get(n, {}), rs) for (n, t), rs in groups.items() if t in tenants
    }
    return Portfolio(names, tenants, cells, reads.last_computed(services.metadata, source="kpi"))


def kpi_tenant(
    services: Services,
    scope: Scope,
    tenant: str,
    range_key: str | TimeRange | None = None,
    now: datetime | None = None,
) -> KpiTenantView:
    check_tenant(scope, tenant)
    if tenant == ALL:
        raise AccessDenied("pick a tenant")
    now = now or services.now()
    key, start, end = parse_range(range_key, now or services.now())
    specs = kpi_specs(services)
    rows = reads.results_between(
        services.metadata,
        start=start,
        end=end,
        source="kpi",
        tenant_ids=(tenant,),
        include_all=False,
    )
    main = series_by([r for r in rows if r.metric == r.source_name], lambda r: r.source_name)
    cards = [_card(n, tenant, specs.get(n, {}), rs) for n, rs in sorted(main.items())]
    store = alert_store(services)
    alerts = store.list_alerts(tenant_id=tenant, limit=1000)
    models = sorted({str(s.get("model")) for s in specs.values() if s.get("model")})
    models = models or [m.name for m in services.metadata.list_models()]
    latest = reads.latest_results(
        services.metadata, source="monitor", tenant_ids=(tenant,), include_all=False
    )
    health = []
    for m in models:
        rs = [r for r in latest if r.model == m]
        mine = [a for a in alerts if a.model == m]
        status = model_health_status([r.status for r in rs], [a.state for a in mine])
        health.append(
            ModelHealth(
                m,
                status,
                max((a.active_at for a in mine), default=None),
                max((r.window_end for r in rs), default=None),
            )
        )
    # Incidents are placed in data time (the first breaching window), so a backfill shows
    # them where they happened; time to resolve is in data time too (first breaching window
    # to the window that cleared), time to acknowledge is wall-clock (people acknowledge).
    in_range = [a for a in alerts if a.active_at >= start]
    acks = [
        a.acknowledged_at - a.fired_at
        for a in in_range
        if a.acknowledged_at and a.fired_at and a.acknowledged_at >= a.fired_at
    ]
    res = [
        a.last_window_end - a.active_at
        for a in in_range
        if a.state == "resolved" and a.last_window_end and a.last_window_end > a.active_at
    ]
    incidents = Incidents(
        len(in_range),
        sum(a.state == "firing" for a in in_range),
        sum(acks, timedelta()) / len(acks) if acks else None,
        sum(res, timedelta()) / len(res) if res else None,
    )
    versions = []
    for m in models:
        spans = reads.version_spans(services.logstore, m)
        for v, first, _l, _n in spans[1:]:  # the first version is not a change
            if first >= start:
                versions.append((first, m, v))
    return KpiTenantView(
        tenant,
        visible_tenants(services, scope),
        key,
        cards,
        health,
        incidents,
        sorted(
            # the column when there is one; never a metric's name (the executive reads this)
            (a.active_at, f"{a.rule}: {a.labels['column']}" if a.labels.get("column") else a.rule)
            for a in in_range
            if a.severity == "critical" or a.state == "firing"
        ),
        sorted(versions),
        reads.last_computed(services.metadata, source="kpi"),
    )
