"""Read models of the dashboard: what each page shows, as plain values, from stored results.

Nothing here computes drift: every function reads results the runner, the KPI job and the
alert engine stored. Every function takes the caller's tenant scope (``tenants``: the tenant
ids the user may see, or None for all) and filters by it *here*, so a page cannot forget to:
a tenant-scoped user never receives another tenant's rows, nor the results computed over all
tenants together (tenant ``"*"``), which mix in other tenants' data.
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pyarrow as pa

from monitor import tenancy
from monitor.composition import of
from monitor.errors import PermissionDenied
from monitor.ports import ColumnReader
from monitor.service import Services
from monitor.timerange import TimeRange, parse_time_range
from storage import reads
from storage.metadata.alerting import AlertStore
from storage.metadata.kpis import KpiStore
from storage.metadata.monitoring import MonitoringStore
from storage.types import ALL, AlertRecord, MetricResult

Scope = tenancy.Scope  # the one tenant-scope policy: monitor.tenancy
T = TypeVar("T")

STATUS_RANK = {"no_data": 0, "ok": 1, "warn": 2, "alert": 3}
DRIFT_KINDS = ("feature_drift",)
# performance metric shown first on the model page, when stored
PRIMARY_METRICS = ("roc_auc", "accuracy", "f1", "mae", "rmse", "mape", "r2")
LATEST_DAYS = 30  # how far back the overview looks for a monitor's newest window


_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 128


def _cached(func: Callable[..., T]) -> Callable[..., T]:
    """Memoise a read model of stored results by its arguments, the results' version and the
    current minute (ranges end "now"). Views holding alert state (which changes on ack) are
    not cached. Exceptions (AccessDenied) are not cached."""

    @functools.wraps(func)
    def wrapper(services: Services, *args: Any, **kwargs: Any) -> T:
        if kwargs.get("now") is not None:
            return func(services, *args, **kwargs)
        version = reads.results_version(services.metadata)
        minute = int(services.now().timestamp() // 60)
        key = (func.__name__, id(services), version, minute, args, tuple(sorted(kwargs.items())))
        with _CACHE_LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return _CACHE[key]  # type: ignore[no-any-return]
        value = func(services, *args, **kwargs)
        with _CACHE_LOCK:
            _CACHE[key] = value
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return value

    return wrapper


class AccessDenied(PermissionDenied):
    """The caller's scope does not include the requested tenant or object."""


def worst_status(statuses: Iterable[str]) -> str:
    """The worst of ``alert > warn > ok > no_data`` (``no_data`` when empty)."""
    return max(statuses, key=lambda s: STATUS_RANK.get(s, 0), default="no_data")


def severity_score(r: MetricResult) -> float:
    """How far past its threshold a result is: value / threshold, or threshold / value for
    p-values (``details["direction"] == "below"``: smaller is worse); ≥ 1 means breached.
    Results without both numbers score by status."""
    v, t = r.value, r.threshold
    if v is not None and t is not None and t > 0 and math.isfinite(v):
        if r.details.get("direction") == "below":
            score = min(t / max(v, 1e-12), 10.0)
        else:
            score = abs(v / t)
        return max(score, 1.0) if r.status == "alert" else score
    return {"alert": 1.5, "warn": 1.0, "ok": 0.5}.get(r.status, 0.0)


def last_computed(services: Services, source: str | None = None) -> datetime | None:
    """When the newest stored result (of ``source``: monitor or kpi) was computed."""
    return reads.last_computed(services.metadata, source=source)


def visible_tenants(services: Services, scope: Scope) -> list[str]:
    return tenancy.visible(scope, [t.tenant_id for t in services.metadata.list_tenants()])


def check_tenant(scope: Scope, tenant: str) -> None:
    if tenancy.sees(scope, tenant):
        return
    if tenant == ALL:
        raise AccessDenied("results over all tenants are not in your scope")
    raise AccessDenied(f"tenant {tenant!r} is not in your scope")


