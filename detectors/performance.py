"""Realized model performance, once labels have arrived.

Metrics are computed with numpy (tested against scikit-learn) so that their "undefined" cases are
explicit: a metric that is not defined on a window — recall without positives, ROC AUC on one
class, R² on a constant target, anything on an empty window — is ``None`` (``no_data``), never a
silent 0 and never an exception.

======================  ==============================================  ===========================
task / metric           definition                                      ``None`` when
======================  ==============================================  ===========================
binary ``accuracy``     share of correct predictions                    empty window
binary ``precision``    TP / (TP + FP)                                  no predicted positives
binary ``recall``       TP / (TP + FN)                                  no actual positives
binary ``f1``           2 TP / (2 TP + FP + FN)                         TP + FP + FN = 0
binary ``roc_auc``      Mann-Whitney U / (n₊ n₋), ties count ½           one class only
binary ``pr_auc``       average precision (scikit-learn's step sum)     no actual positives
binary ``log_loss``     mean −log p(true class), p clipped to [ε, 1−ε]  empty window
binary ``brier``        mean (p − y)²                                   empty window
binary ``ece``          Σ_b n_b/n · |mean p_b − mean y_b|, equal-width  empty window
multiclass ``accuracy``  share of correct predictions                   empty window
multiclass ``f1_macro``  unweighted mean of per-class F1 over the       empty window
                        classes seen in labels or predictions
multiclass ``f1_weighted``  per-class F1 weighted by class support      empty window
regression ``mae``      mean |y − ŷ|                                    empty window
regression ``rmse``     √mean (y − ŷ)²                                  empty window
regression ``mape``     mean |y − ŷ| / max(|y|, ε) (scikit-learn's)     empty window
regression ``r2``       1 − SS_res / SS_tot                             SS_tot = 0 or n < 2
regression ``mean_error``  mean (ŷ − y): > 0 means over-prediction      empty window
======================  ==============================================  ===========================

Rows whose label, prediction or score is missing (NaN) are dropped before computing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.errors import InvalidParameterError
from detectors.performance_aggregates import RANK_METRICS, performance_from_aggregates
from detectors.performance_metrics import (
    BINARY_METRICS,
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    TASK_METRICS,
    PerformanceResult,
    check_task_metrics,
    count_metrics,
    multiclass_metrics,
)

__all__ = [
    "BINARY_METRICS",
    "MULTICLASS_METRICS",
    "RANK_METRICS",
    "REGRESSION_METRICS",
    "TASK_METRICS",
    "PerformanceResult",
    "binary_performance",
    "expected_calibration_error",
    "multiclass_performance",
    "performance_from_aggregates",
    "realized_performance",
    "regression_performance",
    "roc_auc",
]

# Same clipping as scikit-learn's log_loss (float64 machine epsilon), so values agree exactly.
_EPS = float(np.finfo(np.float64).eps)


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float | None:
    """ROC AUC as the Mann-Whitney U statistic; ``None`` unless both classes are present.

    Parameters
    ----------
    labels
        0/1 (or boolean) true labels.
    scores
        Scores, higher meaning "more likely positive".

    Returns
    -------
    float or None
        The probability that a random positive outranks a random negative (ties count ½).
    """
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)  # average ranks: ties contribute ½ each
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _average_precision(y: NDArray[np.bool_], s: NDArray[np.float64]) -> float | None:
    # Step-wise sum Σ (R_k − R_{k−1}) P_k over distinct score thresholds, as scikit-learn does
    # (no interpolation, which would be optimistic).
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    # last index of each run of equal scores: a threshold admits all tied rows together
    distinct = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[distinct]
    fps = (distinct + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / n_pos
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


def expected_calibration_error(
    labels: ArrayLike, scores: ArrayLike, n_bins: int = 10
) -> float | None:
    """Expected calibration error with equal-width probability bins.

    Parameters
    ----------
    labels
        0/1 true labels.
    scores
        Predicted probabilities of the positive class, in [0, 1].
    n_bins
        Number of equal-width bins on [0, 1]; bin b holds scores in ``(b/n, (b+1)/n]`` and the
        first bin also holds 0.

    Returns
    -------
    float or None
        Σ_b (n_b / n) |mean score_b − positive rate_b|; ``None`` on an empty window.
    """
    if n_bins < 1:
        raise InvalidParameterError("n_bins", n_bins, "an integer >= 1")
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    n = y.size
    if n == 0:
        return None
    # ceil(p * n_bins) - 1 puts p in (b/n, (b+1)/n] into bin b; p == 0 goes to bin 0.
    idx = np.clip(np.ceil(p * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    # Σ n_b/n |Σp/n_b − Σy/n_b| = Σ |Σp − Σy| / n
    return float(np.abs(sum_p - sum_y).sum() / n)


def _drop_missing(*arrays: NDArray[Any]) -> list[NDArray[Any]]:
    keep = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        if a.dtype.kind == "f":
            bad = np.isnan(a)
            keep &= ~(bad.any(axis=1) if a.ndim == 2 else bad)
        elif a.dtype.kind == "O":
            keep &= np.array([v is not None and v == v for v in a], dtype=bool)
    return [a[keep] for a in arrays]


def _check_lengths(**arrays: NDArray[Any]) -> None:
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidParameterError("lengths", lengths, "arrays of equal length")


def binary_performance(
    labels: ArrayLike,
    scores: ArrayLike,
    predictions: ArrayLike | None = None,
    *,
    decision_threshold: float = 0.5,
    n_bins: int = 10,
) -> PerformanceResult:
    """Realized metrics of a binary classifier on one window.

    Parameters
    ----------
    labels
        True labels, 0/1 or boolean.
    scores
        Predicted probability of the positive class.
    predictions
        Predicted labels (0/1). When omitted, ``scores >= decision_threshold``.
    decision_threshold
        Used only when ``predictions`` is omitted.
    n_bins
        Bins of the expected calibration error.

    Returns
    -------
    PerformanceResult
        With the metrics of ``BINARY_METRICS``; ``details`` holds ``tp``, ``fp``, ``tn``, ``fn``.

    Examples
    --------
    >>> r = binary_performance([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1])
    >>> r["accuracy"], r["roc_auc"]
    (0.75, 1.0)
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel()
    if predictions is None:
        yhat = np.where(np.isnan(p), np.nan, (p >= decision_threshold).astype(np.float64))
    else:
        yhat = np.asarray(predictions, dtype=np.float64).ravel()
    _check_lengths(labels=y, scores=p, predictions=yhat)
    y, p, yhat = _drop_missing(y, p, yhat)
    for name, a in (("labels", y), ("predictions", yhat)):
        if not np.isin(a, (0.0, 1.0)).all():
            raise InvalidParameterError(name, np.unique(a)[:5].tolist(), "values 0/1")
    n = int(y.size)
    yb = y.astype(bool)
    pb = yhat.astype(bool)
    tp = int(np.sum(yb & pb))
    fp = int(np.sum(~yb & pb))
    fn = int(np.sum(yb & ~pb))
    tn = n - tp - fp - fn
    pc = np.clip(p, _EPS, 1 - _EPS)
    metrics: dict[str, float | None] = {
        **count_metrics(tp, fp, fn, tn),
        "roc_auc": roc_auc(yb, p),
        "pr_auc": _average_precision(yb, p),
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))) if n else None,
        "brier": float(np.mean((p - y) ** 2)) if n else None,
        "ece": expected_calibration_error(y, p, n_bins=n_bins),
    }
    return PerformanceResult(
        "binary", metrics, n, {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "n_positive": tp + fn}
    )


