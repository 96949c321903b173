"""Null-calibrated thresholds for distance methods, and Benjamini-Hochberg.

A fixed distance threshold (Evidently's 0.1) means different things at different sample sizes:
sampling noise alone pushes a PSI or a Wasserstein distance over 0.1 in small windows, and a
real shift stays under it in large ones. Without an explicit threshold, a calibrated distance
method is compared with the (1 - α) quantile of its own statistic *under no drift*, at the
window's sample size:

* on profiles, reference and current counts are drawn from the reference bucket shares
  (multinomial; its Gaussian approximation when the size exceeds ``_GAUSS_MIN`` and every
  bucket expects >= 20 values, where the two agree closely and the draw is ~10x cheaper), ``n_draws`` times, and the statistic is
  computed on each pair — the reference's own sampling noise is included;
* when both samples are large (every compared bucket expects >= 50 values on each side and
  both sizes exceed ``_GAUSS_MIN``) the null is drawn once per reference at n_eff = 10^6 and
  rescaled: with share differences ~ N(0, Σ / n_eff), distances linear in them (Wasserstein,
  TVD) or in their root-sum-of-squares (Jensen-Shannon, Hellinger) shrink as n_eff^-1/2 and
  the quadratic ones (PSI, KL) as n_eff^-1, so one cached draw serves every window size;
* on samples (``wasserstein``, ``energy_distance``), both are bootstrapped from the reference
  sample. Above ``SAMPLE_CAP`` rows per side the draws are taken at the cap and the statistics
  scaled by sqrt(n_eff(cap) / n_eff(n)), n_eff = n m / (n + m): both distances shrink as
  1/sqrt(n_eff) under no drift (their scaled versions converge to a fixed law).

Below the large-sample regime the null is drawn on a grid of sample sizes, not at each window's
exact size: above ``_GRID_EXACT`` values a size is rounded to the nearest of ``_GRID_STEPS``
log-spaced points per doubling (at most 1.1 % away) and the null drawn there is rescaled to the
window's size like the large-sample null, by ``(n_eff(grid) / n_eff(n)) ** null_exponent``. A
backfill of daily windows whose sizes all differ then draws a handful of nulls instead of one per
window and segment (that was half of its time); the threshold moves by at most ~0.6 % (exponent
1/2) or ~1.1 % (exponent 1) from the exact-size draw, well inside the null quantile's own Monte
Carlo error at 300 draws (``tests/detectors/test_calibration.py`` checks false alarms and power
at off-grid sizes).

Null statistics are cached by (reference fingerprint, method, n_reference, n_current, n_draws)
on the grid, and draws are seeded from that key, so a result is reproducible and cheap to
recompute. The
calibrated result also carries ``null_p_value`` = (1 + #null >= statistic) / (n_draws + 1), which
:func:`benjamini_hochberg` can use across columns and segments.

That p-value cannot go below 1 / 301, while Benjamini-Hochberg over ``m`` columns needs one
column alone at ``alpha / m``. FDR runs therefore refine every null p-value at most ``alpha``
with a second, independent null sample of :func:`fdr_draws` draws (:func:`refine_p_value`
says why the result stays valid); these larger nulls are drawn in blocks, keep only their
sorted statistics, and are cached apart (``_REFINED``).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from threading import Lock
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.drift import binned
from detectors.drift.registry import DriftMethod
from detectors.errors import InvalidParameterError
from detectors.profiles import ColumnProfile

__all__ = [
    "SAMPLE_CAP",
    "benjamini_hochberg",
    "clear_cache",
    "null_statistics_profiles",
    "null_statistics_samples",
    "threshold_from_null",
]

DEFAULT_DRAWS = 300
SAMPLE_DRAWS = 300
SAMPLE_CAP = 2000
_GAUSS_MIN = 10_000
_GAUSS_MIN_COUNT = 20
# Large-sample regime: null statistics drawn once at n_eff = 1e6 and rescaled by
# (n_eff0 / n_eff) ** method.null_exponent when every compared bucket expects this many values.
_ASYM_N = 2_000_000
_ASYM_MIN_COUNT = 50
_CACHE_SIZE = 4096
# Sample-size grid of the small-sample nulls (see the module docstring): exact sizes up to
# _GRID_EXACT, then _GRID_STEPS log-spaced sizes per doubling.
_GRID_EXACT = 1024
_GRID_STEPS = 32
# FDR refinement (see refine_p_value): between these many draws, and how many counts one
# block of draws may hold.
FDR_MIN_DRAWS = 2_000
FDR_MAX_DRAWS = 100_000
_BLOCK_VALUES = 2_000_000


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[tuple[object, ...], npt.NDArray[Any]] = OrderedDict()
        self.lock = Lock()

    def get(self, key: tuple[object, ...]) -> npt.NDArray[Any] | None:
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key: tuple[object, ...], value: npt.NDArray[Any]) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


_NULLS = _LRU(_CACHE_SIZE)
_DRAWS = _LRU(16)
# Refined nulls hold up to FDR_MAX_DRAWS statistics each: a cache of their own, smaller.
_REFINED = _LRU(256)


def clear_cache() -> None:
    """Forget every cached null distribution (tests use it)."""
    _NULLS.data.clear()
    _DRAWS.data.clear()
    _REFINED.data.clear()


def _seed(*parts: object) -> int:
    return int(hashlib.sha1(repr(parts).encode()).hexdigest()[:16], 16)


def _draw_counts(
    p: npt.NDArray[Any], n: int, size: int, rng: np.random.Generator
) -> npt.NDArray[Any]:
    positive = p[p > 0]
    # the normal approximation needs every bucket to expect a fair number of values
    if n >= _GAUSS_MIN and positive.size and n * positive.min() >= _GAUSS_MIN_COUNT:
        # multinomial covariance n (diag p - p pᵀ): z ~ N(0, diag p) minus p Σz has
        # exactly that covariance (Σp = 1) and rows sum to n
        z = rng.standard_normal((size, p.size)) * np.sqrt(p)
        z -= p * z.sum(axis=1, keepdims=True)
        result: npt.NDArray[Any] = np.maximum(n * p + np.sqrt(n) * z, 0.0)
        return result
    return rng.multinomial(n, p, size=size).astype(np.float64)


def null_statistics_profiles(
    method: DriftMethod, ref: ColumnProfile, n_ref: int, n_cur: int, n_draws: int = DEFAULT_DRAWS
) -> npt.NDArray[Any]:
    """Sorted statistics of ``method`` under no drift, from resampled reference counts."""
    if method.null_from_counts is None:
        raise InvalidParameterError("method", method.name, "a calibrated method")
    if _asymptotic(ref, n_ref, n_cur):
        g_ref = g_cur = _ASYM_N
    else:
        g_ref, g_cur = grid_size(n_ref), grid_size(n_cur)
    null = _profile_null(method, ref, g_ref, g_cur, n_draws)
    if (g_ref, g_cur) == (n_ref, n_cur):
        return null
    result: npt.NDArray[Any] = (
        null * (_n_eff(g_ref, g_cur) / _n_eff(n_ref, n_cur)) ** method.null_exponent
    )
    return result


def grid_size(n: int) -> int:
    """The sample size a small-sample null is drawn at for ``n`` values: ``n`` itself up to
    ``_GRID_EXACT``, above it the nearest of ``_GRID_STEPS`` log-spaced sizes per doubling.

    Examples
    --------
    >>> grid_size(700), grid_size(3280), grid_size(3320)
    (700, 3298, 3298)
    """
    if n <= _GRID_EXACT:
        return n
    return round(math.pow(2.0, round(math.log2(n) * _GRID_STEPS) / _GRID_STEPS))


def prepare_large_sample_null(
    method: DriftMethod, ref: ColumnProfile, n_draws: int = DEFAULT_DRAWS
) -> None:
    """Draw and cache ``method``'s large-sample null for ``ref`` (see the module docstring)."""
    _profile_null(method, ref, _ASYM_N, _ASYM_N, n_draws)


