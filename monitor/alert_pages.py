"""Read models of the alert list (``/alerts``): URL parameters checked, one page of alerts
sorted and counted in SQL, and each row's all-tenants twin.

A monitor split by tenant also computes its metric over all tenants together (tenant
``"*"``), so one drift can raise two alerts with the same labels but ``tenant``: the
per-tenant alert and its all-tenants *twin*. Twins are found by fingerprint (the hash of the
labels, :func:`alerts.evaluate.fingerprint`) with ``tenant`` swapped, so the list can say
which alert is the same signal seen over all tenants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alerts.evaluate import fingerprint
from alerts.silences import InhibitIndex, silence_matches
from monitor import tenancy
from monitor.composition import of
from monitor.queries import (
    AccessDenied,
    Scope,
    alert_store,
    check_tenant,
    last_computed,
    visible_tenants,
)
from monitor.service import Services
from monitor.timerange import TimeRange, parse_time_range
from storage.metadata.alerting import ALERT_SORTS
from storage.types import ALL, AlertRecord

STATES: dict[str, tuple[str, ...] | None] = {
    "open": ("firing", "pending"),
    "firing": ("firing",),
    "pending": ("pending",),
    "resolved": ("resolved",),
    "all": None,
}
SEVERITIES = ("critical", "warning", "info")
ORDERS = ("asc", "desc")
PER_PAGE = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
# twins of all-tenant rows are looked up per visible tenant: past this many fingerprints for
# one page the list only says "all tenants together" (the alert page still finds them)
MAX_TWIN_LOOKUPS = 5000


@dataclass(frozen=True)
class ListFilters:
    """What ``/alerts`` shows, as given in its URL (defaults for what is absent)."""

    state: str = "open"
    severity: str = ""
    tenant: str = ""
    model: str = ""
    rule: str = ""
    range: str = ""  # the time range (monitor.timerange): alerts open at some time in it
    from_: str = ""
    to: str = ""
    sort: str = "priority"
    order: str = "asc"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def params(self, **changes: Any) -> dict[str, str]:
        """URL parameters of this view with ``changes``, defaults left out (short links)."""
        view = replace(self, **changes)
        out = {}
        for name, default in _DEFAULTS.items():
            value = getattr(view, name)
            if value != default:
                out[name.rstrip("_")] = str(value)
        return out


_DEFAULTS = {f: getattr(ListFilters(), f) for f in ListFilters.__dataclass_fields__}


def _one_of(name: str, value: str, allowed: Sequence[str], errors: list[str]) -> str:
    if value in allowed:
        return value
    errors.append(f"{name}={value!r} is not one of: {', '.join(allowed)}.")
    return ""


def _positive(name: str, raw: str, errors: list[str]) -> int:
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        errors.append(f"{name}={raw!r} must be a whole number of 1 or more.")
        return 0
    return n


def parse_filters(params: Mapping[str, Any]) -> tuple[ListFilters, list[str]]:
    """The list's filters from URL parameters, and one message per bad value (naming the
    parameter, the value and what is allowed). Absent or empty parameters take the default;
    a bad one is reported, never replaced silently."""
    errors: list[str] = []
    raw = {k: str(v).strip() for k, v in params.items() if v not in (None, "")}
    f = ListFilters()
    kw: dict[str, Any] = {}
    if "state" in raw:
        kw["state"] = _one_of("state", raw["state"], list(STATES), errors)
    if "severity" in raw:
        kw["severity"] = _one_of("severity", raw["severity"], SEVERITIES, errors)
    for name in ("tenant", "model", "rule", "range", "to"):
        if name in raw:
            kw[name] = raw[name]
    if "from" in raw:
        kw["from_"] = raw["from"]
    if "sort" in raw:
        kw["sort"] = _one_of("sort", raw["sort"], ALERT_SORTS, errors)
    if "order" in raw:
        kw["order"] = _one_of("order", raw["order"], ORDERS, errors)
    if "page" in raw:
        kw["page"] = _positive("page", raw["page"], errors)
    if "per_page" in raw:
        n = _positive("per_page", raw["per_page"], errors)
        if n and n not in PER_PAGE:
            errors.append(
                f"per_page={raw['per_page']!r} is not one of: {', '.join(map(str, PER_PAGE))}."
            )
        kw["per_page"] = n
    if errors:
        return f, errors
    return replace(f, **kw), []


@dataclass(frozen=True)
class Twin:
    """The same signal's alert on the other side: over all tenants, or for one tenant.
    ``inhibited_by``: the firing alerts whose inhibit rules mute it (its own row then reads
    "inhibited", not "firing")."""

    id: int
    tenant_id: str
    state: str
    inhibited_by: tuple[int, ...] = ()

    def state_text(self, seen_from: int | None = None) -> str:
        """Its state as its own row and page read it: "firing", "resolved", or "inhibited by
        this alert" (seen from the alert ``seen_from`` that inhibits it) / "by #21"."""
        if self.state != "firing" or not self.inhibited_by:
            return self.state
        names = ["this alert" if i == seen_from else f"#{i}" for i in self.inhibited_by[:3]]
        more = f" and {len(self.inhibited_by) - 3} more" if len(self.inhibited_by) > 3 else ""
        return f"inhibited by {', '.join(names)}{more}"


