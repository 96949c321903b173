"""Read model of the business overview (``/kpis``, the ``executive`` role's landing page) and
of a tenant's KPI headlines (``/kpis/<tenant>``): plain sentences and one tone per KPI from
:mod:`monitor.kpis.headline`, the open business alerts, and the model change most associated
with each KPI at risk (:meth:`monitor.kpis.service.KpiService.related_signals`).

Like ``monitor.queries``, every function takes the caller's tenant scope and filters by it
here: a tenant-scoped user never receives another tenant's rows.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor import tenancy, windows
from monitor.composition import of
from monitor.errors import NotFoundError
from monitor.kpis.definition import KpiDefinition
from monitor.kpis.headline import (
    PERIOD_WINDOWS,
    Headline,
    headline,
    related_phrase,
    worst_tone,
)
from monitor.kpis.tenant_sentences import tenant_sentence
from monitor.service import Services
from storage import reads
from storage.metadata.kpis import KpiStore
from storage.types import MetricResult

__all__ = ["BusinessOverview", "TenantRisk", "business_overview", "tenant_headlines"]

log = logging.getLogger("driftwatch.business")
Scope = tenancy.Scope  # the one tenant-scope policy: monitor.tenancy


@dataclass(frozen=True)
class TenantRisk:
    tenant_id: str
    tone: str  # worst tone of its KPIs
    sentence: str


@dataclass(frozen=True)
class BusinessOverview:
    kpis: list[KpiDefinition]
    tenants: list[str]
    cells: dict[tuple[str, str], Headline]  # (kpi, tenant)
    at_risk: list[TenantRisk]  # worst first
    notes: dict[str, str] = field(default_factory=dict)  # kpi → why it can be negative
    computed_at: datetime | None = None


def _definitions(services: Services) -> list[KpiDefinition]:
    out = []
    for rec in KpiStore(services.metadata).list():
        try:
            d = KpiDefinition.model_validate(rec.spec)
        except ValueError:  # a definition stored by an older version that no longer parses
            log.warning("KPI %s: stored definition does not parse; left out", rec.name)
            continue
        if d.enabled:
            out.append(d)
    return out


def _visible(services: Services, scope: Scope) -> list[str]:
    return tenancy.visible(scope, [t.tenant_id for t in services.metadata.list_tenants()])


def _rows(
    services: Services, d: KpiDefinition, tenants: Sequence[str] | None, now: datetime
) -> dict[str, list[MetricResult]]:
    """The KPI's rows per tenant over the windows a headline reads (two periods)."""
    kind, back = windows.window(d.window), 2 * PERIOD_WINDOWS + 2
    rows = reads.results_between(
        services.metadata,
        start=now - kind.width * back if kind.width else kind.shift(now, -back),
        end=now,
        source="kpi",
        source_name=d.name,
        tenant_ids=tenants,
        include_all=False,
    )
    out: dict[str, list[MetricResult]] = defaultdict(list)
    for r in rows:
        if r.metric == d.name:
            out[r.tenant_id].append(r)
    return out


def _open_alerts(services: Services) -> dict[tuple[str, str], datetime]:
    """(kpi, tenant) → first window of its open business alert (the KPI's own row)."""
    out: dict[tuple[str, str], datetime] = {}
    for a in of(services).alerting.store.list_alerts(state="firing", limit=10_000):
        lab = a.labels
        if lab.get("source") != "kpi" or lab.get("metric") != lab.get("monitor"):
            continue
        key = (lab.get("monitor", ""), a.tenant_id)
        if key not in out or a.active_at < out[key]:
            out[key] = a.active_at
    return out


def _related(services: Services, h: Headline) -> str | None:
    if h.latest_start is None:
        return None
    try:
        found = of(services).kpis.related_signals(h.kpi, h.tenant_id, at=h.latest_start)
    except NotFoundError:
        return None
    not_after = None if h.since is None else windows.window(h.window).end(h.since)
    return related_phrase(found["signals"], h.window, not_after)


def _headlines(
    services: Services, defs: Sequence[KpiDefinition], tenants: Sequence[str], now: datetime
) -> dict[tuple[str, str], Headline]:
    alerts = _open_alerts(services)
    cells: dict[tuple[str, str], Headline] = {}
    for d in defs:
        wanted = d.tenant_list()
        rows = _rows(services, d, tenants, now)
        for t in tenants:
            if wanted is not None and t not in wanted:
                continue
            cells[(d.name, t)] = headline(
                d, t, rows.get(t, []), alert_since=alerts.get((d.name, t))
            )
    return cells


def _risk(
    services: Services, tenant: str, items: Sequence[Headline], related: bool
) -> TenantRisk | None:
    risky = [h for h in items if h.at_risk]
    if not risky:
        return None
    worst = max(risky, key=lambda h: (h.tone == "bad", h.tone == "watch"))
    phrase = _related(services, worst) if related else None
    return TenantRisk(
        tenant, worst_tone([h.tone for h in items]), tenant_sentence(tenant, items, phrase)
    )


def business_overview(
    services: Services, scope: Scope, now: datetime | None = None, related: bool = True
) -> BusinessOverview:
    """Every visible tenant's KPIs against target and against before, the tenants at risk
    in one sentence each (worst first), and why a money KPI can be negative."""
    now = now or services.now()
    defs = _definitions(services)
    tenants = _visible(services, scope)
    cells = _headlines(services, defs, tenants, now)
    risks: list[TenantRisk] = []
    for t in tenants:
        r = _risk(services, t, [h for (_k, tt), h in cells.items() if tt == t], related)
        if r is not None:
            risks.append(r)
    risks.sort(key=lambda r: (r.tone != "bad", r.tenant_id))
    notes = {}
    for (k, _t), h in sorted(cells.items()):
        if h.negative and k not in notes:
            notes[k] = h.negative
    return BusinessOverview(
        defs, tenants, cells, risks, notes, reads.last_computed(services.metadata, source="kpi")
    )


def tenant_headlines(
    services: Services, scope: Scope, tenant: str, now: datetime | None = None
) -> tuple[dict[str, Headline], TenantRisk | None]:
    """One tenant's KPI headlines by KPI name, and its at-risk sentence (None when none)."""
    if not tenancy.sees(scope, tenant):
        return {}, None
    now = now or services.now()
    cells = _headlines(services, _definitions(services), [tenant], now)
    items = {k: h for (k, _t), h in cells.items()}
    return items, _risk(services, tenant, list(items.values()), True)
