"""``performance``: the task's metrics (``accuracy``, ``roc_auc``, ``mae``...) on the window's
labelled rows per segment, ``alert`` outside the monitor's bounds. Late labels re-run it."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.checks.base import Check, CheckContext
from monitor.checks.common import floats, no_data, num, plain, row_segments
from monitor.checks.registry import register
from storage.types import ALL, MetricResult

__all__ = ["PerformanceCheck"]


@register
class PerformanceCheck(Check):
    kinds = ("performance",)
    reads_rows = True
    uses_labels = True

    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        from detectors.performance import TASK_METRICS, realized_performance

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
                value: Any = perf.metrics.get(m)
                lo, hi = cfg.bounds.get(m, (None, None))
                status = "no_data" if value is None else "ok"
                if value is not None and (
                    (lo is not None and value < lo) or (hi is not None and value > hi)
                ):
                    status = "alert"
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=t,
                        model_version=v,
                        column="",
                        metric=m,
                        value=num(value),
                        threshold=lo if lo is not None else hi,
                        status=status,  # type: ignore[arg-type]
                        details=plain({"n": perf.n, "estimated": False, "bounds": [lo, hi]}),
                    )
                )
        return out, 0
