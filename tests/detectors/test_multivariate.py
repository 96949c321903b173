"""Multivariate drift: quiet on exchangeable samples, finds correlation-only changes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from detectors.errors import InvalidParameterError, NotFittedError
from detectors.multivariate import DomainClassifier, PCAReconstructionDrift
from detectors.result import DetectorResult

FAST = {"max_iter": 40, "n_splits": 3}


def _table(rng: np.random.Generator, n: int, rho: float = 0.8, shift_c: float = 0.0) -> dict:
    """x1, x2 correlated with ``rho``; c independent (optionally shifted); a categorical."""
    z1, z2 = rng.normal(size=(2, n))
    return {
        "x1": z1,
        "x2": rho * z1 + np.sqrt(1 - rho**2) * z2,  # N(0, 1) for every rho
        "c": rng.normal(shift_c, 1.0, n),
        "d": rng.exponential(1.0, n),
        "plan": rng.choice(np.array(["free", "pro", "team"]), n, p=[0.6, 0.3, 0.1]),
    }


def test_correlation_only_change_is_found_by_both_while_marginals_pass_ks() -> None:
    rng = np.random.default_rng(0)
    ref, cur = _table(rng, 3_000), _table(rng, 1_500, rho=0.0)
    for col in ("x1", "x2", "c", "d"):
        assert ks_2samp(ref[col], cur[col]).pvalue > 0.01, col  # marginals look unchanged
    dc = DomainClassifier(**FAST).fit(ref).score(cur)
    assert isinstance(dc, DetectorResult)
    assert dc.drifted is True and dc.statistic > 0.55
    assert set(dc.top_features[:2]) == {"x1", "x2"}
    pca = PCAReconstructionDrift().fit(ref).score(cur)
    assert pca.drifted is True and pca.statistic > pca.upper


def test_ranking_names_the_shifted_feature_first() -> None:
    rng = np.random.default_rng(1)
    dc = DomainClassifier(**FAST).fit(_table(rng, 2_000))
    r = dc.score(_table(rng, 2_000, shift_c=0.4))
    assert r.drifted is True
    assert r.top_features[0] == "c"
    assert r.feature_importance[0][1] > 2 * max(abs(v) for _, v in r.feature_importance[1:])


def test_categorical_mix_change_is_found_and_ranked_first() -> None:
    rng = np.random.default_rng(2)
    ref = _table(rng, 2_000)
    cur = _table(rng, 2_000)
    cur["plan"] = rng.choice(
        np.array(["free", "pro", "team", "trial"]), 2_000, p=[0.4, 0.3, 0.1, 0.2]
    )
    r = DomainClassifier(**FAST).fit(ref).score(cur)
    assert r.drifted is True and r.top_features[0] == "plan"


def test_domain_classifier_quiet_on_identically_distributed_data() -> None:
    alarms = 0
    aucs = []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        r = (
            DomainClassifier(**FAST, random_state=seed)
            .fit(_table(rng, 1_000))
            .score(_table(rng, 1_000))
        )
        alarms += bool(r.drifted)
        aucs.append(r.statistic)
    assert alarms == 0, aucs
    assert abs(np.mean(aucs) - 0.5) < 0.03


def test_pca_false_alarm_rate_and_band_at_several_window_sizes() -> None:
    rng = np.random.default_rng(3)
    det = PCAReconstructionDrift().fit(_table(rng, 6_000))
    assert 1 <= det.n_components < 5
    alarms = 0
    n_windows = 60
    for i in range(n_windows):
        r = det.score(_table(rng, (200, 1_000, 5_000)[i % 3]))
        alarms += bool(r.drifted)
        assert r.lower < r.reference_mean < r.upper
    assert alarms <= 3  # ±3 SE: expected ~0.3 % of windows, allow a few
    # the band narrows as 1/√n
    small, large = det.score(_table(rng, 100)), det.score(_table(rng, 10_000))
    assert (small.upper - small.reference_mean) / (
        large.upper - large.reference_mean
    ) == pytest.approx(10)


def test_pca_errors_match_an_independent_numpy_computation() -> None:
    rng = np.random.default_rng(4)
    ref = {k: v for k, v in _table(rng, 2_000).items() if k != "plan"}
    det = PCAReconstructionDrift(random_state=7).fit(ref)
    half = np.random.default_rng(7).permutation(2_000)[:1_000]
    x = np.column_stack([ref[k] for k in ("x1", "x2", "c", "d")])
    fit = x[half]
    mu, sd = fit.mean(axis=0), fit.std(axis=0)
    z = (fit - mu) / sd
    _, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.65) + 1)
    cur = _table(rng, 50)
    zc = (np.column_stack([cur[c] for c in ("x1", "x2", "c", "d")]) - mu) / sd
    centred = zc - z.mean(axis=0)
    rebuilt = centred @ vt[:k].T @ vt[:k]
    expected = np.linalg.norm(centred - rebuilt, axis=1)
    assert det.n_components == k
    got = det.errors({c: cur[c] for c in ("x1", "x2", "c", "d")})
    np.testing.assert_allclose(got, expected, rtol=1e-8)


@pytest.mark.slow
def test_permutation_threshold_gives_p_values() -> None:
    rng = np.random.default_rng(5)
    ref = _table(rng, 300)
    dc = DomainClassifier(threshold="permutation", n_permutations=19, **FAST).fit(ref)
    same = dc.score(_table(rng, 300))
    shifted = dc.score(_table(rng, 300, shift_c=0.8))
    assert shifted.p_value == pytest.approx(1 / 20) and shifted.drifted is True
    assert same.p_value > 0.05 and same.drifted is False
    assert 0.5 < shifted.threshold < 0.65


def test_small_windows_are_no_data_and_misuse_raises() -> None:
    rng = np.random.default_rng(6)
    ref = _table(rng, 500)
    small = DomainClassifier(**FAST).fit(ref).score(_table(rng, 10))
    assert small.no_data and "fewer than" in small.details["reason"]
    assert PCAReconstructionDrift().fit(ref).score(_table(rng, 5)).no_data
    with pytest.raises(NotFittedError):
        DomainClassifier().score(ref)
    with pytest.raises(NotFittedError):
        PCAReconstructionDrift().score(ref)
    with pytest.raises(InvalidParameterError, match="threshold"):
        DomainClassifier(threshold=0.4)
    with pytest.raises(InvalidParameterError, match="variance"):
        PCAReconstructionDrift(variance=1.5)
    with pytest.raises(InvalidParameterError, match="columns"):
        PCAReconstructionDrift().fit(ref).score({"x1": np.zeros(50)})


def test_docstring_example_runs() -> None:
    import doctest

    import detectors.multivariate

    failed, attempted = doctest.testmod(detectors.multivariate)
    assert attempted > 0 and failed == 0
