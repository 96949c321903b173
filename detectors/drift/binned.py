"""Distances between binned distributions, vectorised over rows (…, K).

Numeric profiles are compared on *coarse* reference-quantile bins: the stored buckets (about 100
reference quantiles plus two open ends) are merged into at most ``COARSE_BINS`` groups of about
equal reference mass, so a window of a few hundred rows does not leave most bins empty (which
would make PSI and KL blow up through the zero fill) and the open out-of-range buckets join the
outermost groups instead of having a reference share of zero. Categorical profiles use their
buckets as they are (the vocabulary plus "other").

Zero shares are filled as Evidently's ``get_binned_data`` does (``min(non-zero)/1e6`` when that
minimum is ≤ 1e-4, else 1e-4) for PSI and KL, and not at all for Jensen-Shannon, Hellinger and
TVD, so categorical values match Evidently's to floating-point precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.profiles import ColumnProfile

COARSE_BINS = 20


def coarse_groups(ref_counts: npt.NDArray[Any], n_groups: int = COARSE_BINS) -> npt.NDArray[Any]:
    """Group index (non-decreasing) of each bucket so groups hold ~equal reference mass."""
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    total = ref_counts.sum()
    if total <= 0:
        return np.zeros(ref_counts.size, dtype=np.intp)
    before = np.cumsum(ref_counts) - ref_counts  # reference mass strictly before each bucket
    groups = np.floor(n_groups * before / total).astype(np.intp)
    result: npt.NDArray[Any] = np.minimum(groups, n_groups - 1)
    return result


def coarsen(counts: npt.NDArray[Any], groups: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sum bucket counts (…, K) into their groups (…, G); drops groups that got no bucket."""
    _, starts = np.unique(groups, return_index=True)
    return np.add.reduceat(np.asarray(counts, dtype=np.float64), starts, axis=-1)


def compared_counts(
    ref: ColumnProfile, cur: ColumnProfile
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The two count vectors a binned distance compares (coarse groups for numeric).

    Buckets empty on both sides are dropped, as Evidently only keys values that occur (this
    matters for KL, whose inputs are renormalised after the zero fill).
    """
    if ref.kind == "numeric":
        g = coarse_groups(ref.counts)
        r, c = coarsen(ref.counts, g), coarsen(cur.counts, g)
    else:
        r, c = ref.counts.astype(np.float64), cur.counts.astype(np.float64)
    keep = (r + c) > 0
    return r[keep], c[keep]


def null_counts(
    ref: ColumnProfile, r: npt.NDArray[Any], c: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Resampled counts (B, K) in the same buckets :func:`compared_counts` uses.

    Buckets the reference never filled are empty in every null draw and are dropped; a bucket
    that a draw happens to leave empty on both sides stays (its zero-filled terms cancel).
    """
    base = ref.counts.astype(np.float64)
    if ref.kind == "numeric":
        g = coarse_groups(ref.counts)
        base, r, c = coarsen(base, g), coarsen(r, g), coarsen(c, g)
    keep = base > 0
    return r[:, keep], c[:, keep]


def shares(counts: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Rows normalised to sum 1 (rows summing to 0 stay 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / total, 0.0)


def fill_zeros(p: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Evidently's zero fill, per row."""
    positive = np.where(p > 0, p, np.inf)
    smallest = positive.min(axis=-1, keepdims=True)
    eps = np.where(smallest <= 1e-4, smallest / 1e6, 1e-4)
    return np.where(p > 0, p, eps)


def psi(p: npt.NDArray[Any], q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Population stability index Σ (p - q) ln(p / q), with zero fill."""
    p, q = fill_zeros(p), fill_zeros(q)
    result: npt.NDArray[Any] = np.sum((p - q) * np.log(p / q), axis=-1)
    return result


def kl_div(p: npt.NDArray[Any], q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Kullback-Leibler divergence KL(p ‖ q) (natural log), with zero fill, as Evidently."""
    p, q = fill_zeros(p), fill_zeros(q)
    p = p / p.sum(axis=-1, keepdims=True)  # scipy.stats.entropy normalises its inputs
    q = q / q.sum(axis=-1, keepdims=True)
    result: npt.NDArray[Any] = np.sum(p * np.log(p / q), axis=-1)
    return result


def jensen_shannon(p: npt.NDArray[Any], q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Jensen-Shannon *distance* (square root of the divergence, natural log), as scipy."""
    m = (p + q) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        tp = np.where(p > 0, p * np.log(p / m), 0.0)
        tq = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (tp.sum(axis=-1) + tq.sum(axis=-1)) / 2.0
    result: npt.NDArray[Any] = np.sqrt(np.maximum(js, 0.0))
    return result


def hellinger(p: npt.NDArray[Any], q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Hellinger distance sqrt(1 - Σ sqrt(p q)), in [0, 1], as Evidently's categorical one."""
    bc = np.clip(np.sum(np.sqrt(p * q), axis=-1), 0.0, 1.0)
    result: npt.NDArray[Any] = np.sqrt(1.0 - bc)
    return result


def tvd(p: npt.NDArray[Any], q: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Total variation distance ½ Σ |p - q|."""
    result: npt.NDArray[Any] = 0.5 * np.sum(np.abs(p - q), axis=-1)
    return result