def _n_eff(n: int, m: int) -> float:
    return n * m / (n + m)


def _asymptotic(ref: ColumnProfile, n_ref: int, n_cur: int) -> bool:
    """Are both samples large enough for the large-sample null law to apply?

    Every compared bucket (coarse group for numeric columns) must expect at least
    ``_ASYM_MIN_COUNT`` values on both sides.
    """
    n = min(n_ref, n_cur)
    if n < _GAUSS_MIN:
        return False
    counts = ref.counts.astype(np.float64)
    if ref.kind == "numeric":
        counts = binned.coarsen(counts, binned.coarse_groups(ref.counts))
    positive = counts[counts > 0]
    return bool(positive.size) and n * positive.min() / counts.sum() >= _ASYM_MIN_COUNT


def _profile_null(
    method: DriftMethod, ref: ColumnProfile, n_ref: int, n_cur: int, n_draws: int
) -> npt.NDArray[Any]:
    assert method.null_from_counts is not None
    key = (ref.fingerprint, method.name, n_ref, n_cur, n_draws)
    cached = _NULLS.get(key)
    if cached is not None:
        return cached
    if n_draws > DEFAULT_DRAWS:
        null = _REFINED.get(key)
        if null is None:
            null = _profile_null_streamed(method, ref, n_ref, n_cur, n_draws)
            _REFINED.put(key, null)
        return null
    # the draws depend only on what seeds them (bins and counts), not on the profile's sums
    draw_key = (ref.seed_key, n_ref, n_cur, n_draws)
    draws = _DRAWS.get(draw_key)
    if draws is None:
        rng = np.random.default_rng(_seed(*draw_key))
        p = ref.counts / ref.counts.sum()
        draws = np.stack(
            [_draw_counts(p, n_ref, n_draws, rng), _draw_counts(p, n_cur, n_draws, rng)]
        )
        _DRAWS.put(draw_key, draws)
    null = np.sort(method.null_from_counts(ref, draws[0], draws[1]))
    _NULLS.put(key, null)
    return null