def multiclass_performance(labels: ArrayLike, predictions: ArrayLike) -> PerformanceResult:
    """Realized metrics of a multiclass classifier on one window.

    Parameters
    ----------
    labels
        True class labels (any hashable values of one type, e.g. strings or ints).
    predictions
        Predicted class labels.

    Returns
    -------
    PerformanceResult
        ``accuracy``, ``f1_macro`` and ``f1_weighted``; per-class F1 over the classes seen in
        labels or predictions (a class with no true rows still counts in the macro mean, as
        scikit-learn does).
    """
    y = np.asarray(labels).ravel()
    yhat = np.asarray(predictions).ravel()
    _check_lengths(labels=y, predictions=yhat)
    y, yhat = _drop_missing(y, yhat)
    n = int(y.size)
    if n == 0:
        return PerformanceResult("multiclass", dict.fromkeys(MULTICLASS_METRICS), 0)
    classes, codes = np.unique(np.concatenate([y, yhat]), return_inverse=True)
    k = classes.size
    yt, yp = codes[:n], codes[n:]
    confusion = np.bincount(yt * k + yp, minlength=k * k).reshape(k, k)
    metrics = multiclass_metrics(confusion, n)
    return PerformanceResult(
        "multiclass", metrics, n, {"classes": classes.tolist(), "confusion": confusion.tolist()}
    )


def regression_performance(targets: ArrayLike, predictions: ArrayLike) -> PerformanceResult:
    """Realized metrics of a regression model on one window.

    Parameters
    ----------
    targets
        True values.
    predictions
        Predicted values.

    Returns
    -------
    PerformanceResult
        ``mae``, ``rmse``, ``mape``, ``r2`` and ``mean_error`` (prediction − target).
    """
    y = np.asarray(targets, dtype=np.float64).ravel()
    yhat = np.asarray(predictions, dtype=np.float64).ravel()
    _check_lengths(targets=y, predictions=yhat)
    y, yhat = _drop_missing(y, yhat)
    n = int(y.size)
    if n == 0:
        return PerformanceResult("regression", dict.fromkeys(REGRESSION_METRICS), 0)
    err = yhat - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    metrics: dict[str, float | None] = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(ss_res / n)),
        "mape": float(np.mean(np.abs(err) / np.maximum(np.abs(y), _EPS))),
        "r2": 1.0 - ss_res / ss_tot if n >= 2 and ss_tot > 0 else None,
        "mean_error": float(err.mean()),
    }
    return PerformanceResult("regression", metrics, n)


def realized_performance(
    task: str,
    labels: ArrayLike,
    predictions: ArrayLike,
    scores: ArrayLike | None = None,
    *,
    metrics: Sequence[str] | None = None,
) -> PerformanceResult:
    """Dispatch on the model's task; optionally keep only some metrics.

    Parameters
    ----------
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    labels
        True labels (targets for regression).
    predictions
        Predicted labels (values for regression).
    scores
        Positive-class probabilities; required for ``"binary"``.
    metrics
        Metric names to keep; unknown names raise :class:`~detectors.errors.UnknownNameError`.

    Returns
    -------
    PerformanceResult
    """
    check_task_metrics(task, metrics)
    if task == "binary":
        if scores is None:
            raise InvalidParameterError("scores", None, "positive-class scores for a binary model")
        result = binary_performance(labels, scores, predictions)
    elif task == "multiclass":
        result = multiclass_performance(labels, predictions)
    else:
        result = regression_performance(labels, predictions)
    if metrics is None:
        return result
    kept = {name: result.metrics[name] for name in metrics}
    return PerformanceResult(result.task, kept, result.n, result.details)
