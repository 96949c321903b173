"""Hypothesis-test methods: drift when the p-value is below the threshold (α)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy  # scipy.stats loads on first use (about 1 s of the server's start-up)

from detectors.drift import binned
from detectors.drift.registry import Score, register
from detectors.errors import InvalidParameterError
from detectors.profiles import ColumnProfile

_ALPHA = 0.05


# ---------------------------------------------------------------- Kolmogorov-Smirnov ---------
_KS_DESC = (
    "Two-sample Kolmogorov-Smirnov test: exact (scipy.stats.ks_2samp) on samples; on profiles "
    "D is taken at the bin edges, where both empirical CDFs are exact, so "
    "D_edges <= D <= d_upper (details) and d_upper - D_edges <= the largest bucket share; the "
    "p-value uses the asymptotic Kolmogorov distribution at D_edges (conservative)."
)


def ks_profile_bounds(ref: ColumnProfile, cur: ColumnProfile) -> tuple[float, float]:
    """``(D at the edges, upper bound of the exact D)`` from two profiles on the same bins."""
    fr = np.cumsum(ref.counts) / ref.counts.sum()
    fc = np.cumsum(cur.counts) / cur.counts.sum()
    d_edges = float(np.max(np.abs(fr - fc))) if fr.size else 0.0
    # inside bucket j the CDFs move between their values at e_{j-1} and e_j
    fr0 = np.concatenate([[0.0], fr[:-1]])
    fc0 = np.concatenate([[0.0], fc[:-1]])
    d_upper = float(max(np.max(fr - fc0), np.max(fc - fr0), d_edges))
    return d_edges, d_upper


def _ks_pvalue(d: float, n: int, m: int) -> float:
    en = n * m / (n + m)
    return float(scipy.stats.kstwo.sf(d, max(int(np.round(en)), 1)))


@register(
    "ks",
    display_name="Kolmogorov-Smirnov",
    kinds=("numeric",),
    score="p_value",
    default_threshold=_ALPHA,
    description=_KS_DESC,
    symmetric=True,
)
def ks_profiles(ref: ColumnProfile, cur: ColumnProfile) -> Score:
    n, m = int(ref.counts.sum()), int(cur.counts.sum())
    d, d_upper = ks_profile_bounds(ref, cur)
    return Score(
        d,
        _ks_pvalue(d, n, m),
        {"d_upper": d_upper, "p_value_lower": _ks_pvalue(d_upper, n, m), "approximation": "edges"},
    )


@register(
    "ks",
    display_name="Kolmogorov-Smirnov",
    kinds=("numeric",),
    score="p_value",
    default_threshold=_ALPHA,
    description=_KS_DESC,
    symmetric=True,
    samples=True,
)
def ks_samples(ref: npt.NDArray[Any], cur: npt.NDArray[Any]) -> Score:
    res = scipy.stats.ks_2samp(ref, cur)
    return Score(float(res.statistic), float(res.pvalue))


# ---------------------------------------------------------------- Anderson-Darling -----------
@register(
    "anderson",
    display_name="Anderson-Darling (k-sample)",
    kinds=("numeric",),
    score="p_value",
    default_threshold=_ALPHA,
    description=(
        "k-sample Anderson-Darling test (scipy.stats.anderson_ksamp) on samples; scipy caps "
        "its p-value to [0.001, 0.25]."
    ),
    symmetric=True,
    min_size=2,
    samples=True,
)
def anderson_samples(ref: npt.NDArray[Any], cur: npt.NDArray[Any]) -> Score:
    if np.all(ref == ref[0]) and np.all(cur == ref[0]):
        # scipy refuses a single distinct value; identical constants show no drift
        return Score(0.0, 1.0, {"constant": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "p-value capped", documented above
        res = scipy.stats.anderson_ksamp([ref, cur])
    return Score(float(res.statistic), float(np.clip(res.pvalue, 0.0, 1.0)))


# ---------------------------------------------------------------- Cramér-von Mises -----------
@register(
    "cramer_von_mises",
    display_name="Cramér-von Mises",
    kinds=("numeric",),
    score="p_value",
    default_threshold=_ALPHA,
    description="Two-sample Cramér-von Mises test (scipy.stats.cramervonmises_2samp).",
    symmetric=True,
    min_size=2,
    samples=True,
)
def cramer_von_mises_samples(ref: npt.NDArray[Any], cur: npt.NDArray[Any]) -> Score:
    res = scipy.stats.cramervonmises_2samp(ref, cur)
    return Score(float(res.statistic), float(np.clip(res.pvalue, 0.0, 1.0)))


# ---------------------------------------------------------------- Welch t-test ---------------
_T_DESC = (
    "Welch's two-sample t-test on the means (unequal variances): exact from the power sums of "
    "profiles, scipy.stats.ttest_ind(equal_var=False) on samples. Blind to scale changes."
)


def _t_from_stats(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> Score:
    if s1 == 0.0 and s2 == 0.0:
        return Score(0.0 if m1 == m2 else float("inf"), 1.0 if m1 == m2 else 0.0)
    res = scipy.stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False)
    return Score(float(res.statistic), float(res.pvalue))


@register(
    "t_test",
    display_name="Welch t-test",
    kinds=("numeric",),
    score="p_value",
    default_threshold=_ALPHA,
    description=_T_DESC,
    symmetric=True,
    min_size=2,
)
def t_test_profiles(ref: ColumnProfile, cur: ColumnProfile) -> Score:
    out = []
    for p in (ref, cur):
        n = int(p.n_finite or 0)
        if n < 2:
            return Score(float("nan"))
        mean = p.sum / n
        var = max(p.sum_sq - n * mean * mean, 0.0) / (n - 1)
        out.append((mean, float(np.sqrt(var)), n))
    (m1, s1, n1), (m2, s2, n2) = out
    return _t_from_stats(m1, s1, n1, m2, s2, n2)


@register(
    "t_test",
    display_name="Welch t-test",
    kinds=("numeric",),
    score="p_value",
    default_threshold=_ALPHA,
    description=_T_DESC,
    symmetric=True,
    min_size=2,
    samples=True,
)
def t_test_samples(ref: npt.NDArray[Any], cur: npt.NDArray[Any]) -> Score:
    s1, s2 = float(np.std(ref, ddof=1)), float(np.std(cur, ddof=1))
    if s1 == 0.0 and s2 == 0.0:
        return _t_from_stats(float(ref.mean()), 0.0, ref.size, float(cur.mean()), 0.0, cur.size)
    res = scipy.stats.ttest_ind(ref, cur, equal_var=False)
    return Score(float(res.statistic), float(res.pvalue))


# ---------------------------------------------------------------- chi-squared ----------------
@register(
    "chi2",
    display_name="Chi-squared (homogeneity)",
    kinds=("categorical", "numeric"),
    score="p_value",
    default_threshold=_ALPHA,
    description=(
        "Pearson chi-squared test of homogeneity of the 2 x K table (reference, current) of "
        "bucket counts (scipy.stats.chi2_contingency, no continuity correction); numeric "
        "profiles use the coarse reference-quantile bins. Unlike Evidently's goodness-of-fit "
        "version it is symmetric and defined when current has categories reference lacks."
    ),
    symmetric=True,
)
def chi2_profiles(ref: ColumnProfile, cur: ColumnProfile) -> Score:
    r, c = binned.compared_counts(ref, cur)
    keep = (r + c) > 0
    table = np.vstack([r[keep], c[keep]])
    if table.shape[1] < 2:
        return Score(0.0, 1.0, {"dof": 0})
    res = scipy.stats.chi2_contingency(table, correction=False)
    return Score(float(res.statistic), float(res.pvalue), {"dof": int(res.dof)})


# ---------------------------------------------------------------- Fisher exact ---------------
@register(
    "fisher_exact",
    display_name="Fisher's exact test",
    kinds=("categorical",),
    score="p_value",
    default_threshold=_ALPHA,
    description=(
        "Fisher's exact test on the 2 x 2 table of a binary column (scipy.stats.fisher_exact, "
        "two-sided); statistic is the odds ratio."
    ),
    symmetric=True,
    binary_only=True,
)
def fisher_exact_profiles(ref: ColumnProfile, cur: ColumnProfile) -> Score:
    r, c = ref.counts, cur.counts
    keep = (r + c) > 0
    if len(ref.bins.categories) > 2:
        raise InvalidParameterError(
            "method",
            "fisher_exact",
            f"a binary column; this reference has {len(ref.bins.categories)} categories",
        )
    if int(keep.sum()) > 2:
        # a binary reference, but current brought new values ("other"): the 2 x 2 test does not
        # apply; the chi-squared test of the 2 x 3 table answers the same question
        fallback = chi2_profiles(ref, cur)
        return Score(fallback.statistic, fallback.p_value, {**fallback.details, "fallback": "chi2"})
    if int(keep.sum()) < 2:
        return Score(1.0, 1.0)
    table = np.vstack([r[keep], c[keep]]).astype(np.int64)
    res = scipy.stats.fisher_exact(table)
    return Score(float(res.statistic), float(res.pvalue))
