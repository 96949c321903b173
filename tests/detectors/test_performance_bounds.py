"""Performance bounds from a labelled reference (what ``driftwatch init`` proposes).

Golden: the chunk spread equals the standard deviation of scikit-learn's metric over the same
contiguous chunks; the bootstrap spread of accuracy equals the binomial standard error.
Calibration: windows drawn like the reference fall outside the bound in about 0.13 % of cases
(3 standard deviations, one side), and a 3-point accuracy drop (0.944 → 0.911) falls outside
in >= 99 % of windows of 2,500 rows (at 1,500 rows it is 96 %: the bound depends on the
window size, which is why init derives it at the logged window size).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error, roc_auc_score

from detectors.errors import InvalidParameterError, UnknownNameError
from detectors.performance import binary_performance
from detectors.performance_bounds import reference_bounds


def _binary(rng: np.random.Generator, n: int, accuracy: float) -> tuple[np.ndarray, ...]:
    """Scores whose thresholded prediction is right with probability ``accuracy``."""
    y = rng.random(n) < 0.3
    right = rng.random(n) < accuracy
    yhat = np.where(right, y, ~y)
    s = np.clip(np.where(yhat, 0.75, 0.25) + rng.normal(0, 0.15, n), 0, 1)
    return y.astype(int), yhat.astype(int), s


def test_chunk_spread_is_sklearns_metric_over_contiguous_chunks() -> None:
    rng = np.random.default_rng(1)
    # a reference whose accuracy drifts slowly: the chunks vary more than sampling noise
    n, size = 20_000, 1000
    acc = np.repeat(np.linspace(0.85, 0.95, n // size), size)
    y = (rng.random(n) < 0.4).astype(int)
    yhat = np.where(rng.random(n) < acc, y, 1 - y)
    s = np.clip(yhat * 0.6 + 0.2 + rng.normal(0, 0.1, n), 0, 1)
    b = reference_bounds("binary", y, yhat, s, ["accuracy", "roc_auc"], chunk_size=size)
    chunks = [slice(i * size, (i + 1) * size) for i in range(n // size)]
    acc_chunks = [accuracy_score(y[c], yhat[c]) for c in chunks]
    auc_chunks = [roc_auc_score(y[c], s[c]) for c in chunks]
    assert b["accuracy"].chunk_std == pytest.approx(np.std(acc_chunks, ddof=1), rel=1e-12)
    assert b["roc_auc"].chunk_std == pytest.approx(np.std(auc_chunks, ddof=1), rel=1e-12)
    assert b["accuracy"].centre == pytest.approx(accuracy_score(y, yhat))
    # the slow drift dominates: the chunk spread is the one used
    assert b["accuracy"].spread == b["accuracy"].chunk_std > b["accuracy"].bootstrap_std
    lo, hi = b["accuracy"].bounds
    assert hi is None and lo == pytest.approx(b["accuracy"].centre - 3 * b["accuracy"].spread)
    assert b["accuracy"].chunks == 20 and b["accuracy"].chunk_size == size


def test_bootstrap_spread_is_the_binomial_standard_error() -> None:
    rng = np.random.default_rng(2)
    y, yhat, s = _binary(rng, 50_000, 0.944)
    b = reference_bounds("binary", y, yhat, s, ["accuracy"], chunk_size=2000, n_bootstrap=400)
    p = b["accuracy"].centre
    se = np.sqrt(p * (1 - p) / 2000)
    # 400 resamples: the standard deviation is known to about 1/sqrt(800) = 3.5 %
    assert b["accuracy"].bootstrap_std == pytest.approx(se, rel=0.12)


def test_few_chunks_use_the_bootstrap_spread_only() -> None:
    rng = np.random.default_rng(3)
    y, yhat, s = _binary(rng, 3000, 0.9)
    b = reference_bounds("binary", y, yhat, s, ["accuracy"], chunk_size=1000)
    assert b["accuracy"].chunks == 3 and b["accuracy"].chunk_std is None
    assert b["accuracy"].spread == b["accuracy"].bootstrap_std


def test_false_alarms_near_nominal_and_a_three_point_drop_is_found() -> None:
    rng = np.random.default_rng(4)
    y, yhat, s = _binary(rng, 30_000, 0.944)
    size = 2500
    b = reference_bounds("binary", y, yhat, s, ["accuracy", "roc_auc", "f1"], chunk_size=size)
    lo_acc = b["accuracy"].bounds[0]
    assert lo_acc is not None
    same, dropped = [], []
    for _ in range(600):
        yy, pp, ss = _binary(rng, size, 0.944)
        r = binary_performance(yy, ss, pp).metrics
        same.append(any(r[m] < b[m].bounds[0] for m in b))  # type: ignore[operator]
        yy, pp, ss = _binary(rng, size, 0.911)
        dropped.append(binary_performance(yy, ss, pp).metrics["accuracy"] < lo_acc)
    # three correlated metrics at 0.13 % each: at most ~0.4 %; allow sampling noise
    assert np.mean(same) <= 0.01
    assert np.mean(dropped) >= 0.99


def test_regression_bounds_the_error_from_above_and_multiclass_from_below() -> None:
    rng = np.random.default_rng(5)
    target = rng.normal(0, 1, 10_000)
    pred = target + rng.normal(0, 0.5, 10_000)
    b = reference_bounds("regression", target, pred, None, ["mae", "rmse"], chunk_size=500)
    assert b["mae"].centre == pytest.approx(mean_absolute_error(target, pred))
    lo, hi = b["mae"].bounds
    assert lo is None and hi is not None and hi > b["mae"].centre
    labels = rng.choice(np.array(["a", "b", "c"], dtype=object), 5000)
    preds = np.where(rng.random(5000) < 0.8, labels, "a")
    m = reference_bounds("multiclass", labels, preds, None, ["accuracy"], chunk_size=500)
    lo, hi = m["accuracy"].bounds
    assert hi is None and 0 < lo < m["accuracy"].centre


def test_bad_parameters_name_the_field() -> None:
    y = np.array([0, 1] * 50)
    with pytest.raises(UnknownNameError, match="mae"):
        reference_bounds("binary", y, y, y.astype(float), ["mae"], chunk_size=10)
    with pytest.raises(InvalidParameterError, match="chunk_size"):
        reference_bounds("binary", y, y, y.astype(float), ["accuracy"], chunk_size=1)
    with pytest.raises(UnknownNameError, match="task"):
        reference_bounds("ranking", y, y, None, ["accuracy"], chunk_size=10)
