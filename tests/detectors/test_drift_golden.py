"""Golden values: our drift methods against scipy and Evidently on the same seeded data.

Evidently is imported by the tests that compare with it (fixture ``ev``), not at collection:
its import costs ~7 s of CPU here, which every pytest-xdist worker paid at collection. This
file runs in the worker that makes the demo site's Evidently report (``GROUPS`` in
``tests/conftest.py``), so one process of a run imports Evidently."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.drift import detect
from detectors.drift.binned import coarse_groups
from detectors.drift.distances import wasserstein_error_bound
from detectors.drift.stat_tests import ks_profile_bounds
from detectors.profiles import ReferenceBins, profile_categorical, profile_numeric

RNG_SEED = 20240611


@pytest.fixture(scope="module")
def numeric() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return rng.normal(0.0, 1.0, 800), rng.normal(0.15, 1.1, 600)


@pytest.fixture(scope="module")
def categorical() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED + 1)
    ref = rng.choice(
        np.array(["a", "b", "c", "d", "gone"], dtype=object), 900, p=[0.4, 0.3, 0.15, 0.1, 0.05]
    )
    cur = rng.choice(
        np.array(["a", "b", "c", "d", "new"], dtype=object), 700, p=[0.35, 0.3, 0.2, 0.1, 0.05]
    )
    return ref, cur


# ---------------------------------------------------------------- scipy --------------------
def test_ks_on_samples_is_scipy(numeric: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = numeric
    ours = detect("ks", r, c)
    ref = stats.ks_2samp(r, c)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_anderson_is_scipy(numeric: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = numeric
    ours = detect("anderson", r, c)
    ref = stats.anderson_ksamp([r, c])
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_cramer_von_mises_is_scipy(numeric: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = numeric
    ours = detect("cramer_von_mises", r, c)
    ref = stats.cramervonmises_2samp(r, c)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_energy_distance_is_scipy(numeric: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = numeric
    assert detect("energy_distance", r, c).statistic == pytest.approx(
        stats.energy_distance(r, c), rel=1e-12
    )


def test_t_test_on_samples_and_profiles_is_scipy_welch(
    numeric: tuple[np.ndarray, np.ndarray],
) -> None:
    r, c = numeric
    ref = stats.ttest_ind(r, c, equal_var=False)
    ours = detect("t_test", r, c)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    bins = ReferenceBins.numeric(r)
    # from the power sums only: same test, up to rounding of sum / sum of squares
    prof = detect("t_test", profile_numeric(r, bins), profile_numeric(c, bins))
    assert prof.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert prof.p_value == pytest.approx(ref.pvalue, rel=1e-7)


def test_chi2_is_scipy_contingency(categorical: tuple[np.ndarray, np.ndarray]) -> None:
    r, c = categorical
    labels = sorted(set(r) | set(c))
    table = np.array([[np.sum(r == k) for k in labels], [np.sum(c == k) for k in labels]])
    ref = stats.chi2_contingency(table, correction=False)
    ours = detect("chi2", r, c)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.details["dof"] == ref.dof


def test_fisher_exact_is_scipy() -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    r = rng.choice(np.array(["yes", "no"], dtype=object), 300, p=[0.3, 0.7])
    c = rng.choice(np.array(["yes", "no"], dtype=object), 200, p=[0.4, 0.6])
    bins = ReferenceBins.categorical(r)
    table = [[np.sum(r == k) for k in bins.categories], [np.sum(c == k) for k in bins.categories]]
    ref = stats.fisher_exact(table)
    ours = detect("fisher_exact", r, c)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)


# ---------------------------------------------------------------- Evidently ----------------
@pytest.fixture(scope="module")
def ev() -> SimpleNamespace:
    """Evidently's functions the tests compare with (imported here, see the docstring)."""
    from evidently.legacy.calculations.stattests.hellinger_distance import _hellinger_distance
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.calculations.stattests.kl_div import _kl_div
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.calculations.stattests.tvd_stattest import _total_variation_distance
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (
        _wasserstein_distance_norm,
    )
    from evidently.legacy.core import ColumnType

    binned = {
        "psi": lambda r, c, t: _psi(r, c, t, 0.1)[0],
        "jensen_shannon": lambda r, c, t: _jensenshannon(r, c, t, 0.1)[0],
        "hellinger": lambda r, c, t: _hellinger_distance(r.copy(), c.copy(), t, 0.1)[0],
        "kl_div": lambda r, c, t: _kl_div(r, c, t, 0.1)[0],
        "tvd": lambda r, c, t: _total_variation_distance(r, c),
    }
    assert sorted(binned) == sorted(EVIDENTLY_BINNED)
    return SimpleNamespace(
        binned=binned,
        psi=_psi,
        wasserstein_distance_norm=_wasserstein_distance_norm,
        ColumnType=ColumnType,
    )


# the distances compared with Evidently's on the same buckets (functions: ``ev.binned``)
EVIDENTLY_BINNED = ("psi", "jensen_shannon", "hellinger", "kl_div", "tvd")


@pytest.mark.parametrize("method", sorted(EVIDENTLY_BINNED))
def test_categorical_distances_equal_evidently(
    method: str, categorical: tuple[np.ndarray, np.ndarray], ev: SimpleNamespace
) -> None:
    """Same buckets (one category only in reference, one only in current), same value.

    Evidently keys on the union of values; ours puts values outside the reference vocabulary into
    one "other" bucket, which is the same bucket set while current brings one new category.
    """
    r, c = categorical
    expected = ev.binned[method](pd.Series(r), pd.Series(c), ev.ColumnType.Categorical)
    assert detect(method, r, c, threshold=0.1).statistic == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("method", sorted(set(EVIDENTLY_BINNED) - {"hellinger"}))