@dataclass(frozen=True)
class ListRow:
    alert: AlertRecord
    silenced: bool
    twins: list[Twin] = field(default_factory=list)
    # muted by firing alerts (inhibit rules) while they fire; ``inhibitors`` are the ones
    # the user may see (a tenant-scoped user is not shown an all-tenants alert)
    inhibited: bool = False
    inhibitors: list[Twin] = field(default_factory=list)


@dataclass(frozen=True)
class AlertList:
    filters: ListFilters
    span: TimeRange | None  # None: any time
    rows: list[ListRow]
    total: int  # alerts matching the filters, over every page
    pages: int
    tenants: list[str]  # the filter's choices, in scope
    models: list[str]
    rules: list[str]
    now: datetime
    computed_at: datetime | None

    @property
    def first(self) -> int:
        """1-based position of the first row shown (0 when none)."""
        return (self.filters.page - 1) * self.filters.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def twin_fingerprints(a: AlertRecord, tenants: Sequence[str]) -> list[str]:
    """Fingerprints an alert's twins would have: its labels with ``tenant`` set to ``*``
    (for a per-tenant alert) or to each of ``tenants`` (for an all-tenants alert)."""
    if "tenant" not in a.labels:
        return []
    if a.tenant_id == ALL:
        return [fingerprint({**a.labels, "tenant": t}) for t in tenants if t != ALL]
    return [fingerprint({**a.labels, "tenant": ALL})]


def find_twins(
    services: Services,
    alerts: Sequence[AlertRecord],
    scope: Scope,
    tenants: Sequence[str],
    *,
    tenant_states: bool = True,
) -> dict[int, list[Twin]]:
    """Alert id → its twins (the open instance of each twin fingerprint, else the newest).
    A tenant-scoped user is never shown all-tenant alerts, so gets none.

    Each twin knows what inhibits it; ``tenant_states=False`` asks only for the all-tenants
    twins (the list names an all-tenants row's per-tenant twins without their state: asking
    for their thousands would more than double the page's cost)."""
    if scope is not None:
        return {}
    wanted: dict[int, list[str]] = {}
    budget = MAX_TWIN_LOOKUPS
    for a in alerts:
        fps = twin_fingerprints(a, tenants)
        if a.id is None or not fps or len(fps) > budget:
            continue
        budget -= len(fps)
        wanted[a.id] = fps
    every = sorted({fp for fps in wanted.values() for fp in fps})
    best: dict[str, AlertRecord] = {}
    store = alert_store(services)
    for i in range(0, len(every), 500):  # bounded IN lists
        for t in store.list_alerts(fingerprints=every[i : i + 500], limit=100_000):
            cur = best.get(t.fingerprint)
            if cur is None or _rank(t) < _rank(cur):
                best[t.fingerprint] = t
    # a firing twin its inhibit rules mute reads "inhibited" on its own row: say so here too
    muted = find_inhibitors(
        services, [t for t in best.values() if tenant_states or t.tenant_id == ALL]
    )
    out: dict[int, list[Twin]] = {}
    for alert_id, fps in wanted.items():
        found = [best[fp] for fp in fps if fp in best]
        if found:
            out[alert_id] = [
                Twin(
                    int(t.id or 0),
                    t.tenant_id,
                    t.state,
                    tuple(int(src.id or 0) for src in muted.get(t.fingerprint, [])),
                )
                for t in found
            ]
    return out


# inhibit-rule labels stored in their own alert column (list_alerts filters on them)
_LABEL_COLUMNS = {"model": "model", "tenant": "tenant_id", "alertname": "rule"}


