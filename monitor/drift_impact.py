"""Which drifted features move the model's performance or its business KPI: the model page's
"why".

The measure is NannyML's correlation ranking (``nannyml.drift.ranker.CorrelationRanker``):
for each feature, Pearson's r between its drift per window and the *absolute change* of
performance per window from the performance of a reference period, with the p-value of the
test of no correlation; a higher r means the feature drifts when performance moves. Drift is
the stored result's value ÷ threshold (p-values as threshold ÷ value: the heatmap's scale,
so methods compare). Two choices of ours, because the results hold no reference-period
performance:

* the reference level is the mean performance of the range's *quiet* windows, those where no
  feature of the model drifted (the median of all windows when fewer than three are quiet);
* performance is the estimated metric when the model has it (it covers the windows whose
  labels have not arrived), else the realized one.

The same r is computed against the linked KPI of the tenant (a KPI whose definition names
the model), and features are ranked by the larger of the two: a feature is a lead when it
moves either. Only features that drifted in the range are ranked; it is association, not
proof.
Next to each, the per-tenant attribution the runner stores on all-tenant drift results
(leave-one-out: the statistic without each tenant), for users who may see all tenants.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from monitor.queries import (
    ALL,
    PRIMARY_METRICS,
    Scope,
    page_tenant,
    parse_range,
    results_in_range,
    severity_score,
    worst_first,
)
from monitor.service import Services
from monitor.timerange import TimeRange
from storage import reads
from storage.metadata.kpis import KpiStore
from storage.types import MetricResult

__all__ = ["FeatureImpact", "ImpactView", "abs_change", "correlate", "feature_impact"]

MIN_PAIRS = 5  # fewest windows with both a drift and a performance value for an r
MIN_QUIET = 3  # fewest quiet windows for their mean to be the reference level


@dataclass(frozen=True)
class Carrier:
    """One tenant's part in an all-tenants drift (leave-one-out, from the runner)."""

    tenant_id: str
    statistic: float | None  # the tenant's own statistic
    without: float | None  # the all-tenants statistic without it
    contribution: float | None  # all tenants minus without it


@dataclass(frozen=True)
class Correlation:
    r: float
    p_value: float
    pairs: int


@dataclass(frozen=True)
class FeatureImpact:
    feature: str
    drifted_windows: int  # windows in alert
    windows: int  # windows with a drift result
    worst: float  # highest value ÷ threshold of its windows in alert
    performance: Correlation | None
    kpi: Correlation | None
    carriers: list[Carrier] = field(default_factory=list)  # biggest contribution first

    @property
    def strength(self) -> float:
        """The larger r of the two (performance, KPI): what the ranking sorts by."""
        rs = [c.r for c in (self.performance, self.kpi) if c is not None]
        return max(rs, default=-1.0)


@dataclass(frozen=True)
class ImpactView:
    model: str
    tenant: str
    metric: str  # the performance metric correlated with
    basis: str  # "estimated" or "realized" ("" when none)
    reference_level: float | None  # the performance the changes are measured from
    kpi: str  # the linked KPI correlated with ("" when none)
    features: list[FeatureImpact]  # drifted features, highest r first
    undrifted: int  # features with drift results that never drifted in the range
    note: str


