"""Univariate drift methods on profiles and samples, one registry with stable keys.

Methods
-------
==========================  =============  =========  ==========  ======================  =====
key                         kinds          score      profiles    default decision        samp.
==========================  =============  =========  ==========  ======================  =====
``ks``                      numeric        p-value    edge approx p < α (0.05)            exact
``anderson``                numeric        p-value    no          p < α (0.05)            yes
``cramer_von_mises``        numeric        p-value    no          p < α (0.05)            yes
``t_test`` (Welch)          numeric        p-value    exact       p < α (0.05)            yes
``chi2``                    both           p-value    yes         p < α (0.05)            via
``fisher_exact``            categorical    p-value    yes         p < α (0.05), binary    via
``wasserstein`` (normed)    numeric        distance   approx      > null (1-α) quantile   exact
``energy_distance``         numeric        distance   no          > null (1-α) quantile   yes
``psi``                     both           distance   yes         > null (1-α) quantile   via
``jensen_shannon``          both           distance   yes         > null (1-α) quantile   via
``hellinger``               both           distance   yes         > null (1-α) quantile   via
``kl_div``                  both           distance   yes         > null (1-α) quantile   via
``tvd``                     both           distance   yes         > null (1-α) quantile   via
``new_category_share``      categorical    distance   yes         > 0.01 over reference   via
==========================  =============  =========  ==========  ======================  =====

"via": on samples the method profiles both samples on bins from the reference sample.
An explicit ``threshold`` replaces the calibrated one (e.g. 0.1 for Evidently's behaviour, which
then holds no fixed false-alarm rate). Every distance's fixed ``default_threshold`` is 0.1
(0.01 for ``new_category_share``), used only when calibration cannot run.

Definitions and how they relate to Evidently's: ``wasserstein`` divides W1 by the reference
standard deviation (min 0.001) as Evidently; on samples it is the same number. ``psi``,
``kl_div``, ``jensen_shannon``, ``hellinger`` and ``tvd`` are computed on reference-quantile bins
(numeric, 20 coarse groups of equal reference mass) or category buckets; on categorical columns
they equal Evidently's, while on numeric columns Evidently re-bins every window with Sturges
bins over the union of both samples, which cannot be merged from hourly profiles. Evidently's
``TVD`` is a permutation p-value; ours is the distance itself, calibrated. ``chi2`` is the
homogeneity test of the 2 x K table (Evidently: goodness of fit against reference shares).

Calibration and power (``tests/detectors/test_calibration.py``): on 500 no-drift windows every
test, and every calibrated distance at 200 and at 20,000 rows, flags drift in α ± 2 standard
errors of the windows (profile KS and Fisher's exact test are conservative: at most that).
With reference and current of the same size, in >= 80 % of windows:

==========================  ======  =========================================================
change                      rows    detected by
==========================  ======  =========================================================
mean +0.2 σ                 1,000   ks, anderson, cramer_von_mises, t_test, energy_distance,
                                    wasserstein
scale x1.2                  5,000   ks, anderson, cramer_von_mises, energy_distance,
                                    wasserstein (not t_test: the mean does not move)
category shares             3,000   chi2, psi, jensen_shannon, hellinger, tvd, kl_div
.5/.3/.2 → .45/.33/.22
==========================  ======  =========================================================

Entry points: :func:`detect` (one column), :func:`run_drift` (many columns, the monitor runner),
:func:`prepare_reference` (cache a new reference's null draws before its first window),
:func:`choose_method` (defaults), :func:`apply_fdr` / :func:`benjamini_hochberg` (false
discovery rate across columns and segments).
"""

from __future__ import annotations

# Importing the method modules registers them.
from detectors.drift import categories, distances, stat_tests  # noqa: F401
from detectors.drift.calibration import benjamini_hochberg, bh_adjusted, clear_cache
from detectors.drift.registry import DriftMethod, Score, available_methods, get_method, register
from detectors.drift.run import DEFAULT_ALPHA, apply_fdr, detect, prepare_reference, run_drift
from detectors.drift.selection import choose_method, default_method_for_profile

__all__ = [
    "DEFAULT_ALPHA",
    "DriftMethod",
    "Score",
    "apply_fdr",
    "available_methods",
    "benjamini_hochberg",
    "bh_adjusted",
    "choose_method",
    "clear_cache",
    "default_method_for_profile",
    "detect",
    "get_method",
    "prepare_reference",
    "register",
    "run_drift",
]
