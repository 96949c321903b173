"""Read model of one alert's page (``/alerts/{id}``): where to go from the alert — its model
and feature, the tenant KPIs that moved with it (or, for a KPI alert, the model signals that
moved with the KPI), its all-tenants twins, the runbook, and each tenant's part in an
all-tenants drift. The alert list is :mod:`monitor.alert_pages`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor import tenancy
from monitor.alert_pages import Twin, find_twins
from monitor.composition import of
from monitor.errors import NotFoundError
from monitor.kpis.link import ASSOCIATION_NOTE
from monitor.queries import Scope, visible_tenants
from monitor.service import Services
from storage.types import ALL, AlertRecord

__all__ = ["AlertLeads", "DriftedColumn", "Driver", "RelatedKpi", "RelatedSignal", "alert_leads"]


@dataclass(frozen=True)
class RelatedKpi:
    """A KPI of the alert's tenant that moved with it (ranked by ``monitor.kpis``)."""

    kpi: str
    tenant_id: str
    change: float | None  # relative change against the windows before
    correlation: float | None
    status: str
    before: float | None = None  # the KPI's mean in the windows before
    during: float | None = None  # and in the alert's windows
    unit: str = ""


@dataclass(frozen=True)
class RelatedSignal:
    """A model signal that moved with a KPI alert (ranked by ``monitor.kpis``)."""

    model: str
    monitor: str
    kind: str
    column: str
    metric: str
    correlation: float | None
    breached: str | None
    breached_since: datetime | None


@dataclass(frozen=True)
class Driver:
    """One tenant's part in an all-tenants drift: its own statistic and the statistic
    without it (leave-one-out, computed by the runner)."""

    tenant_id: str
    rows: int
    statistic: float | None
    without: float | None
    contribution: float | None


@dataclass(frozen=True)
class DriftedColumn:
    """A column a drift-summary alert found drifting in its window: a model feature (it has
    a feature page) or a prediction/score column, and its own firing alert if there is one."""

    name: str
    feature: bool
    alert_id: int | None = None


@dataclass(frozen=True)
class AlertLeads:
    """Where to go from an alert: its model and feature, its tenant's KPIs, its twins, the
    runbook, and what moved with it."""

    model: str
    tenant: str  # "*" for all tenants together
    column: str  # a model feature the alert is about ("" if none)
    window: datetime | None  # the newest window the alert was evaluated on
    runbook_url: str | None
    twins: list[Twin]
    related_kpis: list[RelatedKpi]
    related_signals: list[RelatedSignal]
    drivers: list[Driver]
    note: str  # association, not proof
    # a drift-summary alert's drifting columns (its context's ``drifted_columns``): the
    # summary is the alert that pages, so its page must say which columns and lead to them
    drifted: list[DriftedColumn] = field(default_factory=list)


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _when(v: Any) -> datetime | None:
    try:
        ts = datetime.fromisoformat(str(v))
    except (TypeError, ValueError):
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def alert_leads(services: Services, scope: Scope, a: AlertRecord) -> AlertLeads:
    """The leads of alert ``a`` (already checked to be in ``scope``)."""

    labels = {**a.labels}
    ctx = a.context or {}
    info = services.metadata.get_model(a.model) if a.model else None
    features = {f.name for f in info.schema.features} if info else set()
    column = str(labels.get("column") or ctx.get("column") or "")
    window = (
        _when((ctx.get("window") or {}).get("start"))
        if isinstance(ctx.get("window"), dict)
        else None
    )
    tenants = visible_tenants(services, scope)
    twins = find_twins(services, [a], scope, tenants).get(int(a.id or 0), [])
    related_kpis: list[RelatedKpi] = []
    related_signals: list[RelatedSignal] = []
    kpis = of(services).kpis
    is_kpi = labels.get("source") == "kpi" or a.labels.get("kind") == "kpi"
    if is_kpi and a.tenant_id not in ("", ALL):
        name = str(labels.get("monitor") or ctx.get("monitor") or "")
        try:
            found = kpis.related_signals(name, a.tenant_id, at=window, limit=8)
        except NotFoundError:  # the KPI was deleted or has no results: no leads to show
            found = {"signals": []}
        for s in found.get("signals", []):
            related_signals.append(
                RelatedSignal(
                    str(s.get("model") or ""),
                    str(s.get("monitor") or ""),
                    str(s.get("kind") or ""),
                    str(s.get("column") or ""),
                    str(s.get("metric") or ""),
                    _float(s.get("correlation")),
                    s.get("breached"),
                    _when(s.get("breached_since")),
                )
            )
    elif a.model:
        items = ctx.get("related_kpis")
        if not isinstance(items, list):
            try:
                items = kpis.related_kpis(
                    a.model,
                    a.tenant_id,
                    a.active_at,
                    window,
                    monitor=labels.get("monitor"),
                    column=labels.get("column"),
                    metric=labels.get("metric"),
                ).get("kpis", [])[:5]
            except NotFoundError:
                items = []
        for k in items:
            if not isinstance(k, dict):
                continue
            tenant = str(k.get("tenant_id") or "")
            if not tenancy.sees(scope, tenant):
                continue
            related_kpis.append(
                RelatedKpi(
                    str(k.get("kpi") or ""),
                    tenant,
                    _float(k.get("change")),
                    _float(k.get("correlation")),
                    str(k.get("status") or ""),
                    _float(k.get("before")),
                    _float(k.get("during")),
                    str(k.get("unit") or ""),
                )
            )
    drivers = []
    if a.tenant_id == ALL and scope is None:
        for d in ctx.get("drivers") or []:
            # only the tenants that carry it: leaving one out lowers the statistic (the
            # runner ranks them all; one whose removal raises it dilutes the drift)
            carries = (_float(d.get("contribution")) or 0) > 0 if isinstance(d, dict) else False
            if isinstance(d, dict) and d.get("tenant_id") and carries:
                drivers.append(
                    Driver(
                        str(d["tenant_id"]),
                        int(d.get("rows") or 0),
                        _float(d.get("statistic")),
                        _float(d.get("statistic_without")),
                        _float(d.get("contribution")),
                    )
                )
    drifted: list[DriftedColumn] = []
    names = [str(c) for c in ctx.get("drifted_columns") or [] if isinstance(c, str) and c]
    if names and a.model:
        own: dict[str, int] = {}
        monitor = labels.get("monitor")
        for other in of(services).alerting.store.list_alerts(
            state=("firing", "pending"), tenant_id=a.tenant_id, model=a.model, limit=500
        ):
            col = other.labels.get("column")
            if col and other.labels.get("monitor") == monitor and other.id:
                own.setdefault(str(col), int(other.id))
        drifted = [DriftedColumn(n, n in features, own.get(n)) for n in dict.fromkeys(names)]
    return AlertLeads(
        drifted=drifted,
        model=a.model,
        tenant=a.tenant_id,
        column=column if column in features else "",
        window=window,
        runbook_url=a.annotations.get("runbook_url") or None,
        twins=twins,
        related_kpis=related_kpis,
        related_signals=related_signals,
        drivers=drivers,
        note=ASSOCIATION_NOTE,
    )
