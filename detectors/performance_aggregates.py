"""Realized performance from mergeable label aggregates: what a lake-fed model's monitors
compute their metrics from (the aggregates of ``storage.row_kernel``, summed over a window's
hours), equal to :func:`detectors.performance.realized_performance` on the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detectors.errors import InvalidParameterError
from detectors.performance_metrics import (
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    PerformanceResult,
    check_task_metrics,
    count_metrics,
    multiclass_metrics,
)

__all__ = ["RANK_METRICS", "performance_from_aggregates"]

RANK_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc")
"""Metrics that rank every labelled row's score: they have no mergeable aggregate form."""


def performance_from_aggregates(
    task: str,
    sums: Mapping[str, tuple[int, float]],
    *,
    metrics: Sequence[str] | None = None,
    n_bins: int = 10,
) -> PerformanceResult:
    """Realized metrics from mergeable label aggregates (``storage.row_kernel``: name ->
    (count, sum)), equal to :func:`realized_performance` on the same rows up to the order of
    float additions; the rank metrics (:data:`RANK_METRICS`) are ``None``.

    Parameters
    ----------
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    sums
        ``bin:tp|fp|fn|tn``, ``bin:log_loss``, ``bin:brier``, ``ece:<b>``, ``ece_y:<b>``,
        ``bin:invalid`` (binary); ``cm:<json [label, prediction]>`` (multiclass);
        ``reg:err|abs|sq|ape|y|y2`` (regression).
    metrics
        Metric names to keep (as :func:`realized_performance`).
    n_bins
        ECE bins (the aggregates' ``ece:<b>`` names).

    Examples
    --------
    >>> r = performance_from_aggregates("binary", {"bin:tp": (1, 0.0), "bin:tn": (1, 0.0)})
    >>> r["accuracy"], r["roc_auc"]
    (1.0, None)
    """
    check_task_metrics(task, metrics)

    def n_of(name: str) -> int:
        return int(sums.get(name, (0, 0.0))[0])

    def v_of(name: str) -> float:
        return float(sums.get(name, (0, 0.0))[1])

    out: dict[str, float | None]
    details: dict[str, Any] = {}
    if task == "binary":
        if n_of("bin:invalid"):
            raise InvalidParameterError(
                "labels", f"{n_of('bin:invalid')} values", "values 0/1 (labels and predictions)"
            )
        tp, fp, fn, tn = (n_of(f"bin:{c}") for c in ("tp", "fp", "fn", "tn"))
        n = tp + fp + fn + tn
        ece = (
            sum(abs(v_of(f"ece:{b}") - v_of(f"ece_y:{b}")) for b in range(n_bins)) / n
            if n
            else None
        )
        out = {
            **count_metrics(tp, fp, fn, tn),
            "roc_auc": None,
            "pr_auc": None,
            "log_loss": v_of("bin:log_loss") / n if n else None,
            "brier": v_of("bin:brier") / n if n else None,
            "ece": ece,
        }
        details = {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "n_positive": tp + fn}
    elif task == "multiclass":
        cells = {tuple(json.loads(k[3:])): c for k, (c, _) in sums.items() if k.startswith("cm:")}
        n = int(sum(cells.values()))
        if n == 0:
            out = dict.fromkeys(MULTICLASS_METRICS)
        else:
            classes = sorted({c for pair in cells for c in pair})
            pos = {c: i for i, c in enumerate(classes)}
            confusion = np.zeros((len(classes), len(classes)), np.int64)
            for (a, b), c in cells.items():
                confusion[pos[a], pos[b]] += c
            out = multiclass_metrics(confusion, n)
            details = {"classes": classes, "confusion": confusion.tolist()}
    else:
        n = n_of("reg:err")
        if n == 0:
            out = dict.fromkeys(REGRESSION_METRICS)
        else:
            ss_res = v_of("reg:sq")
            sy, sy2 = v_of("reg:y"), v_of("reg:y2")
            ss_tot = max(sy2 - sy * sy / n, 0.0)  # one-pass: equal up to rounding
            out = {
                "mae": v_of("reg:abs") / n,
                "rmse": float(np.sqrt(ss_res / n)),
                "mape": v_of("reg:ape") / n,
                "r2": 1.0 - ss_res / ss_tot if n >= 2 and ss_tot > 0 else None,
                "mean_error": v_of("reg:err") / n,
            }
    if metrics is not None:
        out = {name: out[name] for name in metrics}
    return PerformanceResult(task, out, n, details)
