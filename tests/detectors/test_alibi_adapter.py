"""The alibi-detect adapter: TabularDrift agrees with scipy, online detectors behave, and a
missing extra names the install command."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from detectors.errors import InvalidParameterError, MissingOptionalDependency

pytestmark = pytest.mark.alibi


@pytest.fixture(scope="module")
def adapter():
    pytest.importorskip("alibi_detect", reason="needs the alibi extra")
    from detectors import alibi_adapter

    return alibi_adapter


@pytest.fixture
def serial_cvm_thresholds(adapter, monkeypatch: pytest.MonkeyPatch) -> None:
    """alibi's CVM threshold simulation (``cvm_online._ids_to_stats``, its own Python code)
    compiled by numba without ``parallel=True``. alibi's parallel build compiles for ~25 s of
    CPU in a fresh venv (its on-disk cache is keyed by the source file's mtime, which each
    install resets); the serial one for ~7 s. Each stream is simulated independently, so the
    thresholds are the same, bit for bit (checked when this was written: 4,000 bootstraps,
    windows 10 and 30); the rest of the detector is alibi's as shipped."""
    import numba
    from alibi_detect.cd import cvm_online

    serial = numba.njit(cvm_online._ids_to_stats.py_func)  # no cache: it shares the key
    monkeypatch.setattr(cvm_online, "_ids_to_stats", serial)


def test_missing_extra_raises_with_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from detectors import alibi_adapter

    monkeypatch.setitem(sys.modules, "alibi_detect", None)
    monkeypatch.setitem(sys.modules, "alibi_detect.cd", None)
    ref = {"a": np.arange(50.0)}
    with pytest.raises(
        MissingOptionalDependency, match=r"pip install 'driftwatch\[alibi\]'"
    ) as info:
        alibi_adapter.tabular_drift(ref, ref)
    assert isinstance(info.value, ImportError)
    with pytest.raises(MissingOptionalDependency):
        alibi_adapter.OnlineDrift("cvm", np.zeros(50), ert=100, window_sizes=[10])


