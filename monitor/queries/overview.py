"""The overview page: health per model and tenant, the signals to look at first."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from monitor import tenancy
from monitor.queries.common import (
    LATEST_DAYS,
    STATUS_RANK,
    Scope,
    longest_window,
    parse_range,
    severity_score,
    visible_tenants,
    worst_status,
)
from monitor.queries.firing import firing_alerts, inhibit_index, split_firing
from monitor.service import Services
from monitor.timerange import TimeRange
from storage import reads
from storage.types import MetricResult


@dataclass(frozen=True)
class Cell:
    status: str
    alerting: int  # results in alert in the newest windows
    warning: int
    firing: int  # firing alerts that notify (not inhibited; see monitor.queries.firing)
    inhibited: int = 0  # firing alerts the inhibit rules mute
    # the window shown when it began before the range (a range shorter than the monitor's
    # window, e.g. 24h on daily monitors): its start and end, which the cell names
    window: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class Signal:
    model: str
    tenant_id: str
    monitor: str
    kind: str
    column: str
    metric: str
    value: float | None
    threshold: float | None
    status: str
    window_start: datetime
    score: float


@dataclass(frozen=True)
class Overview:
    models: list[str]
    tenants: list[str]
    cells: dict[tuple[str, str], Cell]
    worst: list[Signal]
    firing_by_severity: dict[str, int]  # firing alerts that notify, not the inhibited
    computed_at: datetime | None
    inhibited: int = 0  # firing alerts the inhibit rules mute, counted apart


def signal_of(r: MetricResult) -> Signal:
    return Signal(
        r.model or "",
        r.tenant_id,
        r.source_name,
        r.kind,
        r.column,
        r.metric,
        r.value,
        r.threshold,
        r.status,
        r.window_start,
        severity_score(r),
    )


def overview(
    services: Services,
    scope: Scope,
    worst_n: int = 10,
    range_key: str | TimeRange | None = None,
) -> Overview:
    """Models × tenants health from the newest window of every monitor in the range (by
    default the last LATEST_DAYS: a monitor silent for longer shows as "no data"; a range
    in the past shows the health as it was at its end). Firing alerts are the ones firing
    now, whatever the range; the inhibited ones are counted apart (``inhibited``, a cell's
    ``inhibited``), as the alert list shows them."""
    tenants = visible_tenants(services, scope)
    models = [m.name for m in services.metadata.list_models()]
    _key, start, end = parse_range(range_key or f"{LATEST_DAYS}d", services.now())
    # the newest window of each monitor *overlapping* the range: a range shorter than a
    # window (24h on daily monitors, not at midnight) holds no window's start, and the grid
    # read "No data" everywhere while alerts fired
    latest = reads.latest_results(
        services.metadata,
        source="monitor",
        tenant_ids=scope,
        include_all=False,
        since=start,
        until=end,
        reach=longest_window(services),
    )
    # every firing alert in scope read (the store may hold thousands: no cap), split as the
    # alert list splits them
    firing = firing_alerts(services)
    seen = [a for a in firing if tenancy.sees(scope, a.tenant_id)]
    split = split_firing(services, seen, inhibit_index(services, firing))
    fire_cell = Counter((a.model, a.tenant_id) for a in split.notifying)
    held_cell = Counter((a.model, a.tenant_id) for a in split.inhibited)
    sev = dict(Counter(a.severity for a in split.notifying))
    by_cell: dict[tuple[str, str], list[MetricResult]] = defaultdict(list)
    for r in latest:
        by_cell[(r.model or "", r.tenant_id)].append(r)
    cells = {}
    for m in models:
        for t in tenants:
            rs = by_cell.get((m, t), [])
            status = worst_status(r.status for r in rs)
            if fire_cell[(m, t)] or held_cell[(m, t)]:
                status = "alert"
            before = [r for r in rs if r.window_start < start]
            cells[(m, t)] = Cell(
                status,
                sum(r.status == "alert" for r in rs),
                sum(r.status == "warn" for r in rs),
                fire_cell[(m, t)],
                held_cell[(m, t)],
                (
                    (min(r.window_start for r in before), max(r.window_end for r in before))
                    if before
                    else None
                ),
            )
    flagged = [r for r in latest if r.status in ("alert", "warn")]
    flagged.sort(key=lambda r: (-STATUS_RANK[r.status], -severity_score(r)))
    return Overview(
        models,
        tenants,
        cells,
        [signal_of(r) for r in flagged[:worst_n]],
        sev,
        reads.last_computed(services.metadata),
        len(split.inhibited),
    )
