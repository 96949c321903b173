"""The model page: metric series, the drift heatmap, version changes."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.queries.common import (
    PRIMARY_METRICS,
    STATUS_RANK,
    Scope,
    longest_window,
    memoised,
    page_tenant,
    parse_range,
    severity_score,
)
from monitor.service import Services
from monitor.timerange import TimeRange
from storage import reads
from storage.types import ALL, MetricResult, Status


@dataclass(frozen=True)
class Series:
    """One line: x (window starts), y, optional band, per-point stored status and, for a
    check decided by the false-discovery-rate correction (a monitor with ``fdr: true``), each
    point's q-value (None where the correction did not decide it)."""

    name: str
    x: list[datetime]
    y: list[float | None]
    threshold: list[float | None] = field(default_factory=list)
    lower: list[float | None] = field(default_factory=list)
    upper: list[float | None] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    q: list[float | None] = field(default_factory=list)
    fdr_level: float | None = None  # the false discovery rate the q-values are held to

    @property
    def fdr(self) -> bool:
        """The status comes from the FDR correction: the drawn threshold is the uncorrected
        per-test one, and a point over it may be ok (its q-value above the FDR level)."""
        return any(v is not None for v in self.q)


@dataclass(frozen=True)
class Heatmap:
    features: list[str]
    windows: list[datetime]
    z: list[list[float | None]]  # features × windows: value / threshold (p-values inverted)
    text: list[list[str]]
    # features × windows: each cell's stored status, what its colour shows (with FDR a cell
    # over its threshold may be ok); "no_data" where z is None
    status: list[list[str]] = field(default_factory=list)


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
    quality: list[tuple[str, str, float | None, Status]]  # (column, metric, value, status)
    versions: list[VersionChange]
    computed_at: datetime | None
    # when the range holds no window's start (shorter than the monitors' windows, e.g. 24h on
    # daily monitors): the window(s) overlapping it are shown instead, from .. to
    overlap: tuple[datetime, datetime] | None = None


def series_by(results: Iterable[MetricResult], key: Any) -> dict[Any, list[MetricResult]]:
    out: dict[Any, list[MetricResult]] = defaultdict(list)
    for r in results:
        out[key(r)].append(r)
    return out


def to_series(name: str, rs: Sequence[MetricResult]) -> Series:
    rs = sorted(rs, key=lambda r: r.window_start)
    return Series(
        name,
        [r.window_start for r in rs],
        [r.value for r in rs],
        [r.threshold for r in rs],
        [as_number(r.details.get("lower")) for r in rs],
        [as_number(r.details.get("upper")) for r in rs],
        [r.status for r in rs],
        [as_number(r.details.get("q_value")) for r in rs],
        next((f for r in rs if (f := as_number(r.details.get("fdr_alpha"))) is not None), None),
    )


def as_number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def worst_first(r: MetricResult) -> tuple[int, float]:
    """The sort key of a cell's worst result: its stored status first, then value ÷ threshold
    (with FDR an ok result may be further over its uncorrected threshold than an alert)."""
    return STATUS_RANK.get(r.status, 0), severity_score(r)


def status_text(status: str, details: dict[str, Any] | None) -> str:
    """A result's stored status as hover text, with its q-value when the false-discovery-rate
    correction decided it: "ok (q 0.14 > FDR 0.05)", "alert (q 0.0021 ≤ FDR 0.05)"."""
    q = as_number((details or {}).get("q_value"))
    if q is None:
        return status
    fdr = as_number((details or {}).get("fdr_alpha"))
    level = "" if fdr is None else (f" ≤ FDR {fdr:g}" if q <= fdr else f" > FDR {fdr:g}")
    return f"{status} (q {q:.2g}{level})"


def heatmap(results: Iterable[MetricResult]) -> Heatmap:
    """Feature × window matrix of each cell's worst result (by stored status, then value ÷
    threshold): its value ÷ threshold and its status."""
    cells: dict[tuple[str, datetime], MetricResult] = {}
    for r in results:
        if not r.column:
            continue
        k = (r.column, r.window_start)
        if k not in cells or worst_first(r) > worst_first(cells[k]):
            cells[k] = r
    features = sorted({c for c, _ in cells})
    windows = sorted({w for _, w in cells})
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    status: list[list[str]] = []
    for f in features:
        zr: list[float | None] = []
        tr: list[str] = []
        sr: list[str] = []
        for w in windows:
            cell = cells.get((f, w))
            if cell is None or cell.status == "no_data":
                zr.append(None)
                tr.append("no data")
                sr.append("no_data")
                continue
            zr.append(round(severity_score(cell), 4))
            v = "–" if cell.value is None else f"{cell.value:.4g}"
            th = "–" if cell.threshold is None else f"{cell.threshold:.4g}"
            kind = "uncorrected threshold" if "q_value" in cell.details else "threshold"
            tr.append(f"{cell.metric} {v} ({kind} {th}), {status_text(cell.status, cell.details)}")
            sr.append(cell.status)
        z.append(zr)
        text.append(tr)
        status.append(sr)
    return Heatmap(features, windows, z, text, status)


def results_in_range(
    services: Services, *, start: datetime, end: datetime, model: str, **filters: Any
) -> tuple[list[MetricResult], tuple[datetime, datetime] | None]:
    """A model's monitor results of the windows starting in the range; when none does (a
    range shorter than the monitors' windows: 24h on daily monitors read "No results"), those
    of the windows overlapping it, with their span (else None)."""
    query: dict[str, Any] = dict(start=start, end=end, source="monitor", model=model, **filters)
    rows = reads.results_between(services.metadata, **query)
    if rows:
        return rows, None
    reach = longest_window(services, model)
    if end - start >= reach * 2:  # such a range always holds a whole window
        return rows, None
    rows = reads.results_between(services.metadata, reach=reach, **query)
    if not rows:
        return rows, None
    return rows, (min(r.window_start for r in rows), max(r.window_end for r in rows))


@memoised
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
    tenants, tenant = page_tenant(services, scope, tenant)
    key, start, end = parse_range(range_key, now or services.now())
    rows, overlap = results_in_range(
        services,
        start=start,
        end=end,
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
    by_kind = series_by(rows, lambda r: r.kind)
    # drift_share (share of drifted columns) is a summary, not a statistic to plot
    pred = series_by(
        [r for r in by_kind.get("prediction_drift", []) if r.metric != "drift_share"],
        lambda r: (r.column or "prediction", r.metric),
    )
    realized = series_by(
        [r for r in by_kind.get("performance", []) if r.model_version == ALL], lambda r: r.metric
    )
    estimated = series_by(
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
    shown = (
        metric
        if metric is not None and metric in metrics
        else next((m for m in PRIMARY_METRICS if m in metrics), metrics[0] if metrics else "")
    )
    prediction = [to_series(f"{c} {m}", rs) for (c, m), rs in sorted(pred.items())]
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
        realized=[to_series(shown, realized[shown])] if shown in realized else [],
        estimated=[to_series(shown, estimated[shown])] if shown in estimated else [],
        metric=shown,
        metrics=metrics,
        labels_until=max(labelled, default=None),
        quality=quality,
        versions=versions,
        computed_at=reads.last_computed(services.metadata, source="monitor", model=model),
        overlap=overlap,
    )
