"""DLE: estimated MAE/RMSE track the realized ones, also under covariate shift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from detectors.errors import InvalidParameterError, NotFittedError
from detectors.estimation import DLE


def _data(rng: np.random.Generator, n: int, shift: float = 0.0):
    """y = f(x) + noise whose spread grows with |x1| and differs by segment; the model predicts
    f(x) exactly, so its errors are all noise and depend on where the rows are."""
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.uniform(-1, 1, n)
    segment = rng.choice(np.array(["web", "app", "api"]), n)
    f = 2 * x1 + np.sin(3 * x2)
    sd = 0.3 + 0.7 * np.abs(x1) + np.where(segment == "api", 1.0, 0.0)
    y = f + rng.normal(0.0, 1.0, n) * sd
    return {"x1": x1, "x2": x2, "segment": segment}, f, y


@pytest.fixture(scope="module")
def dle() -> DLE:
    rng = np.random.default_rng(0)
    return DLE().fit(*_data(rng, 6_000))


def test_estimates_within_band_on_unshifted_windows(dle: DLE) -> None:
    rng = np.random.default_rng(1)
    hits = {"mae": 0, "rmse": 0}
    n_windows = 30
    for _ in range(n_windows):
        x, yhat, y = _data(rng, 500)
        est = dle.estimate(x, yhat)
        realized = {
            "mae": mean_absolute_error(y, yhat),
            "rmse": np.sqrt(mean_squared_error(y, yhat)),
        }
        for name, value in realized.items():
            hits[name] += est[name].lower <= value <= est[name].upper
    assert hits["mae"] / n_windows >= 0.9, hits
    assert hits["rmse"] / n_windows >= 0.9, hits


def test_tracks_realized_mae_under_covariate_shift(dle: DLE) -> None:
    rng = np.random.default_rng(2)
    estimated, realized = [], []
    for shift in (0.0, 0.75, 1.5):
        x, yhat, y = _data(rng, 3_000, shift)
        estimated.append(dle.estimate(x, yhat)["mae"].value)
        realized.append(mean_absolute_error(y, yhat))
    assert realized[2] > realized[0] * 1.3  # the shift really hurts the model
    assert estimated[0] < estimated[1] < estimated[2]
    for est, real in zip(estimated, realized, strict=True):
        assert est == pytest.approx(real, rel=0.1)


def test_segment_mix_change_is_tracked(dle: DLE) -> None:
    rng = np.random.default_rng(3)
    x, yhat, y = _data(rng, 3_000)
    api = x["segment"] == "api"
    x_api = {k: v[api] for k, v in x.items()}
    est = dle.estimate(x_api, yhat[api])["mae"]
    assert est.value == pytest.approx(mean_absolute_error(y[api], yhat[api]), rel=0.1)
    assert est.value > dle.estimate(x, yhat)["mae"].value * 1.2


def test_empty_window_unseen_category_and_misuse(dle: DLE) -> None:
    empty = dle.estimate(
        {"x1": np.array([]), "x2": np.array([]), "segment": np.array([], object)}, []
    )
    assert empty.no_data and empty["mae"].value is None
    new_cat = dle.estimate({"x1": [0.0], "x2": [0.0], "segment": np.array(["kiosk"])}, [0.0])
    assert new_cat["mae"].value >= 0.0  # unseen category is treated as missing, not an error
    with pytest.raises(NotFittedError):
        DLE().estimate({"x1": [0.0]}, [0.0])
    with pytest.raises(InvalidParameterError, match="columns"):
        dle.estimate({"x1": [0.0]}, [0.0])
    with pytest.raises(InvalidParameterError, match="reference rows"):
        DLE().fit({"a": np.arange(10.0)}, np.arange(10.0), np.arange(10.0))


def test_compare_with_realized_regression_metrics(dle: DLE) -> None:
    from detectors.estimation import compare_realized
    from detectors.performance import regression_performance

    rng = np.random.default_rng(4)
    x, yhat, y = _data(rng, 2_000)
    comparison = compare_realized(dle.estimate(x, yhat), regression_performance(y, yhat))
    assert set(comparison) == {"mae", "rmse"}
    assert comparison["mae"].within_band is True
    assert comparison["mae"].realized == pytest.approx(mean_absolute_error(y, yhat))


def test_band_covers_realized_under_covariate_shift(dle: DLE) -> None:
    """40 windows of 2,000 rows whose inputs move from the reference (shift 0) to 2 σ away,
    where the model errs more: realized MAE and RMSE inside the band in >= 90 % of windows.
    The former band (the reference's spread of the losses only) covers RMSE in far fewer."""
    rng = np.random.default_rng(40)
    _, yhat_ref, y_ref = _data(np.random.default_rng(0), 6_000)  # the fixture's reference
    err = y_ref - yhat_ref
    hits = {"mae": 0, "rmse": 0}
    former = {"mae": 0, "rmse": 0}
    windows, n = 40, 2_000
    for i in range(windows):
        x, yhat, y = _data(rng, n, 2.0 * i / (windows - 1))
        est = dle.estimate(x, yhat)
        realized = {
            "mae": mean_absolute_error(y, yhat),
            "rmse": np.sqrt(mean_squared_error(y, yhat)),
        }
        for name, value in realized.items():
            hits[name] += est[name].lower <= value <= est[name].upper
        old_mae = np.std(np.abs(err), ddof=1) / np.sqrt(n)
        old_rmse = np.std(err**2, ddof=1) / np.sqrt(n) / (2 * est["rmse"].value)
        former["mae"] += abs(realized["mae"] - est["mae"].value) <= 3 * old_mae
        former["rmse"] += abs(realized["rmse"] - est["rmse"].value) <= 3 * old_rmse
        assert est["mae"].estimator_error > 0
    assert hits["mae"] >= 0.9 * windows and hits["rmse"] >= 0.9 * windows, hits
    assert former["rmse"] < 0.9 * windows, former


def test_fit_limits_openmp_even_when_sklearn_was_not_loaded_yet() -> None:
    """scikit-learn loads at the first fit; the thread limit must still reach its OpenMP
    runtime (threadpoolctl limits only libraries loaded when the block is entered). Control:
    with ``threadpool_limits`` taken before scikit-learn loads, the block reports OpenMP at
    the machine's core count (2 here) instead of 1."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from threadpoolctl import threadpool_info\n"
        "from detectors._tabular import openmp_limited\n"
        "assert 'sklearn' not in sys.modules\n"
        "with openmp_limited(1):\n"
        "    omp = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'openmp']\n"
        "print(json.dumps(omp))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    omp = json.loads(out.stdout)
    assert omp and all(n == 1 for n in omp), out.stdout
