"""The feature page: a feature's drift over time and its distributions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from monitor.composition import of
from monitor.ports import ColumnReader
from monitor.queries.common import (
    DRIFT_KINDS,
    Scope,
    memoised,
    page_tenant,
    parse_range,
)
from monitor.queries.model import (
    Series,
    VersionChange,
    results_in_range,
    series_by,
    to_series,
    worst_first,
)
from monitor.queries.overview import Signal, signal_of
from monitor.service import Services
from monitor.timerange import TimeRange
from monitor.window_histograms import WindowHistograms
from storage import reads
from storage.metadata.monitoring import MonitoringStore
from storage.types import ALL, MetricResult

if TYPE_CHECKING:  # numpy loads on first use
    import numpy.typing as npt


@dataclass(frozen=True)
class Distribution:
    """Reference vs current of one window: numeric bins (``edges``) or category bars."""

    kind: str  # "numeric" or "categorical"
    labels: list[str]  # bin or category labels
    reference: list[float]  # shares (sum 1)
    current: list[float]
    window_start: datetime
    # numeric from profiles: the bars' inner edges, (-inf, e_0], (e_0, e_1], ..., (e_k, +inf)
    edges: tuple[float, ...] | None = None


# The chart's bars at most: a drift monitor's reference has ~100 quantile bins, ~90 bars with
# rotated range labels that no one reads; runs of adjacent bins merge into equal-mass bars
MAX_BARS = 24
# categorical bars: the largest categories; the rest are summed into "other", not left out
MAX_CATEGORIES = 15


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
    # the windows overlapping a range that holds no window's start (see ModelView.overlap)
    overlap: tuple[datetime, datetime] | None = None


def _shares(counts: Sequence[Any] | npt.NDArray[Any]) -> list[float]:
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


def profiled_distribution(h: WindowHistograms, window_start: datetime) -> Distribution:
    """Reference vs window shares of a drift monitor's profile histograms (pure): numeric on
    the reference's bin edges (the open end buckets included), runs of adjacent inner bins
    merged so there are at most :data:`MAX_BARS` bars; categorical the
    :data:`MAX_CATEGORIES` - 1 largest categories, then "other" with every other value."""
    if h.kind == "numeric":
        e, ref, cur = _merged_bins(list(h.edges), h.reference, h.current, MAX_BARS)
        labels = [f"≤{e[0]:.3g}"] if e else ["all"]
        labels += [f"{e[i]:.3g}–{e[i + 1]:.3g}" for i in range(len(e) - 1)]
        labels += [f">{e[-1]:.3g}"] if e else []
        return Distribution(
            "numeric", labels, _shares(ref), _shares(cur), window_start, edges=tuple(e)
        )
    names = [*h.categories, "other"]
    by_size = sorted(range(len(h.categories)), key=lambda i: -(h.reference[i] + h.current[i]))
    top = by_size[: MAX_CATEGORIES - 1]
    shown = set(top)
    rest = [i for i in range(len(names)) if i not in shown]  # "other" is always here
    ref = [h.reference[i] for i in top] + [sum(h.reference[i] for i in rest)]
    cur = [h.current[i] for i in top] + [sum(h.current[i] for i in rest)]
    return Distribution(
        "categorical", [names[i] for i in top] + ["other"], _shares(ref), _shares(cur), window_start
    )


def _merged_bins(
    edges: list[float], ref: Sequence[int], cur: Sequence[int], most: int
) -> tuple[list[float], list[int], list[int]]:
    """Counts on ``edges`` (``len(edges) + 1`` buckets, the two open ends included) with runs
    of adjacent inner buckets summed, keeping every ``step``-th edge and the last, so at most
    ``most`` buckets remain; the open ends stay as they are (values beyond the reference)."""
    inner = len(edges) - 1
    if inner + 2 <= most:
        return edges, list(ref), list(cur)
    step = -(-inner // (most - 2))
    kept = [*range(0, inner, step), inner]

    def merge(counts: Sequence[int]) -> list[int]:
        body = counts[1 : inner + 1]
        sums = [sum(body[a:b]) for a, b in pairwise(kept)]
        return [counts[0], *sums, counts[-1]]

    return [edges[i] for i in kept], merge(ref), merge(cur)


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


@memoised
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
    tenants, tenant = page_tenant(services, scope, tenant)
    key, start, end = parse_range(range_key, now or services.now())
    rows, overlap = results_in_range(
        services,
        start=start,
        end=end,
        model=model,
        kinds=DRIFT_KINDS,
        tenant_ids=scope,
        include_all=scope is None,
        columns=(feature,),
        model_version=ALL,
    )
    rows = [r for r in rows if r.model_version == ALL]
    by_tenant = series_by(rows, lambda r: r.tenant_id)
    statistic = []
    breakdown = []
    for t in sorted(by_tenant, key=lambda t: (t != ALL, t)):
        best: dict[datetime, MetricResult] = {}
        for r in by_tenant[t]:
            # the worst by stored status first (with FDR an ok result may be further over
            # its uncorrected threshold than an alert)
            if r.window_start not in best or worst_first(r) > worst_first(best[r.window_start]):
                best[r.window_start] = r
        rs = [best[w] for w in sorted(best)]
        statistic.append(to_series("all tenants" if t == ALL else t, rs))
        breakdown.append(signal_of(rs[-1]))
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
        # the hourly profiles first: a lake-fed model has no raw rows to read
        hist = of(services).monitors.window_histograms(
            chosen_r.source_name, feature, tenant, chosen, chosen_r.window_end
        )
        if hist is not None:
            dist = profiled_distribution(hist, chosen)
        else:
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
        overlap,
    )
