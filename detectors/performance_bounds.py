"""Performance bounds derived from a labelled reference, for ``driftwatch init``.

A performance monitor without bounds can never alert. The bounds proposed by default follow the
established practice (NannyML's ``StandardDeviationThreshold``): the reference is cut into
chunks the size of one monitoring window, the metric is computed on every chunk, and the bound
is ``centre ∓ n_std · spread``:

* ``centre`` is the metric on the whole reference;
* ``spread`` is the larger of the standard deviation of the chunk values (contiguous chunks in
  the reference's order, when there are at least ``MIN_CHUNKS`` of them: this includes the
  reference's own slow variation) and the bootstrap standard deviation of the metric on
  ``n_bootstrap`` resamples of one chunk's size (the sampling noise of a window alone, stable
  when the reference holds only a few chunks). Taking the larger keeps the bound from being
  tighter than the sampling noise a window of that size has, so on data like the reference
  a window falls outside ``3`` spreads in about 0.13 % of windows per metric and side.

Only the side that hurts is bounded: a lower bound for metrics where higher is better
(accuracy, ROC AUC, F1...), an upper bound for errors (MAE, RMSE...). Classification bounds are
clipped to ``[0, 1]``.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> p = rng.random(20_000)
>>> y = (rng.random(20_000) < p).astype(int)
>>> b = reference_bounds("binary", y, (p >= 0.5).astype(int), p, ["accuracy"], chunk_size=2000)
>>> lo, hi = b["accuracy"].bounds
>>> round(b["accuracy"].centre, 3), hi is None, 0.70 < lo < 0.73
(0.753, True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from detectors.errors import InvalidParameterError, UnknownNameError
from detectors.performance import TASK_METRICS, realized_performance

__all__ = ["LOWER_IS_BETTER", "MIN_CHUNKS", "MetricBounds", "reference_bounds"]

# Metrics where a larger value is worse: bounded from above.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "rmse", "mape"})
# Metrics with no worse side (a mean error can go wrong both ways): bounded on both sides.
TWO_SIDED = frozenset({"mean_error"})
UNIT_RANGE_TASKS = frozenset({"binary", "multiclass"})
MIN_CHUNKS = 5


@dataclass(frozen=True)
class MetricBounds:
    """The proposed bound of one metric and where it comes from.

    Attributes
    ----------
    metric
        Metric name.
    centre
        The metric on the whole reference.
    spread
        The standard deviation the bound is ``n_std`` of (see the module docstring).
    chunk_std, bootstrap_std
        The two candidate spreads (``chunk_std`` is ``None`` with fewer than ``MIN_CHUNKS``
        chunks).
    bounds
        ``(lower, upper)``; the side that does not hurt is ``None``.
    chunk_size, chunks
        Rows per chunk and how many whole chunks the reference held.
    """

    metric: str
    centre: float
    spread: float
    chunk_std: float | None
    bootstrap_std: float | None
    bounds: tuple[float | None, float | None]
    chunk_size: int
    chunks: int


def _metric_values(
    task: str,
    y: npt.NDArray[Any],
    yhat: npt.NDArray[Any],
    s: npt.NDArray[Any] | None,
    metrics: Sequence[str],
    index: npt.NDArray[Any],
) -> dict[str, float | None]:
    res = realized_performance(
        task, y[index], yhat[index], None if s is None else s[index], metrics=metrics
    )
    return {m: res.metrics.get(m) for m in metrics}


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def reference_bounds(
    task: str,
    labels: ArrayLike,
    predictions: ArrayLike,
    scores: ArrayLike | None,
    metrics: Sequence[str],
    *,
    chunk_size: int,
    n_std: float = 3.0,
    n_bootstrap: int = 200,
    random_state: int = 0,
) -> dict[str, MetricBounds]:
    """Bounds of ``metrics`` for windows of ``chunk_size`` rows, from a labelled reference.

    Parameters
    ----------
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    labels, predictions, scores
        The reference's labels, predictions and (binary) positive-class scores, in its order
        (contiguous chunks follow it).
    metrics
        Metrics to bound (names of ``TASK_METRICS[task]``).
    chunk_size
        Rows of one monitoring window (at least 2).
    n_std
        Width of the bound in spreads.
    n_bootstrap
        Resamples for the bootstrap spread.
    random_state
        Seed of the bootstrap.

    Returns
    -------
    dict
        Metric → :class:`MetricBounds`; metrics undefined on the reference (e.g. ROC AUC with
        one class) are left out.
    """
    if task not in TASK_METRICS:
        raise UnknownNameError("task", task, TASK_METRICS)
    for m in metrics:
        if m not in TASK_METRICS[task]:
            raise UnknownNameError(f"{task} metric", m, TASK_METRICS[task])
    if chunk_size < 2:
        raise InvalidParameterError("chunk_size", chunk_size, "an integer >= 2")
    if not n_std > 0:
        raise InvalidParameterError("n_std", n_std, "a number > 0")
    if n_bootstrap < 10:
        raise InvalidParameterError("n_bootstrap", n_bootstrap, "an integer >= 10")
    y = np.asarray(labels) if task == "multiclass" else np.asarray(labels, dtype=np.float64)
    yhat = np.asarray(predictions) if task == "multiclass" else np.asarray(predictions, np.float64)
    s = None if scores is None else np.asarray(scores, dtype=np.float64)
    n = y.shape[0]
    if n < 2:
        return {}
    size = min(chunk_size, n)
    whole = _metric_values(task, y, yhat, s, metrics, np.arange(n))
    chunk_values: dict[str, list[float]] = {m: [] for m in metrics}
    n_chunks = n // size
    if n_chunks >= MIN_CHUNKS:
        for i in range(n_chunks):
            for m, v in _metric_values(
                task, y, yhat, s, metrics, np.arange(i * size, (i + 1) * size)
            ).items():
                if v is not None:
                    chunk_values[m].append(v)
    rng = np.random.default_rng(random_state)
    boot_values: dict[str, list[float]] = {m: [] for m in metrics}
    for _ in range(n_bootstrap):
        for m, v in _metric_values(task, y, yhat, s, metrics, rng.integers(0, n, size)).items():
            if v is not None:
                boot_values[m].append(v)
    out: dict[str, MetricBounds] = {}
    for m in metrics:
        centre = whole[m]
        chunk_std = _std(chunk_values[m]) if n_chunks >= MIN_CHUNKS else None
        boot_std = _std(boot_values[m])
        spreads = [v for v in (chunk_std, boot_std) if v is not None]
        if centre is None or not spreads:
            continue
        spread = max(spreads)
        low = centre - n_std * spread
        high = centre + n_std * spread
        if task in UNIT_RANGE_TASKS:
            low, high = max(0.0, low), min(1.0, high)
        elif m in LOWER_IS_BETTER:
            low = max(0.0, low)
        lo: float | None = None if m in LOWER_IS_BETTER else low
        hi: float | None = high if m in LOWER_IS_BETTER or m in TWO_SIDED else None
        out[m] = MetricBounds(
            m,
            float(centre),
            float(spread),
            chunk_std,
            boot_std,
            (lo, hi),
            int(size),
            int(n_chunks),
        )
    return out
