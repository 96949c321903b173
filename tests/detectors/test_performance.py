"""Realized performance metrics: golden values against scikit-learn on seeded data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from detectors.errors import InvalidParameterError, UnknownNameError
from detectors.performance import (
    BINARY_METRICS,
    binary_performance,
    expected_calibration_error,
    multiclass_performance,
    realized_performance,
    regression_performance,
)


def _binary_data(seed: int, n: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 3, size=n)
    y = (rng.random(n) < p).astype(int)
    # rounded scores create ties, which ROC AUC / PR AUC must handle like scikit-learn
    return y, np.round(p, 2)


def _ece_loop(y: np.ndarray, p: np.ndarray, n_bins: int) -> float:
    """Straightforward ECE: loop over bins (lo, hi], first bin closed at 0."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        in_bin = (p > lo) & (p <= hi) if b else (p >= lo) & (p <= hi)
        if in_bin.any():
            total += in_bin.sum() / len(p) * abs(p[in_bin].mean() - y[in_bin].mean())
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_sklearn(seed: int) -> None:
    y, p = _binary_data(seed)
    yhat = (p >= 0.5).astype(int)
    r = binary_performance(y, p)
    assert r.n == len(y)
    expected = {
        "accuracy": skm.accuracy_score(y, yhat),
        "precision": skm.precision_score(y, yhat),
        "recall": skm.recall_score(y, yhat),
        "f1": skm.f1_score(y, yhat),
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p),
        "ece": _ece_loop(y, p, 10),
    }
    assert set(r.metrics) == set(BINARY_METRICS)
    for name, value in expected.items():
        assert r[name] == pytest.approx(value, abs=1e-12), name
    tn, fp, fn, tp = skm.confusion_matrix(y, yhat).ravel()
    assert (r.details["tp"], r.details["fp"], r.details["tn"], r.details["fn"]) == (tp, fp, tn, fn)


def test_binary_explicit_predictions_and_extreme_scores() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    p[:10] = 0.0  # log loss must clip like scikit-learn, not return inf
    p[10:20] = 1.0
    yhat = rng.integers(0, 2, 500)
    r = binary_performance(y, p, yhat)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, yhat))
    assert r["f1"] == pytest.approx(skm.f1_score(y, yhat))
    assert r["log_loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_against_loop(n_bins: int) -> None:
    y, p = _binary_data(7, 777)
    p[:5] = [0.0, 1.0, 0.2, 0.4, 0.6]  # bin edges themselves
    assert expected_calibration_error(y, p, n_bins) == pytest.approx(_ece_loop(y, p, n_bins))


def test_ece_is_zero_for_perfectly_calibrated_bins_and_large_when_not() -> None:
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    p = np.array([0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75])
    assert expected_calibration_error(y, p, 10) == pytest.approx(0.0)
    assert expected_calibration_error(1 - y[:4], np.zeros(4), 10) == pytest.approx(0.75)


def test_single_class_and_empty_windows_are_no_data_not_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (0/0) may leak either
        only_neg = binary_performance([0, 0, 0], [0.1, 0.7, 0.2])
        empty = binary_performance([], [])
    assert only_neg["roc_auc"] is None
    assert only_neg["pr_auc"] is None
    assert only_neg["recall"] is None
    assert only_neg["accuracy"] == pytest.approx(2 / 3)
    assert only_neg["precision"] == 0.0  # one false positive: defined, and bad
    assert empty.no_data
    assert all(v is None for v in empty.metrics.values())
    assert all(v is None for v in multiclass_performance([], []).metrics.values())
    assert all(v is None for v in regression_performance([], []).metrics.values())
    assert regression_performance([3.0, 3.0], [2.0, 4.0])["r2"] is None  # constant target


def test_missing_rows_are_dropped() -> None:
    r = binary_performance([1, 0, np.nan, 1], [0.9, 0.2, 0.5, np.nan])
    assert r.n == 2
    assert r["accuracy"] == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = np.array(["cat", "dog", "eel", "fox"])
    y = rng.choice(classes, 1_000, p=[0.5, 0.3, 0.15, 0.05])
    yhat = np.where(rng.random(1_000) < 0.6, y, rng.choice(classes[:3], 1_000))
    r = multiclass_performance(y, yhat)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, yhat))
    assert r["f1_macro"] == pytest.approx(skm.f1_score(y, yhat, average="macro"))
    assert r["f1_weighted"] == pytest.approx(skm.f1_score(y, yhat, average="weighted"))


def test_multiclass_class_never_predicted_counts_as_zero_f1() -> None:
    y = ["a", "a", "b", "c"]
    yhat = ["a", "a", "b", "b"]
    r = multiclass_performance(y, yhat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the undefined precision
        assert r["f1_macro"] == pytest.approx(skm.f1_score(y, yhat, average="macro"))


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 1_500)
    yhat = y + rng.normal(0.5, 1.0, 1_500)
    r = regression_performance(y, yhat)
    assert r["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
    assert r["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)))
    assert r["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, yhat))
    assert r["r2"] == pytest.approx(skm.r2_score(y, yhat))
    assert r["mean_error"] == pytest.approx(np.mean(yhat - y))


def test_dispatch_filters_metrics_and_rejects_unknown_names() -> None:
    y, p = _binary_data(3, 200)
    r = realized_performance("binary", y, (p > 0.5).astype(int), p, metrics=["roc_auc"])
    assert list(r.metrics) == ["roc_auc"]
    with pytest.raises(UnknownNameError, match="valid: accuracy"):
        realized_performance("binary", y, y, p, metrics=["auc"])
    with pytest.raises(UnknownNameError, match="binary, multiclass, regression"):
        realized_performance("ranking", y, y)
    with pytest.raises(InvalidParameterError, match="values 0/1"):
        binary_performance([0, 2], [0.1, 0.2])
    with pytest.raises(InvalidParameterError, match="equal length"):
        regression_performance([1.0, 2.0], [1.0])


def test_docstring_examples_run() -> None:
    import doctest

    import detectors.estimation.cbpe
    import detectors.performance

    for module in (detectors.performance, detectors.estimation.cbpe):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
