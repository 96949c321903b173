"""``performance``: the task's metrics (``accuracy``, ``roc_auc``, ``mae``...) on the window's
labelled rows per segment, ``alert`` outside the monitor's bounds. Late labels re-run it.

A lake-fed model's labelled rows stay in the lake: the metrics come from the hourly label
aggregates its lake job pushes (``storage.row_kernel``), summed over the window's hours per
segment; the same values up to the order of float additions, except the rank metrics
(``roc_auc``, ``pr_auc``), whose results are ``no_data`` saying why."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from monitor.checks.base import Check, CheckContext
from monitor.checks.common import floats, no_data, num, plain, row_segments
from monitor.checks.registry import register
from storage.types import ALL, MetricResult

__all__ = ["PerformanceCheck"]


@register
class PerformanceCheck(Check):
    kinds = ("performance",)
    uses_labels = True

    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        from detectors.performance import TASK_METRICS, realized_performance

        if ctx.env.profiles.lake_fed(ctx.model):
            return _from_aggregates(ctx), 0
        cfg, schema, base = ctx.cfg, ctx.schema, ctx.base
        table = ctx.env.logs.labelled(
            ctx.model, ctx.start, ctx.end, schema.prediction, schema.scores
        )
        metrics = cfg.metrics or list(TASK_METRICS[schema.task])
        out: list[MetricResult] = []
        for (t, v), mask in row_segments(cfg, table) or [((ALL, ALL), np.zeros(0, bool))]:
            sub = table.filter(mask) if mask.size else table
            labels = np.asarray(sub.column("label").to_pylist(), dtype=object)
            preds = np.asarray(sub.column(schema.prediction).to_pylist(), dtype=object)
            scores = (
                floats(sub.column(schema.scores[0]))
                if schema.task == "binary" and schema.scores
                else None
            )
            if schema.task != "multiclass":
                labels, preds = labels.astype(float), preds.astype(float)
            n = len(labels)
            if n < cfg.min_rows or (schema.task == "binary" and scores is None):
                out += [
                    no_data(base, t, v, m, {"n": n, "reason": "too few labelled rows"})
                    for m in metrics
                ]
                continue
            perf = realized_performance(schema.task, labels, preds, scores, metrics=metrics)
            for m in metrics:
                lo, hi = cfg.bounds.get(m, (None, None))
                details = {"n": perf.n, "estimated": False, "bounds": [lo, hi]}
                out.append(_result(base, t, v, m, perf.metrics.get(m), lo, hi, details))
        return out, 0


def _from_aggregates(ctx: CheckContext) -> list[MetricResult]:
    """The lake-fed form: per segment, the metrics of the summed hourly label aggregates."""
    from detectors.performance import RANK_METRICS, TASK_METRICS, performance_from_aggregates

    cfg, schema, base = ctx.cfg, ctx.schema, ctx.base
    aggs = ctx.env.profiles.label_aggregates(ctx.model, ctx.start, ctx.end)
    metrics = cfg.metrics or list(TASK_METRICS[schema.task])
    groups: dict[tuple[str, str], dict[str, tuple[int, float]]] = {}
    for t, v, name, n, total in zip(
        *(aggs.column(c).to_pylist() for c in ("tenant_id", "model_version", "name", "n", "value")),
        strict=True,
    ):
        cell = groups.setdefault((t, v), {})
        have = cell.get(name, (0, 0.0))
        cell[name] = (have[0] + int(n), have[1] + float(total))
    labelled = [g for g, sums in groups.items() if sums.get("labelled", (0, 0.0))[0] > 0]
    keys = pa.table(
        {
            "tenant_id": pa.array([t for t, _ in labelled], pa.string()),
            "model_version": pa.array([v for _, v in labelled], pa.string()),
        }
    )
    out: list[MetricResult] = []
    for (t, v), mask in row_segments(cfg, keys) or [((ALL, ALL), np.zeros(0, bool))]:
        sums: dict[str, tuple[int, float]] = {}
        for g in (g for g, m in zip(labelled, mask.tolist(), strict=True) if m):
            for name, (n, total) in groups[g].items():
                have = sums.get(name, (0, 0.0))
                sums[name] = (have[0] + n, have[1] + total)
        n_labelled = sums.get("labelled", (0, 0.0))[0]
        if n_labelled < cfg.min_rows or (schema.task == "binary" and not schema.scores):
            out += [
                no_data(base, t, v, m, {"n": n_labelled, "reason": "too few labelled rows"})
                for m in metrics
            ]
            continue
        perf = performance_from_aggregates(schema.task, sums, metrics=metrics)
        for m in metrics:
            value: Any = perf.metrics.get(m)
            lo, hi = cfg.bounds.get(m, (None, None))
            details: dict[str, Any] = {"n": perf.n, "estimated": False, "bounds": [lo, hi]}
            if m in RANK_METRICS:
                details["reason"] = (
                    f"lake-fed model: {m} ranks every labelled row's score; the lake job "
                    "pushes hourly label aggregates, which have no exact form for it "
                    "(docs/scale-out.md)"
                )
            out.append(_result(base, t, v, m, value, lo, hi, details))
    return out


def _result(
    base: dict[str, Any],
    t: str,
    v: str,
    m: str,
    value: Any,
    lo: float | None,
    hi: float | None,
    details: dict[str, Any],
) -> MetricResult:
    status = "no_data" if value is None else "ok"
    if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        status = "alert"
    return MetricResult(
        **base,
        tenant_id=t,
        model_version=v,
        column="",
        metric=m,
        value=num(value),
        threshold=lo if lo is not None else hi,
        status=status,  # type: ignore[arg-type]
        details=plain(details),
    )
