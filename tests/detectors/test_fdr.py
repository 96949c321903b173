"""Benjamini-Hochberg over many columns with null-calibrated distances.

A calibrated p-value from 300 null draws cannot go below 1/301, while BH over m = 50 columns at
α = 0.05 needs one column alone at p <= 0.001: the FDR run refines small p-values with more,
independent null draws (``calibration.refine_p_value``). Checked here: one clearly drifted
column among 50 at n = 5,000 is flagged by ``fdr: true``; on no-drift data with 50 columns the
family-wise false-alarm rate (windows with any column flagged) stays near α, as BH (Simes) has
under the global null; refined p-values agree with their Monte Carlo definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from detectors.drift import calibration, get_method, run_drift
from detectors.profiles import ReferenceBins, profile_categorical, profile_numeric

ALPHA = 0.05
N = 5000
NUMERIC, CATEGORICAL = 40, 10
LABELS = np.array(["a", "b", "c", "d"], dtype=object)
SHARES = [0.4, 0.3, 0.2, 0.1]


def _references(rng: np.random.Generator) -> tuple[dict, dict]:
    refs, bins = {}, {}
    for i in range(NUMERIC):
        x = rng.normal(size=N)
        bins[f"x{i}"] = b = ReferenceBins.numeric(x)
        refs[f"x{i}"] = profile_numeric(x, b)
    for i in range(CATEGORICAL):
        c = rng.choice(LABELS, N, p=SHARES)
        bins[f"c{i}"] = b = ReferenceBins.categorical(c)
        refs[f"c{i}"] = profile_categorical(c, b)
    return refs, bins


def _window(rng: np.random.Generator, bins: dict, shift: dict[str, float] | None = None) -> dict:
    shift = shift or {}
    out = {}
    for name, b in bins.items():
        if name.startswith("x"):
            out[name] = profile_numeric(rng.normal(shift.get(name, 0.0), 1, N), b)
        else:
            out[name] = profile_categorical(rng.choice(LABELS, N, p=SHARES), b)
    return out


def test_fdr_flags_one_clearly_drifted_column_among_fifty() -> None:
    rng = np.random.default_rng(700)
    refs, bins = _references(rng)
    cur = _window(rng, bins, {"x7": 0.3})
    plain = run_drift(refs, cur, alpha=ALPHA)
    assert plain["x7"][0].method == "wasserstein"  # the default for > 1,000 rows
    # without refinement the smallest calibrated p-value is 1/301 > 0.05 / 50
    assert plain["x7"][0].details["null_p_value"] == pytest.approx(1 / 301)
    out = run_drift(refs, cur, alpha=ALPHA, fdr=True)
    flagged = sorted(c for c, rs in out.items() if rs[0].drifted)
    assert flagged == ["x7"]
    d = out["x7"][0].details
    assert d["null_draws"] == calibration.fdr_draws(NUMERIC + CATEGORICAL, ALPHA) == 10_000
    assert d["null_p_value"] <= ALPHA / (NUMERIC + CATEGORICAL)
    assert d["q_value"] <= ALPHA and d["first_null_p_value"] == pytest.approx(1 / 301)


def test_fdr_family_wise_false_alarms_near_alpha_without_drift() -> None:
    rng = np.random.default_rng(701)
    refs, bins = _references(rng)
    windows = 400
    any_flag = []
    for _ in range(windows):
        out = run_drift(refs, _window(rng, bins), alpha=ALPHA, fdr=True)
        any_flag.append(any(rs[0].drifted for rs in out.values()))
    se = np.sqrt(ALPHA * (1 - ALPHA) / windows)
    assert ALPHA - 2.5 * se <= np.mean(any_flag) <= ALPHA + 2.5 * se


def test_refined_p_value_is_the_monte_carlo_p_value_of_an_independent_sample() -> None:
    rng = np.random.default_rng(702)
    x = rng.normal(size=N)
    b = ReferenceBins.numeric(x)
    ref, cur = profile_numeric(x, b), profile_numeric(rng.normal(0.05, 1, N), b)
    m = get_method("jensen_shannon")
    stat = m.on_profiles(ref, cur).statistic  # type: ignore[misc]
    first = calibration.null_statistics_profiles(m, ref, N, N)
    refined = calibration.refined_null_profiles(m, ref, N, N, 4000)
    assert refined.size == 4000 and np.all(np.diff(refined) >= 0)
    # an independent sample of the same law: its quantiles agree with the first one's
    assert np.quantile(refined, 0.9) == pytest.approx(np.quantile(first, 0.9), rel=0.1)
    p, draws = calibration.refine_p_value(0.01, stat, ALPHA, lambda: refined)
    assert draws == 4000 and p == (1 + np.sum(refined >= stat)) / 4001
    # a first p-value above alpha cannot be rejected by BH at alpha: left as it is
    assert calibration.refine_p_value(0.2, stat, ALPHA, lambda: refined) == (0.2, None)


def test_fdr_draws_reach_alpha_over_m() -> None:
    for m in (1, 16, 50, 500):
        b = calibration.fdr_draws(m, 0.05)
        assert 1 / (b + 1) <= 0.05 / m
    assert calibration.fdr_draws(10**6, 0.05) == calibration.FDR_MAX_DRAWS