def parse_range(
    value: str | TimeRange | None, now: datetime, max_days: float = 36_500
) -> tuple[str, datetime, datetime]:
    """(key, start, end) of a page's range: a :class:`~monitor.timerange.TimeRange` as given
    (``key`` "custom" for from/to), or a span back from ``now`` (``"7d"``, ``"12h"``,
    ``"4w"``; None: 30 days). An unreadable span raises
    :class:`~monitor.timerange.RangeError`, never falls back to the default."""
    if isinstance(value, TimeRange):
        return value.key, value.start, value.end
    tr = parse_time_range({"range": value} if value else {}, now, max_days)
    return tr.key, tr.start, tr.end


def alert_store(services: Services) -> AlertStore:
    """The alert store of the process's alerting runtime (shared with the API)."""
    return of(services).alerting.store


# ---------------------------------------------------------------------------------- overview
@dataclass(frozen=True)
class Cell:
    status: str
    alerting: int  # results in alert in the newest windows
    warning: int
    firing: int  # firing alerts


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
    firing_by_severity: dict[str, int]
    computed_at: datetime | None


def _signal(r: MetricResult) -> Signal:
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
    now, whatever the range."""
    tenants = visible_tenants(services, scope)
    models = [m.name for m in services.metadata.list_models()]
    _key, start, end = parse_range(range_key or f"{LATEST_DAYS}d", services.now())
    latest = reads.latest_results(
        services.metadata,
        source="monitor",
        tenant_ids=scope,
        include_all=False,
        since=start,
        until=end,
    )
    # counted in SQL: the store may hold any number of firing alerts (reading them, capped
    # at list_alerts' limit of 1,000, undercounted past it)
    store = alert_store(services)
    fire_cell = store.count_alerts(("model", "tenant_id"), state="firing", tenant_ids=scope)
    sev = {
        severity: n
        for (severity,), n in store.count_alerts(
            ("severity",), state="firing", tenant_ids=scope
        ).items()
    }
    by_cell: dict[tuple[str, str], list[MetricResult]] = defaultdict(list)
    for r in latest:
        by_cell[(r.model or "", r.tenant_id)].append(r)
    cells = {}
    for m in models:
        for t in tenants:
            rs = by_cell.get((m, t), [])
            status = worst_status(r.status for r in rs)
            if fire_cell.get((m, t)):
                status = "alert"
            cells[(m, t)] = Cell(
                status,
                sum(r.status == "alert" for r in rs),
                sum(r.status == "warn" for r in rs),
                fire_cell.get((m, t), 0),
            )
    flagged = [r for r in latest if r.status in ("alert", "warn")]
    flagged.sort(key=lambda r: (-STATUS_RANK[r.status], -severity_score(r)))
    return Overview(
        models,
        tenants,
        cells,
        [_signal(r) for r in flagged[:worst_n]],
        sev,
        reads.last_computed(services.metadata),
    )


# ---------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Series:
    """One line: x (window starts), y, optional band and per-point status."""

    name: str
    x: list[datetime]
    y: list[float | None]
    threshold: list[float | None] = field(default_factory=list)
    lower: list[float | None] = field(default_factory=list)
    upper: list[float | None] = field(default_factory=list)
    status: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Heatmap:
    features: list[str]
    windows: list[datetime]
    z: list[list[float | None]]  # features × windows: value / threshold (≥ 1 drifted)
    text: list[list[str]]


@dataclass(frozen=True)
class VersionChange:
    version: str
    first_seen: datetime
    rows: int


@dataclass(frozen=True)
class ModelView:
    model: str
    task: str
    tenant: str
    tenants: list[str]
    range_key: str
    start: datetime
    end: datetime
    heatmap: Heatmap
    prediction: list[Series]
    realized: list[Series]
    estimated: list[Series]
    metric: str  # the performance metric shown
    metrics: list[str]  # every performance metric stored
    labels_until: datetime | None
    quality: list[tuple[str, str, float | None, str]]  # (column, metric, value, status)
    versions: list[VersionChange]
    computed_at: datetime | None


def default_tenant(scope: Scope, tenants: Sequence[str]) -> str:
    """``*`` (all tenants together) for users who see everything, else their first tenant."""
    if scope is None:
        return ALL
    return tenants[0] if tenants else ""


def _series_by(results: Iterable[MetricResult], key: Any) -> dict[Any, list[MetricResult]]:
    out: dict[Any, list[MetricResult]] = defaultdict(list)
    for r in results:
        out[key(r)].append(r)
    return out


def _to_series(name: str, rs: Sequence[MetricResult]) -> Series:
    rs = sorted(rs, key=lambda r: r.window_start)
    return Series(
        name,
        [r.window_start for r in rs],
        [r.value for r in rs],
        [r.threshold for r in rs],
        [_num(r.details.get("lower")) for r in rs],
        [_num(r.details.get("upper")) for r in rs],
        [r.status for r in rs],
    )


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def heatmap(results: Iterable[MetricResult]) -> Heatmap:
    """Feature × window matrix of the worst value / threshold of each cell."""
    cells: dict[tuple[str, datetime], MetricResult] = {}
    for r in results:
        if not r.column:
            continue
        k = (r.column, r.window_start)
        if k not in cells or severity_score(r) > severity_score(cells[k]):
            cells[k] = r
    features = sorted({c for c, _ in cells})
    windows = sorted({w for _, w in cells})
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for f in features:
        zr, tr = [], []
        for w in windows:
            r = cells.get((f, w))
            if r is None or r.status == "no_data":
                zr.append(None)
                tr.append("no data")
                continue
            zr.append(round(severity_score(r), 4))
            v = "–" if r.value is None else f"{r.value:.4g}"
            th = "–" if r.threshold is None else f"{r.threshold:.4g}"
            tr.append(f"{r.metric} {v} (threshold {th}), {r.status}")
        z.append(zr)
        text.append(tr)
    return Heatmap(features, windows, z, text)


@_cached
def model_view(
    services: Services,
    scope: Scope,
    model: str,
    tenant: str | None = None,
    range_key: str | TimeRange | None = None,
    now: datetime | None = None,
    metric: str | None = None,
) -> ModelView | None:
    """Everything the model page shows, for one tenant (or ``*``) and time range; None when
    the model is unknown."""
    info = services.metadata.get_model(model)
    if info is None:
        return None
    tenants = visible_tenants(services, scope)
    tenant = tenant or default_tenant(scope, tenants)
    check_tenant(scope, tenant)
    key, start, end = parse_range(range_key, now or services.now())
    rows = reads.results_between(
        services.metadata,
        start=start,
        end=end,
        source="monitor",
        model=model,
        kinds=("feature_drift", "prediction_drift", "performance", "estimated_performance"),
        tenant_ids=(tenant,),
        include_all=tenant == ALL,
        model_version=ALL,
    )
    # data quality: only the newest window is shown (its history is the bulk of the rows)
    rows += [
        r
        for r in reads.latest_results(
            services.metadata,
            source="monitor",
            model=model,
            kinds=("data_quality",),
            tenant_ids=(tenant,),
            include_all=tenant == ALL,
            model_version=ALL,
        )
        if r.tenant_id == tenant
    ]
    by_kind = _series_by(rows, lambda r: r.kind)
    # drift_share (share of drifted columns) is a summary, not a statistic to plot
    pred = _series_by(
        [r for r in by_kind.get("prediction_drift", []) if r.metric != "drift_share"],
        lambda r: (r.column or "prediction", r.metric),
    )
    realized = _series_by(
        [r for r in by_kind.get("performance", []) if r.model_version == ALL], lambda r: r.metric
    )
    estimated = _series_by(
        [r for r in by_kind.get("estimated_performance", []) if r.model_version == ALL],
        lambda r: r.metric,
    )
    labelled = [r.window_end for r in by_kind.get("performance", []) if r.status != "no_data"]
    latest_quality: dict[tuple[str, str], MetricResult] = {}
    for r in by_kind.get("data_quality", []):
        k = (r.column, r.metric)
        if k not in latest_quality or r.window_start > latest_quality[k].window_start:
            latest_quality[k] = r
    quality = sorted(
        ((c, m, r.value, r.status) for (c, m), r in latest_quality.items()),
        key=lambda q: (-STATUS_RANK.get(q[3], 0), q[0], q[1]),
    )
    versions = [
        VersionChange(v, first, n)
        for v, first, _last, n in reads.version_spans(services.logstore, model)
    ]
    metrics = sorted(set(realized) | set(estimated))
    if metric not in metrics:
        metric = next((m for m in PRIMARY_METRICS if m in metrics), metrics[0] if metrics else "")
    prediction = [_to_series(f"{c} {m}", rs) for (c, m), rs in sorted(pred.items())]
    prediction = [s for s in prediction if any(v is not None for v in s.y)]
    return ModelView(
        model=model,
        task=info.schema.task,
        tenant=tenant,
        tenants=tenants,
        range_key=key,
        start=start,
        end=end,
        heatmap=heatmap(r for r in by_kind.get("feature_drift", []) if r.model_version == ALL),
        prediction=prediction,
        realized=[_to_series(metric, realized[metric])] if metric in realized else [],
        estimated=[_to_series(metric, estimated[metric])] if metric in estimated else [],
        metric=metric,
        metrics=metrics,
        labels_until=max(labelled, default=None),
        quality=quality,
        versions=versions,
        computed_at=reads.last_computed(services.metadata, source="monitor", model=model),
    )


# ---------------------------------------------------------------------------------- feature
@dataclass(frozen=True)
class Distribution:
    """Reference vs current of one window: numeric bins (``edges``) or category bars."""

    kind: str  # "numeric" or "categorical"
    labels: list[str]  # bin or category labels
    reference: list[float]  # shares (sum 1)
    current: list[float]
    window_start: datetime


@dataclass(frozen=True)
class FeatureView:
    model: str
    feature: str
    tenant: str
    tenants: list[str]
    range_key: str
    start: datetime
    end: datetime
    statistic: list[Series]  # one per tenant in scope (and ``*``)
    breakdown: list[Signal]  # newest window per tenant
    windows: list[datetime]
    window: datetime | None
    distribution: Distribution | None
    versions: list[VersionChange]
    computed_at: datetime | None


def _shares(counts: Sequence[Any]) -> list[float]:
    vals = [float(c or 0) for c in counts]
    total = sum(vals)
    return [v / total if total else 0.0 for v in vals]


def distribution(r: MetricResult) -> Distribution | None:
    """The reference and current histograms stored in a drift result's details, if any.

    Reads ``details["histogram"] = {"edges" | "categories", "reference", "current"}``.
    """
    h = r.details.get("histogram")
    if not isinstance(h, dict):
        return None
    ref, cur = h.get("reference"), h.get("current")
    if not isinstance(ref, list) or not isinstance(cur, list) or len(ref) != len(cur):
        return None
    if isinstance(h.get("categories"), list):
        labels = [str(c) for c in h["categories"]]
        kind = "categorical"
    elif isinstance(h.get("edges"), list) and len(h["edges"]) == len(ref) + 1:
        e = [float(x) for x in h["edges"]]
        labels = [f"{e[i]:.3g}–{e[i + 1]:.3g}" for i in range(len(ref))]
        kind = "numeric"
    else:
        return None
    if len(labels) != len(ref):
        return None
    return Distribution(kind, labels, _shares(ref), _shares(cur), r.window_start)


def logged_distribution(
    services: Services,
    model: str,
    feature: str,
    tenant: str,
    start: datetime,
    end: datetime,
    reference: dict[str, Any] | None = None,
    max_rows: int = 20_000,
    bins: int = 12,
) -> Distribution | None:
    """Reference vs window distribution of one column read from the logs (bounded reads, no
    statistics): the monitor's reference dataset, or the ``previous_days`` before the window.
    None when either side has no value."""
    info = services.metadata.get_model(model)
    kinds = {f.name: f.kind for f in info.schema.features} if info else {}
    kind = kinds.get(feature)
    if kind is None:
        return None
    logs: ColumnReader = services.logs
    tid = None if tenant == ALL else tenant
    cur = logs.column_values(model, feature, start, end, tenant_id=tid, limit=max_rows)
    dataset = (reference or {}).get("dataset")
    ref: pa.Array[Any] | None
    if dataset:
        try:
            ref = logs.reference_values(model, str(dataset), feature, limit=max_rows)
        except KeyError:
            return None
        if ref is None:
            return None
    else:
        days = int((reference or {}).get("previous_days", 7))
        ref = logs.column_values(
            model, feature, start - timedelta(days=days), start, tenant_id=tid, limit=max_rows
        )
    return binned_distribution(kind, ref, cur, start, bins)


def binned_distribution(
    kind: str,
    reference: pa.Array[Any],
    current: pa.Array[Any],
    window_start: datetime,
    bins: int = 12,
) -> Distribution | None:
    """Reference vs current shares of two bounded columns (pure): numeric on ``bins``
    quantile bins of the reference's finite values, stretched to cover both sides; otherwise
    the 15 most frequent categories. None when either side has no value."""
    import numpy as np

    ref = reference.drop_null().to_numpy(zero_copy_only=False)
    cur = current.drop_null().to_numpy(zero_copy_only=False)
    if len(ref) == 0 or len(cur) == 0:
        return None
    if kind == "numeric":
        r = ref.astype(float)
        c = cur.astype(float)
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        if len(r) == 0 or len(c) == 0:
            return None
        edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([r.min() - 0.5, r.max() + 0.5])
        lo, hi = min(edges[0], c.min()), max(edges[-1], c.max())
        edges[0], edges[-1] = lo, hi
        rc, _ = np.histogram(r, edges)
        cc, _ = np.histogram(c, edges)
        labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
        return Distribution("numeric", labels, _shares(rc), _shares(cc), window_start)
    rv, rn = np.unique(ref.astype(str), return_counts=True)
    cv, cn = np.unique(cur.astype(str), return_counts=True)
    rmap, cmap = dict(zip(rv, rn, strict=True)), dict(zip(cv, cn, strict=True))
    cats = sorted(set(rmap) | set(cmap), key=lambda k: -(rmap.get(k, 0) + cmap.get(k, 0)))[:15]
    return Distribution(
        "categorical",
        cats,
        _shares([rmap.get(k, 0) for k in cats]),
        _shares([cmap.get(k, 0) for k in cats]),
        window_start,
    )


@_cached
def feature_view(
    services: Services,
    scope: Scope,
    model: str,
    feature: str,
    tenant: str | None = None,
    range_key: str | TimeRange | None = None,
    window: datetime | None = None,
    now: datetime | None = None,
) -> FeatureView | None:
    info = services.metadata.get_model(model)
    if info is None:
        return None
    tenants = visible_tenants(services, scope)
    tenant = tenant or default_tenant(scope, tenants)
    check_tenant(scope, tenant)
    key, start, end = parse_range(range_key, now or services.now())
    rows = reads.results_between(
        services.metadata,
        start=start,
        end=end,
        source="monitor",
        model=model,
        kinds=DRIFT_KINDS,
        tenant_ids=scope,
        include_all=scope is None,
        columns=(feature,),
        model_version=ALL,
    )
    rows = [r for r in rows if r.model_version == ALL]
    by_tenant = _series_by(rows, lambda r: r.tenant_id)
    statistic = []
    breakdown = []
    for t in sorted(by_tenant, key=lambda t: (t != ALL, t)):
        best: dict[datetime, MetricResult] = {}
        for r in by_tenant[t]:
            if r.window_start not in best or severity_score(r) > severity_score(
                best[r.window_start]
            ):
                best[r.window_start] = r
        rs = [best[w] for w in sorted(best)]
        statistic.append(_to_series("all tenants" if t == ALL else t, rs))
        breakdown.append(_signal(rs[-1]))
    mine = sorted(
        (r for r in by_tenant.get(tenant, []) if r.status != "no_data"),
        key=lambda r: r.window_start,
    )
    windows = sorted({r.window_start for r in mine})
    chosen = window if window in windows else (windows[-1] if windows else None)
    dist = None
    for r in mine:
        if r.window_start == chosen:
            dist = distribution(r) or dist
    if dist is None and chosen is not None:
        chosen_r = next(r for r in mine if r.window_start == chosen)
        monitor = MonitoringStore(services.metadata).get_monitor(chosen_r.source_name)
        ref_cfg = (monitor.config.get("reference") if monitor else None) or None
        dist = logged_distribution(
            services, model, feature, tenant, chosen, chosen_r.window_end, ref_cfg
        )
    return FeatureView(
        model,
        feature,
        tenant,
        tenants,
        key,
        start,
        end,
        statistic,
        breakdown,
        windows,
        chosen,
        dist,
        [VersionChange(v, f, n) for v, f, _l, n in reads.version_spans(services.logstore, model)],
        reads.last_computed(services.metadata, source="monitor", model=model),
    )


# ---------------------------------------------------------------------------------- alerts
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
            _series_by(rows, lambda r: (r.source_name, r.column, r.metric)).items()
        )[:6]:
            signal.append(_to_series(" ".join(x for x in (src, col, met) if x), rs))
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
        specs = _kpi_specs(services)
        for name, rs in sorted(_series_by(krows, lambda r: r.source_name).items()):
            main = [r for r in rs if r.metric == name]
            if main:
                kpis.append(_to_series(name, main))
                spec = specs.get(name, {})
                unit = (main[-1].details or {}).get("unit") or spec.get("unit") or ""
                kpi_units[name] = str(unit)
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
                notes.append(Notification(n.created_at, n.status, "", event, 0, "not sent"))
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
    rule = store.get_rule(a.rule)
    wanted = tuple((rule.spec.get("channels") or ()) if rule is not None else ())
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


# ---------------------------------------------------------------------------------- KPIs
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


def _kpi_specs(services: Services) -> dict[str, dict[str, Any]]:
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
        target=_num(d.get("target", spec.get("target"))),
        value=value,
        previous=prev.value if prev else None,
        change=change,
        attainment=_num(d.get("attainment")),
        status=last.status if last else "no_data",
        message=str((last.details or {}).get("message", "")) if last else "no value yet",
        window_start=last.window_start if last else None,
        trend=_to_series(name, real),
        basis=str(basis) if basis else None,
        estimated=_to_series(f"{name} (estimated)", est) if est else None,
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
    specs = _kpi_specs(services)
    _key, start, end = parse_range(range_key or "30d", now or services.now())
    rows = reads.results_between(
        services.metadata, start=start, end=end, source="kpi", tenant_ids=scope, include_all=False
    )
    main = [r for r in rows if r.metric == r.source_name]
    groups = _series_by(main, lambda r: (r.source_name, r.tenant_id))
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
    specs = _kpi_specs(services)
    rows = reads.results_between(
        services.metadata,
        start=start,
        end=end,
        source="kpi",
        tenant_ids=(tenant,),
        include_all=False,
    )
    main = _series_by([r for r in rows if r.metric == r.source_name], lambda r: r.source_name)
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
        status = worst_status(r.status for r in rs)
        if any(a.state == "firing" for a in mine):
            status = "alert"
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


# ---------------------------------------------------------------------------------- monitors
@dataclass(frozen=True)
class MonitorRow:
    name: str
    model: str
    kind: str
    enabled: bool
    version: int
    last_run: datetime | None
    last_status: str
    last_error: str | None


@dataclass(frozen=True)
class MonitorsView:
    monitors: list[MonitorRow]
    kpis: list[tuple[str, str, bool]]  # (name, formula, enabled)
    rules: list[tuple[str, str, bool]]  # (name, severity, enabled)
    errors: list[tuple[str, datetime, str]]  # (monitor, window start, error)
    computed_at: datetime | None


def monitors_view(services: Services, span: TimeRange | None = None) -> MonitorsView:
    """Monitors with their last run, KPIs, rules, and the failed runs of the windows in
    ``span`` (the 20 newest; any time when None)."""
    ms = MonitoringStore(services.metadata)
    last = reads.last_run_at(services.metadata)
    monitors = [
        MonitorRow(
            m.name,
            m.model,
            m.kind,
            m.enabled,
            m.version,
            *(last.get(m.name) or (None, "never run", None)),
        )
        for m in ms.list_monitors()
    ]
    runs, _ = ms.list_runs(
        status="error",
        start=span.start if span else None,
        end=span.end if span else None,
        limit=20,
    )
    kpis = [
        (k.name, str(k.spec.get("formula", "")), k.enabled)
        for k in KpiStore(services.metadata).list()
    ]
    rules = [
        (r.name, str(r.spec.get("severity", "")), r.enabled)
        for r in alert_store(services).list_rules()
    ]
    return MonitorsView(
        monitors,
        kpis,
        rules,
        [(r.monitor, r.window_start, r.error or "") for r in runs],
        reads.last_computed(services.metadata),
    )