def test_low_cardinality_numeric_distances_equal_evidently(
    method: str, ev: SimpleNamespace
) -> None:
    """With <= 20 distinct values Evidently counts each value; our quantile edges sit on the
    values (inverted-CDF quantiles) and the coarse groups keep every value with >= 5 % of the
    reference apart, so the buckets are the same.

    Hellinger is left out: Evidently's numeric Hellinger always uses Sturges density bins.
    """
    rng = np.random.default_rng(RNG_SEED + 3)
    r = rng.integers(0, 8, 3000).astype(float)
    c = np.minimum(rng.poisson(3.0, 2000), 7).astype(float)
    expected = ev.binned[method](pd.Series(r), pd.Series(c), ev.ColumnType.Numerical)
    assert detect(method, r, c, threshold=0.1).statistic == pytest.approx(expected, abs=1e-9)


def test_numeric_binned_distances_differ_from_evidently_on_purpose(
    numeric: tuple[np.ndarray, np.ndarray], ev: SimpleNamespace
) -> None:
    """Evidently re-bins every comparison with Sturges bins over the union of both samples, so
    its bins move with the current window and cannot be summed from hourly profiles; ours are
    fixed reference quantiles. Both measure the same shift: same order of magnitude, not equal.
    """
    r, c = numeric
    theirs = ev.psi(pd.Series(r), pd.Series(c), ev.ColumnType.Numerical, 0.1)[0]
    ours = detect("psi", r, c, threshold=0.1).statistic
    assert ours != pytest.approx(theirs, abs=1e-6)
    assert 0.3 < ours / theirs < 3.0


def test_wasserstein_on_samples_equals_evidently(
    numeric: tuple[np.ndarray, np.ndarray], ev: SimpleNamespace
) -> None:
    r, c = numeric
    expected = ev.wasserstein_distance_norm(
        pd.Series(r), pd.Series(c), ev.ColumnType.Numerical, 0.1
    )[0]
    assert detect("wasserstein", r, c, threshold=0.1).statistic == pytest.approx(
        expected, abs=1e-12
    )


# ---------------------------------------------------------------- profile approximations ---
@pytest.mark.parametrize(
    "make",
    [
        lambda rng, n: rng.normal(0, 1, n),
        lambda rng, n: rng.exponential(1.0, n),
        lambda rng, n: rng.integers(0, 30, n).astype(float),
    ],
)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_on_profiles_is_bracketed_by_its_documented_bound(make, shift: float) -> None:
    rng = np.random.default_rng(RNG_SEED + 4)
    r = make(rng, 5000)
    c = make(rng, 3000) * (1.0 + shift) + shift
    bins = ReferenceBins.numeric(r)
    rp, cp = profile_numeric(r, bins), profile_numeric(c, bins)
    exact = stats.ks_2samp(r, c).statistic
    d_edges, d_upper = ks_profile_bounds(rp, cp)
    assert d_edges <= exact + 1e-12 <= d_upper + 2e-12
    largest_share = max((rp.counts / rp.count).max(), (cp.counts / cp.count).max())
    assert d_upper - d_edges <= largest_share + 1e-12
    result = detect("ks", rp, cp)
    assert result.statistic == d_edges and result.details["d_upper"] == d_upper
    # the p-value at D_edges is conservative: never smaller than the one at d_upper
    assert result.p_value >= result.details["p_value_lower"]


@pytest.mark.parametrize("shift", [0.0, 0.2, 1.0])
def test_wasserstein_on_profiles_is_within_its_error_bound(shift: float) -> None:
    rng = np.random.default_rng(RNG_SEED + 5)
    r = rng.normal(0, 1, 20_000)
    c = rng.normal(shift, 1.3, 10_000)
    bins = ReferenceBins.numeric(r)
    rp, cp = profile_numeric(r, bins), profile_numeric(c, bins)
    exact = stats.wasserstein_distance(r, c) / np.std(r)
    result = detect("wasserstein", rp, cp, threshold=0.1)
    bound = result.details["error_bound"]
    assert bound == pytest.approx(wasserstein_error_bound(rp, cp) / result.details["norm"])
    assert abs(result.statistic - exact) <= bound
    # far tighter than the bound in practice; what is left comes from values beyond the
    # reference range, spread uniformly up to the current max (normal tails are not uniform)
    assert abs(result.statistic - exact) < 0.002 + 0.06 * exact


def test_coarse_groups_hold_about_equal_reference_mass() -> None:
    rng = np.random.default_rng(RNG_SEED + 6)
    r = rng.normal(size=50_000)
    p = profile_numeric(r, ReferenceBins.numeric(r))
    groups = coarse_groups(p.counts)
    mass = np.bincount(groups, weights=p.counts) / p.count
    assert groups.max() == 19 and np.all(np.diff(groups) >= 0)
    assert np.all(np.abs(mass - 0.05) < 0.011)


def test_categorical_profile_psi_equals_formula_with_new_and_missing_categories() -> None:
    bins = ReferenceBins("categorical", categories=("a", "b", "c"))
    rp = profile_categorical(["a"] * 50 + ["b"] * 30 + ["c"] * 20, bins)
    cp = profile_categorical(["a"] * 40 + ["b"] * 40 + ["z"] * 20, bins)
    p = np.array([0.5, 0.3, 0.2, 1e-4])
    q = np.array([0.4, 0.4, 1e-4, 0.2])
    expected = float(np.sum((p - q) * np.log(p / q)))
    assert math.isclose(detect("psi", rp, cp, threshold=0.1).statistic, expected, rel_tol=1e-12)
