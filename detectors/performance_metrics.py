"""What realized performance is made of (:mod:`detectors.performance`): the metrics of each
task, the result of one window, and the formulas that rows (:mod:`detectors.performance`) and
mergeable aggregates (:mod:`detectors.performance_aggregates`) both compute metrics with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from detectors.errors import UnknownNameError

__all__ = [
    "BINARY_METRICS",
    "MULTICLASS_METRICS",
    "REGRESSION_METRICS",
    "TASK_METRICS",
    "PerformanceResult",
    "check_task_metrics",
    "count_metrics",
    "multiclass_metrics",
    "ratio",
]

Task = Literal["binary", "multiclass", "regression"]

BINARY_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)
MULTICLASS_METRICS: tuple[str, ...] = ("accuracy", "f1_macro", "f1_weighted")
REGRESSION_METRICS: tuple[str, ...] = ("mae", "rmse", "mape", "r2", "mean_error")
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": BINARY_METRICS,
    "multiclass": MULTICLASS_METRICS,
    "regression": REGRESSION_METRICS,
}


@dataclass(frozen=True)
class PerformanceResult:
    """Realized metrics of one window.

    Attributes
    ----------
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    metrics
        Metric name → value; ``None`` where the metric is undefined on this window.
    n
        Rows used (after dropping rows with missing values).
    details
        Extra counts (e.g. the confusion matrix of a binary window).
    """

    task: str
    metrics: Mapping[str, float | None]
    n: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float | None:
        try:
            return self.metrics[name]
        except KeyError:
            raise UnknownNameError(f"{self.task} metric", name, self.metrics) from None

    @property
    def no_data(self) -> bool:
        return self.n == 0


def ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def check_task_metrics(task: str, metrics: Sequence[str] | None) -> None:
    """Refuse an unknown ``task`` and metric names the task does not have
    (:class:`~detectors.errors.UnknownNameError` listing the known ones)."""
    if task not in TASK_METRICS:
        raise UnknownNameError("task", task, TASK_METRICS)
    for name in metrics or ():
        if name not in TASK_METRICS[task]:
            raise UnknownNameError(f"{task} metric", name, TASK_METRICS[task])


def count_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | None]:
    """A binary classifier's accuracy, precision, recall and F1 from its confusion counts."""
    n = tp + fp + fn + tn
    return {
        "accuracy": ratio(tp + tn, n),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
    }


def multiclass_metrics(confusion: NDArray[np.int64], n: int) -> dict[str, float | None]:
    """``accuracy``, ``f1_macro`` and ``f1_weighted`` from a confusion matrix of ``n`` > 0 rows
    (``[true class, predicted class]``) over the classes seen in labels or predictions."""
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    # every class is in labels ∪ predictions, so 2TP + FP + FN = support + predicted > 0
    f1 = 2 * tp / (support + predicted)
    return {
        "accuracy": float(tp.sum() / n),
        "f1_macro": float(f1.mean()),
        "f1_weighted": float(np.sum(f1 * support) / n),
    }
