"""Model health for Prometheus: the newest value, threshold and status of every monitor metric
and every KPI, per tenant, as gauges on ``/api/v1/metrics`` (so Grafana can chart and alert on
them next to everything else it watches).

Families (``docs/alerting.md`` § Metrics; ``docs/grafana/driftwatch.json`` charts them):

==========================================================  =====================================
``driftwatch_monitor_value{model,monitor,kind,tenant,column,metric}``  newest window's value
``driftwatch_monitor_threshold{...}``                                 its threshold
``driftwatch_monitor_status{...}``                                    -1 no_data, 0 ok, 1 warn, 2 alert
``driftwatch_monitor_window_end_timestamp_seconds{model,monitor,tenant}``  end of that window
``driftwatch_monitor_tenants{model,monitor,kind,column,metric,status}``  tenants per status
``driftwatch_kpi_value{kpi,model,tenant,check}``                      KPI (check="value") and checks
``driftwatch_kpi_threshold{...}``, ``driftwatch_kpi_status{...}``
``driftwatch_kpi_window_end_timestamp_seconds{kpi,tenant}``
``driftwatch_kpi_tenants{kpi,check,status}``
``driftwatch_health_series_dropped{family}``                          label sets left out (bound)
==========================================================  =====================================

Bounded label cardinality (settings ``metrics_max_tenants``, ``metrics_max_series``):

- only the newest window of each monitor / KPI and tenant, and only results over all model
  versions together (``model_version="*"``): one label set per (monitor, tenant, column,
  metric), never one per window or version;
- results over all tenants together (``tenant="*"``) are always exported; per-tenant label sets
  only for the ``metrics_max_tenants`` tenants in the worst state (alert, then warn, then ok,
  then no_data; ties by name), the same tenants for monitors and KPIs;
- the ``*_tenants`` families count every tenant by status (the aggregate of the tenants left
  out: "how many tenants alert on this metric" stays exact);
- at most ``metrics_max_series`` label sets per family: beyond it the least severe per-tenant
  label sets are dropped first; ``driftwatch_health_series_dropped`` says how many.

A value or threshold that is missing (``no_data``, a KPI without target) has no sample: a gap
in a graph, not a zero. The read is one query over the stored results, cached until they
change (``storage.reads.results_version``).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.metrics import Family
from storage import reads
from storage.metadata import MetadataStore
from storage.types import ALL, MetricResult

STATUS_CODE = {"no_data": -1.0, "ok": 0.0, "warn": 1.0, "alert": 2.0}
_SEVERITY = {"alert": 3, "warn": 2, "ok": 1, "no_data": 0}

MONITOR_LABELS = ("model", "monitor", "kind", "tenant", "column", "metric")
KPI_LABELS = ("kpi", "model", "tenant", "check")

FAMILY_NAMES = (
    "driftwatch_monitor_value",
    "driftwatch_monitor_threshold",
    "driftwatch_monitor_status",
    "driftwatch_monitor_window_end_timestamp_seconds",
    "driftwatch_monitor_tenants",
    "driftwatch_kpi_value",
    "driftwatch_kpi_threshold",
    "driftwatch_kpi_status",
    "driftwatch_kpi_window_end_timestamp_seconds",
    "driftwatch_kpi_tenants",
    "driftwatch_health_series_dropped",
)


@dataclass(frozen=True)
class Bounds:
    max_tenants: int = 25
    max_series: int = 5000


def _severity(results: Iterable[MetricResult]) -> int:
    return max((_SEVERITY.get(r.status, 0) for r in results), default=0)


def chosen_tenants(results: Sequence[MetricResult], max_tenants: int) -> set[str]:
    """The tenants whose own label sets are exported: the worst ``max_tenants``."""
    per: dict[str, list[MetricResult]] = defaultdict(list)
    for r in results:
        if r.tenant_id != ALL:
            per[r.tenant_id].append(r)
    ranked = sorted(per, key=lambda t: (-_severity(per[t]), t))
    return set(ranked[:max_tenants])


def _labels_of(r: MetricResult) -> dict[str, str]:
    if r.source == "kpi":
        check = "value" if r.metric == r.source_name else r.metric
        return {"kpi": r.source_name, "model": r.model or "", "tenant": r.tenant_id, "check": check}
    return {
        "model": r.model or "",
        "monitor": r.source_name,
        "kind": r.kind,
        "tenant": r.tenant_id,
        "column": r.column,
        "metric": r.metric,
    }


def families(results: Sequence[MetricResult], bounds: Bounds) -> list[Family]:
    """The model-health families of the newest results (pure: tests call it directly)."""
    results = [r for r in results if r.model_version == ALL]
    keep = chosen_tenants(results, bounds.max_tenants)
    dropped: dict[str, int] = {}
    out: list[Family] = []
    for source, prefix, what in (
        ("monitor", "driftwatch_monitor", "monitor metric"),
        ("kpi", "driftwatch_kpi", "KPI"),
    ):
        rows = [r for r in results if r.source == source]
        shown = [r for r in rows if r.tenant_id == ALL or r.tenant_id in keep]
        dropped_tenants = len(rows) - len(shown)
        # the family bound: most severe first, all-tenants before per-tenant, then by name
        shown.sort(
            key=lambda r: (
                -_SEVERITY.get(r.status, 0),
                r.tenant_id != ALL,
                tuple(_labels_of(r).values()),
            )
        )
        over = max(0, len(shown) - bounds.max_series)
        shown = shown[: bounds.max_series]
        shown.sort(key=lambda r: tuple(_labels_of(r).values()))
        dropped[prefix] = dropped_tenants + over
        out.append(
            Family(
                f"{prefix}_value",
                f'Value of each {what} in its newest window (per tenant; tenant="*": all).',
                "gauge",
                [
                    (f"{prefix}_value", _labels_of(r), float(r.value))
                    for r in shown
                    if r.value is not None
                ],
            )
        )
        out.append(
            Family(
                f"{prefix}_threshold",
                f"Threshold of each {what} in its newest window (target for a KPI's value).",
                "gauge",
                [
                    (f"{prefix}_threshold", _labels_of(r), float(r.threshold))
                    for r in shown
                    if r.threshold is not None
                ],
            )
        )
        out.append(
            Family(
                f"{prefix}_status",
                f"Status of each {what} in its newest window: -1 no_data, 0 ok, 1 warn, 2 alert.",
                "gauge",
                [
                    (f"{prefix}_status", _labels_of(r), STATUS_CODE.get(r.status, -1.0))
                    for r in shown
                ],
            )
        )
        ends: dict[tuple[str, ...], float] = {}
        for r in shown:
            key = (r.model or "", r.source_name, r.tenant_id)
            ends[key] = max(ends.get(key, 0.0), r.window_end.timestamp())
        end_labels = (
            ("model", "monitor", "tenant") if source == "monitor" else ("model", "kpi", "tenant")
        )
        out.append(
            Family(
                f"{prefix}_window_end_timestamp_seconds",
                f"End of the newest evaluated window of each {what.split()[0]} and tenant "
                "(Unix seconds): time() minus it is how stale the data is.",
                "gauge",
                [
                    (
                        f"{prefix}_window_end_timestamp_seconds",
                        dict(zip(end_labels, key, strict=True)),
                        end,
                    )
                    for key, end in sorted(ends.items())
                ],
            )
        )
        counts: Counter[tuple[tuple[str, str], ...]] = Counter()
        for r in rows:
            if r.tenant_id == ALL:
                continue
            labels = {k: v for k, v in _labels_of(r).items() if k != "tenant"}
            labels["status"] = r.status
            counts[tuple(labels.items())] += 1
        out.append(
            Family(
                f"{prefix}_tenants",
                f"Tenants by status of each {what} in its newest window (every tenant, also "
                "those whose own series the cardinality bound leaves out).",
                "gauge",
                [(f"{prefix}_tenants", dict(k), float(n)) for k, n in sorted(counts.items())],
            )
        )
    out.append(
        Family(
            "driftwatch_health_series_dropped",
            "Label sets of model-health families left out by the cardinality bounds "
            "(metrics_max_tenants, metrics_max_series).",
            "gauge",
            [
                ("driftwatch_health_series_dropped", {"family": prefix}, float(n))
                for prefix, n in sorted(dropped.items())
            ],
        )
    )
    return out


class HealthCollector:
    """Scrape-time collector over a metadata store, cached until the results change."""

    def __init__(self, metadata: MetadataStore, bounds: Bounds) -> None:
        self.metadata = metadata
        self.bounds = bounds
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int], list[Family]] | None = None

    def __call__(self) -> list[Family]:
        version = reads.results_version(self.metadata)
        with self._lock:
            if self._cached is not None and self._cached[0] == version:
                return self._cached[1]
        latest = reads.latest_results(self.metadata, source=None, model_version=ALL)
        fams = families(latest, self.bounds)
        with self._lock:
            self._cached = (version, fams)
        return fams