def _num(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def reference_level(values: Mapping[datetime, float], quiet: Iterable[datetime]) -> float | None:
    """Mean of the quiet windows' values, or the median of all when too few are quiet."""
    q = [values[w] for w in quiet if w in values]
    if len(q) >= MIN_QUIET:
        return statistics.fmean(q)
    return statistics.median(values.values()) if values else None


def abs_change(values: Mapping[datetime, float], level: float | None) -> dict[datetime, float]:
    """|value − level| per window (NannyML's "absolute performance change")."""
    if level is None:
        return {}
    return {w: abs(v - level) for w, v in values.items()}


def correlate(
    drift: Mapping[datetime, float], target: Mapping[datetime, float], min_pairs: int = MIN_PAIRS
) -> Correlation | None:
    """Pearson's r (and its p-value) over the windows both series have; None with fewer than
    ``min_pairs`` windows or when either side is constant there."""
    common = sorted(set(drift) & set(target))
    if len(common) < min_pairs:
        return None
    x = np.array([drift[w] for w in common], dtype=float)
    y = np.array([target[w] for w in common], dtype=float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import pearsonr  # loaded on first use: keeps it off the start-up

    r, p = pearsonr(x, y)
    return Correlation(float(r), float(p), len(common))


def _series(rows: Iterable[MetricResult]) -> dict[datetime, float]:
    return {
        r.window_start: float(r.value)
        for r in rows
        if r.value is not None and math.isfinite(r.value)
    }


def _carriers(details: Mapping[str, Any]) -> list[Carrier]:
    """The tenants that carry an all-tenants drift: those whose leave-one-out drop is
    positive (without them the statistic is lower). The runner ranks every tenant; one whose
    removal raises the statistic dilutes the drift (the demo's model page named initech,
    0.08 alone and 1.2 without against 0.94 for all, second "carrier" of globex's drift)."""
    out = []
    for d in details.get("drivers") or []:
        if isinstance(d, Mapping) and d.get("tenant_id") and (_f(d.get("contribution")) or 0) > 0:
            out.append(
                Carrier(
                    str(d["tenant_id"]),
                    _f(d.get("statistic")),
                    _f(d.get("statistic_without")),
                    _f(d.get("contribution")),
                )
            )
    return sorted(out, key=lambda c: -(c.contribution or 0.0))


def _f(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def rank(
    drift: Mapping[str, Sequence[MetricResult]],
    performance: Mapping[datetime, float],
    kpi: Mapping[datetime, float],
    carriers: Mapping[str, list[Carrier]] | None = None,
) -> tuple[list[FeatureImpact], int, float | None]:
    """Drifted features ranked by the larger of their r with the absolute performance
    change and with the KPI's (then by their worst drift); also the count of undrifted
    features and the performance reference level. ``drift`` holds each feature's results
    (one per window)."""
    scores = {
        f: {r.window_start: severity_score(r) for r in rs if r.status != "no_data"}
        for f, rs in drift.items()
    }
    alerting = {f: {r.window_start for r in rs if r.status == "alert"} for f, rs in drift.items()}
    every = {w for s in scores.values() for w in s}
    drifting = set().union(*alerting.values()) if alerting else set()
    quiet = every - drifting
    level = reference_level(performance, quiet)
    perf_change = abs_change(performance, level)
    kpi_change = abs_change(kpi, reference_level(kpi, quiet))
    out = []
    for f, s in scores.items():
        if not alerting[f]:
            continue
        out.append(
            FeatureImpact(
                feature=f,
                drifted_windows=len(alerting[f]),
                windows=len(s),
                # of the windows in alert: with FDR an ok window may be further over its
                # uncorrected threshold, and "worst" read as the drift's size
                worst=max(s[w] for w in alerting[f] if w in s),
                performance=correlate(s, perf_change),
                kpi=correlate(s, kpi_change),
                carriers=(carriers or {}).get(f, []),
            )
        )

    def key(fi: FeatureImpact) -> tuple[float, float]:
        return (-fi.strength, -fi.worst)

    out.sort(key=key)
    undrifted = sum(1 for f in scores if not alerting[f])
    return out, undrifted, level


def _linked_kpi(services: Services, model: str) -> str:
    for k in sorted(KpiStore(services.metadata).list(), key=lambda k: k.name):
        if k.enabled and str(k.spec.get("model") or "") == model:
            return k.name
    return ""


def feature_impact(
    services: Services,
    scope: Scope,
    model: str,
    tenant: str | None = None,
    range_key: str | TimeRange | None = None,
    metric: str | None = None,
    now: datetime | None = None,
) -> ImpactView:
    """The drifted features of ``model`` for ``tenant`` (or ``*``) in the range, ranked by
    how much they move its performance (``metric``) and its linked KPI."""
    _tenants, tenant = page_tenant(services, scope, tenant)
    _key, start, end = parse_range(range_key, now or services.now())
    # a range holding no window's start shows the windows overlapping it, as the heatmap
    rows, _overlap = results_in_range(
        services,
        start=start,
        end=end,
        model=model,
        kinds=("feature_drift", "performance", "estimated_performance"),
        tenant_ids=(tenant,),
        include_all=tenant == ALL,
        model_version=ALL,
    )
    rows = [r for r in rows if r.tenant_id == tenant and r.model_version == ALL]
    drift: dict[str, dict[datetime, MetricResult]] = defaultdict(dict)
    perf: dict[str, dict[str, list[MetricResult]]] = {
        "estimated_performance": defaultdict(list),
        "performance": defaultdict(list),
    }
    for r in rows:
        if r.kind == "feature_drift" and r.column:
            cur = drift[r.column].get(r.window_start)
            if cur is None or worst_first(r) > worst_first(cur):
                drift[r.column][r.window_start] = r
        elif r.kind in perf:
            perf[r.kind][r.metric].append(r)
    metrics = sorted(set(perf["estimated_performance"]) | set(perf["performance"]))
    if metric not in metrics:
        metric = next((m for m in PRIMARY_METRICS if m in metrics), metrics[0] if metrics else "")
    basis = ""
    performance: dict[datetime, float] = {}
    for kind, name in (("estimated_performance", "estimated"), ("performance", "realized")):
        s = _series(perf[kind].get(metric, []))
        if len(s) >= MIN_PAIRS:
            basis, performance = name, s
            break
    kpi = _linked_kpi(services, model) if tenant != ALL else ""
    kpi_values: dict[datetime, float] = {}
    if kpi:
        krows = reads.results_between(
            services.metadata,
            start=start,
            end=end,
            source="kpi",
            tenant_ids=(tenant,),
            include_all=False,
            source_name=kpi,
        )
        kpi_values = _series(r for r in krows if r.metric == kpi)
    carriers: dict[str, list[Carrier]] = {}
    if scope is None:
        # the runner attributes all-tenant drift to tenants; its newest attributed window
        all_rows = (
            rows
            if tenant == ALL
            else reads.results_between(
                services.metadata,
                start=start,
                end=end,
                source="monitor",
                model=model,
                kinds=("feature_drift",),
                tenant_ids=(ALL,),
                include_all=True,
                model_version=ALL,
            )
        )
        for r in sorted(all_rows, key=lambda r: r.window_start):
            if (
                r.kind == "feature_drift"
                and r.tenant_id == ALL
                and r.column
                and r.details.get("drivers")
            ):
                carriers[r.column] = _carriers(r.details)
    ranked, undrifted, level = rank(
        {f: list(ws.values()) for f, ws in drift.items()}, performance, kpi_values, carriers
    )
    from monitor.kpis.link import ASSOCIATION_NOTE

    return ImpactView(model, tenant, metric, basis, level, kpi, ranked, undrifted, ASSOCIATION_NOTE)