def test_adapter_module_imports_without_alibi(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import detectors.alibi_adapter as mod

    monkeypatch.setitem(sys.modules, "alibi_detect", None)
    importlib.reload(mod)  # the import is lazy: loading the adapter itself never needs alibi


def test_tabular_drift_p_values_agree_with_scipy(adapter) -> None:
    rng = np.random.default_rng(0)
    ref = {
        "num": rng.normal(size=800),
        "shifted": rng.normal(size=800),
        "city": rng.choice(np.array(["ams", "ber", "cph"]), 800),
    }
    cur = {
        "num": rng.normal(size=500),
        "shifted": rng.normal(0.3, 1.0, size=500),
        "city": rng.choice(np.array(["ams", "ber", "cph", "dub"]), 500, p=[0.3, 0.3, 0.3, 0.1]),
    }
    r = adapter.tabular_drift(ref, cur)
    assert r.tests == {"num": "ks", "shifted": "ks", "city": "chi2"}
    for col in ("num", "shifted"):
        ks = ks_2samp(ref[col], cur[col], method="asymp")
        assert r.p_values[col] == pytest.approx(ks.pvalue, rel=1e-5, abs=1e-12)
        assert r.statistics[col] == pytest.approx(ks.statistic, rel=1e-5)
    cats = ["ams", "ber", "cph", "dub"]
    table = np.array([[np.sum(side["city"] == c) for c in cats] for side in (ref, cur)])
    chi2 = chi2_contingency(table)
    assert r.p_values["city"] == pytest.approx(chi2.pvalue, rel=1e-5, abs=1e-12)
    assert r.statistics["city"] == pytest.approx(chi2.statistic, rel=1e-5)
    assert r.overall.drifted is True
    assert r.overall.threshold == pytest.approx(0.05 / 3)
    assert r.overall.p_value == pytest.approx(min(r.p_values.values()))


def test_tabular_drift_false_alarm_rate_on_same_distribution(adapter) -> None:
    rng = np.random.default_rng(1)
    alarms = {"bonferroni": 0, "fdr": 0}
    for _ in range(40):
        ref = {"a": rng.normal(size=300), "b": rng.exponential(size=300)}
        cur = {"a": rng.normal(size=300), "b": rng.exponential(size=300)}
        for correction in alarms:
            alarms[correction] += bool(
                adapter.tabular_drift(ref, cur, correction=correction).overall.drifted
            )
    # family-wise level 0.05: about 2 of 40 expected
    assert alarms["bonferroni"] <= 5 and alarms["fdr"] <= 5, alarms
    with pytest.raises(InvalidParameterError, match="correction"):
        adapter.tabular_drift(ref, cur, correction="holm")


def _stationary_alarms(det, streams) -> int:
    alarms = 0
    for stream in streams:
        det.reset()
        alarms += det.run(stream).drifted
    return alarms


def test_cvm_online_detects_mean_shift_soon_and_is_quiet_without_one(
    adapter, serial_cvm_thresholds
) -> None:
    rng = np.random.default_rng(2)
    det = adapter.OnlineDrift(
        "cvm", rng.normal(size=300), ert=1_000, window_sizes=[10, 30], n_bootstraps=4_000, seed=0
    )
    # 10 streams x ~90 observations after the first window fills, ERT 1,000: ~1 alarm expected
    assert _stationary_alarms(det, [rng.normal(size=100) for _ in range(10)]) <= 3
    change_at = 60
    delays = []
    for _ in range(5):
        det.reset()
        run = det.run(np.r_[rng.normal(size=change_at), rng.normal(1.5, 1.0, size=100)])
        assert run.drifted and run.detected_at > change_at - 10  # not long before the change
        delays.append(run.detected_at - change_at)
    assert np.median(delays) <= 15, delays
    assert max(delays) <= 30, delays


def test_fet_online_detects_rate_increase_soon_and_is_quiet_without_one(adapter) -> None:
    rng = np.random.default_rng(3)
    ref = (rng.random(500) < 0.2).astype(float)
    det = adapter.OnlineDrift("fet", ref, ert=1_000, window_sizes=[20, 40], n_bootstraps=4_000)
    streams = [(rng.random(100) < 0.2).astype(float) for _ in range(10)]
    assert _stationary_alarms(det, streams) <= 3
    delays = []
    for _ in range(5):
        det.reset()
        run = det.run(np.r_[rng.random(50) < 0.2, rng.random(150) < 0.6].astype(float))
        assert run.drifted and run.detected_at > 40
        delays.append(run.detected_at - 50)
    assert max(delays) <= 40, delays
    step = adapter.OnlineDrift("fet", ref, ert=100, window_sizes=[5]).update(1.0)
    assert step.t == 1 and not step.drifted


def test_online_parameters_fail_fast(adapter) -> None:
    with pytest.raises(InvalidParameterError, match="method"):
        adapter.OnlineDrift("page_hinkley", np.zeros(50), ert=100, window_sizes=[5])
    with pytest.raises(InvalidParameterError, match="window_sizes"):
        adapter.OnlineDrift("cvm", np.zeros(50), ert=100, window_sizes=[0])
    with pytest.raises(InvalidParameterError, match="0/1"):
        adapter.OnlineDrift("fet", np.linspace(0, 1, 50), ert=100, window_sizes=[5])
    with pytest.raises(InvalidParameterError, match="ert"):
        adapter.OnlineDrift("cvm", np.zeros(50), ert=1, window_sizes=[5])


def test_seeded_configuration_is_reproducible_and_leaves_global_rng_alone(adapter) -> None:
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    ref = (np.random.default_rng(4).random(200) < 0.3).astype(float)
    a = adapter.OnlineDrift("fet", ref, ert=50, window_sizes=[10], n_bootstraps=500, seed=7)
    b = adapter.OnlineDrift("fet", ref, ert=50, window_sizes=[10], n_bootstraps=500, seed=7)
    np.testing.assert_array_equal(a._detector.thresholds, b._detector.thresholds)
    assert np.random.random() == expected_next