def _profile_null_streamed(
    method: DriftMethod, ref: ColumnProfile, n_ref: int, n_cur: int, n_draws: int
) -> npt.NDArray[Any]:
    """Many null draws (the FDR refinement) in blocks: the raw counts of ``n_draws`` pairs
    would take ``2 n_draws K`` floats, so only the statistics are kept."""
    assert method.null_from_counts is not None
    rng = np.random.default_rng(_seed(ref.seed_key, n_ref, n_cur, n_draws))
    p = ref.counts / ref.counts.sum()
    block = max(1, min(n_draws, _BLOCK_VALUES // max(1, p.size)))
    out = []
    done = 0
    while done < n_draws:
        size = min(block, n_draws - done)
        r, c = _draw_counts(p, n_ref, size, rng), _draw_counts(p, n_cur, size, rng)
        out.append(method.null_from_counts(ref, r, c))
        done += size
    return np.sort(np.concatenate(out))


def refined_null_profiles(
    method: DriftMethod, ref: ColumnProfile, n_ref: int, n_cur: int, n_draws: int
) -> npt.NDArray[Any]:
    """A second, independent and larger null sample for the FDR refinement (see
    :func:`refine_p_value`), large-sample rescaled like :func:`null_statistics_profiles`."""
    return null_statistics_profiles(method, ref, n_ref, n_cur, n_draws)


def fdr_draws(m: int, alpha: float) -> int:
    """Null draws a refined p-value needs so Benjamini-Hochberg over ``m`` hypotheses at
    ``alpha`` can reject one alone: the smallest p-value, ``1 / (B + 1)``, must be at most
    ``alpha / m``; ten times that many draws also resolve p-values near ``alpha / m``."""
    need = int(np.ceil(10.0 * max(m, 1) / alpha))
    return int(min(max(need, FDR_MIN_DRAWS), FDR_MAX_DRAWS))


def refine_p_value(
    first_p: float, statistic: float, alpha: float, refined: Callable[[], npt.NDArray[Any]]
) -> tuple[float, int | None]:
    """The p-value to use in the FDR step, and the draws it rests on (``None``: the first).

    A p-value from ``B`` null draws cannot go below ``1 / (B + 1)``. When the first p-value is
    at most ``alpha`` (only those can be rejected by Benjamini-Hochberg at ``alpha``), it is
    replaced by one computed from a second, *independent* null sample of ``refined()``
    (its own seed), never pooled with the first. This stays a valid p-value: for
    ``t < alpha``, ``{p <= t}`` can only happen through the second sample, which alone gives
    ``P(p2 <= t) <= t``; for ``t >= alpha``, ``{p <= t}`` implies ``{p1 <= t}``.
    """
    if not first_p <= alpha:
        return first_p, None
    null = refined()
    _, p = threshold_from_null(null, statistic, alpha)
    return p, int(null.size)


def null_statistics_samples(
    method: DriftMethod,
    statistic: Callable[[npt.NDArray[Any], npt.NDArray[Any]], float],
    ref: npt.NDArray[Any],
    n_cur: int,
    n_draws: int = SAMPLE_DRAWS,
) -> npt.NDArray[Any]:
    """Sorted statistics under no drift, bootstrapping both samples from ``ref``."""
    ordered = np.sort(ref)
    key = (hashlib.sha1(ordered.tobytes()).hexdigest(), method.name, ref.size, n_cur, n_draws)
    cached = _NULLS.get(key)
    if cached is not None:
        return cached
    rng = np.random.default_rng(_seed(*key))
    n, m = ref.size, n_cur
    dn, dm = min(n, SAMPLE_CAP), min(m, SAMPLE_CAP)
    scale = np.sqrt((dn * dm / (dn + dm)) / (n * m / (n + m)))
    out = np.empty(n_draws)
    for i in range(n_draws):
        a = ordered[rng.integers(0, n, dn)]
        b = ordered[rng.integers(0, n, dm)]
        out[i] = statistic(a, b)
    null = np.sort(out * scale)
    _NULLS.put(key, null)
    return null


def _higher_quantile(null: npt.NDArray[Any], q: float) -> float:
    """``np.quantile(null, q, method="higher")`` of a sorted ``null`` (NaN last, as
    ``np.sort`` leaves it): the value at index ceil((n - 1) q), NaN when any is NaN. One
    index instead of numpy's copy and partition, paid per column, segment and window."""
    if null.size == 0:
        return float(np.quantile(null, q, method="higher"))  # numpy's error for no values
    if np.isnan(null[-1]):
        return float("nan")
    return float(null[math.ceil((null.size - 1) * q)])


def threshold_from_null(
    null: npt.NDArray[Any], statistic: float, alpha: float
) -> tuple[float, float]:
    """``(threshold, null_p_value)``: the (1 - α) quantile and the resampling p-value."""
    if not 0.0 < alpha < 1.0:
        raise InvalidParameterError("alpha", alpha, "a number in (0, 1)")
    threshold = _higher_quantile(null, 1.0 - alpha)
    exceed = null.size - int(np.searchsorted(null, statistic, side="left"))
    return threshold, (1.0 + exceed) / (null.size + 1.0)


def benjamini_hochberg(
    p_values: Sequence[float] | npt.NDArray[Any], alpha: float = 0.05
) -> npt.NDArray[Any]:
    """Which hypotheses to reject with the false discovery rate controlled at ``alpha``.

    Parameters
    ----------
    p_values
        One p-value per column / segment; NaN entries are never rejected and do not count.
    alpha
        Target false discovery rate.

    Returns
    -------
    numpy.ndarray
        Boolean mask, ``True`` where rejected (drift).

    Examples
    --------
    >>> benjamini_hochberg([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205], 0.05).tolist()
    [True, True, False, False, False, False, False, False]
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidParameterError("alpha", alpha, "a number in (0, 1)")
    p = np.asarray(p_values, dtype=np.float64)
    out = np.zeros(p.shape, dtype=bool)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    below = p[order] <= alpha * np.arange(1, m + 1) / m
    if below.any():
        k = int(np.flatnonzero(below).max())
        out[order[: k + 1]] = True
    return out


def bh_adjusted(p_values: Sequence[float] | npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    q = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out[order] = np.minimum(q, 1.0)
    return out