def find_inhibitors(
    services: Services, alerts: Sequence[AlertRecord]
) -> dict[str, list[AlertRecord]]:
    """Fingerprint → the firing alerts inhibiting it, for the firing ``alerts`` of one page.

    The engine's inhibit rules decide; only the candidate sources are read: per rule, the
    firing alerts agreeing with a page's alert on the rule's ``equal`` labels that have a
    column (and on the source's severity when the rule names one), not every firing alert.
    """
    engine = of(services).alerting.engine
    store = alert_store(services)
    targets = [a for a in alerts if a.state == "firing"]
    if not targets:
        return {}
    sources: dict[str, AlertRecord] = {}
    tenants: list[str] | None = None
    for rule in engine.inhibit_rules:
        if rule.target.get("tenant") == frozenset({ALL}) and "tenant" not in rule.equal:
            # an all-tenants alert muted by its per-tenant twins: look those up by their
            # fingerprints (a rule's alerts over every tenant would be thousands of rows)
            if tenants is None:
                tenants = [t.tenant_id for t in services.metadata.list_tenants()]
            fps = sorted(
                {
                    fp
                    for a in targets
                    if rule.is_target(a.labels)
                    for fp in twin_fingerprints(a, tenants)
                }
            )
            for i in range(0, len(fps), 500):  # bounded IN lists
                for src in store.list_alerts(
                    state="firing", fingerprints=fps[i : i + 500], limit=100_000
                ):
                    sources[src.fingerprint] = src
            continue
        severity = rule.source.get("severity")
        keys = {
            tuple((k, a.labels.get(k, "")) for k in rule.equal if k in _LABEL_COLUMNS)
            for a in targets
            if rule.is_target(a.labels)
        }
        for key in keys:
            filters: dict[str, Any] = {_LABEL_COLUMNS[k]: v for k, v in key}
            if severity is not None and len(severity) == 1:
                filters["severity"] = next(iter(severity))
            for src in store.list_alerts(state="firing", limit=100_000, **filters):
                sources[src.fingerprint] = src
    index = InhibitIndex(sources.values(), engine.inhibit_rules)
    out: dict[str, list[AlertRecord]] = {}
    for a in targets:
        fps = index.inhibited_by(a)
        if fps:
            out[a.fingerprint] = [sources[fp] for fp in dict.fromkeys(fps)]
    return out


def _rank(a: AlertRecord) -> tuple[int, int]:
    """Open before resolved, then newest."""
    return (0 if a.state in ("firing", "pending") else 1, -(a.id or 0))


def alert_list(
    services: Services, scope: Scope, filters: ListFilters, now: datetime | None = None
) -> AlertList:
    """One page of the alerts in ``scope`` matching ``filters``.

    Raises
    ------
    AccessDenied
        When ``filters.tenant`` is outside the scope.
    RangeError
        When the time range parameters are not valid.
    """
    now = now or services.now()
    span = None
    if filters.range or filters.from_ or filters.to:
        given = {"range": filters.range, "from": filters.from_, "to": filters.to}
        span = parse_time_range(given, now, services.settings.max_range_days)
    store = alert_store(services)
    tenants = visible_tenants(services, scope)
    if filters.tenant:
        check_tenant(scope, filters.tenant)
        tenant_ids: list[str] | None = [filters.tenant]
    else:
        found = tenancy.as_filter(scope)
        tenant_ids = None if found is None else list(found)
    per_page = filters.per_page
    alerts, total = store.page_alerts(
        state=STATES[filters.state],
        severity=filters.severity or None,
        tenant_ids=tenant_ids,
        model=filters.model or None,
        rule=filters.rule or None,
        active_from=span.start if span else None,
        active_to=span.end if span else None,
        sort=filters.sort,
        descending=filters.order == "desc",
        limit=per_page,
        offset=(filters.page - 1) * per_page,
    )
    if any(not tenancy.sees(scope, a.tenant_id) for a in alerts):
        raise AccessDenied("an alert outside your scope matched")  # the SQL filter failed
    silences = store.list_silences(active_at=now)
    twins = find_twins(services, alerts, scope, tenants, tenant_states=False)
    inhibited = find_inhibitors(services, alerts)
    rows = [
        ListRow(
            a,
            any(silence_matches(s, a.labels) for s in silences),
            twins.get(int(a.id or 0), []),
            a.fingerprint in inhibited,
            [
                Twin(int(src.id or 0), src.tenant_id, src.state)
                for src in inhibited.get(a.fingerprint, [])
                # a scoped user sees that it is inhibited, not by another tenant's alert
                if tenancy.sees(scope, src.tenant_id)
            ],
        )
        for a in alerts
    ]
    return AlertList(
        filters=filters,
        span=span,
        rows=rows,
        total=total,
        pages=max(1, math.ceil(total / per_page)),
        tenants=tenants,
        models=[m.name for m in services.metadata.list_models()],
        rules=[r.name for r in store.list_rules()],
        now=now,
        computed_at=last_computed(services),
    )
