"""Distance methods: binned distances, Wasserstein (normed) and energy distance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy  # scipy.stats loads on first use (about 1 s of the server's start-up)

from detectors.drift import binned
from detectors.drift.registry import Score, register
from detectors.profiles import ColumnProfile

# Evidently's floor for the reference standard deviation that norms the Wasserstein distance.
_MIN_NORM = 0.001


def _binned_method(
    name: str,
    display_name: str,
    fn: Callable[[npt.NDArray[Any], npt.NDArray[Any]], npt.NDArray[Any]],
    description: str,
    default_threshold: float = 0.1,
    symmetric: bool = False,
    null_exponent: float = 0.5,
) -> None:
    def null(ref: ColumnProfile, r: npt.NDArray[Any], c: npt.NDArray[Any]) -> npt.NDArray[Any]:
        r, c = binned.null_counts(ref, r, c)
        return fn(binned.shares(r), binned.shares(c))

    @register(
        name,
        display_name=display_name,
        kinds=("numeric", "categorical"),
        score="distance",
        default_threshold=default_threshold,
        description=description,
        calibrated=True,
        symmetric=symmetric,
        null_from_counts=null,
        null_exponent=null_exponent,
    )
    def on_profiles(ref: ColumnProfile, cur: ColumnProfile) -> Score:
        r, c = binned.compared_counts(ref, cur)
        value = float(fn(binned.shares(r), binned.shares(c)))
        return Score(value, None, {"n_bins_compared": int(r.size)})


_binned_method(
    "psi",
    "PSI",
    binned.psi,
    "Population stability index on reference-quantile (numeric) or category bins.",
    symmetric=True,
    null_exponent=1.0,
)
_binned_method(
    "jensen_shannon",
    "Jensen-Shannon distance",
    binned.jensen_shannon,
    "Jensen-Shannon distance (natural log, as scipy/Evidently) between binned distributions.",
    symmetric=True,
)
_binned_method(
    "hellinger",
    "Hellinger distance",
    binned.hellinger,
    "Hellinger distance sqrt(1 - Σ sqrt(p q)) between binned distributions.",
    symmetric=True,
)
_binned_method(
    "kl_div",
    "Kullback-Leibler divergence",
    binned.kl_div,
    "KL(reference ‖ current) between binned distributions, zero-filled as Evidently.",
    null_exponent=1.0,
)
_binned_method(
    "tvd",
    "Total variation distance",
    binned.tvd,
    "Total variation distance ½ Σ|p - q| between binned distributions.",
    symmetric=True,
)


# ---------------------------------------------------------------- Wasserstein ----------------
def _w1_pieces(a: npt.NDArray[Any], b: npt.NDArray[Any], h: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """∫|d| over intervals where d goes linearly from a to b over width h (vectorised)."""
    same_sign = a * b >= 0
    abs_sum = np.abs(a) + np.abs(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = np.where(abs_sum > 0, (a * a + b * b) / (2.0 * abs_sum), 0.0)
    result: npt.NDArray[Any] = h * np.where(same_sign, abs_sum / 2.0, crossing)
    return result


def _norm(ref: ColumnProfile) -> float | None:
    std = ref.std
    return None if std is None else max(std, _MIN_NORM)


def _cdf_knots(
    p: ColumnProfile, edges: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], float]:
    """Knots of a profile's piecewise-linear CDF (uniform mass inside each bucket).

    The first bucket spreads over [min, e_0], the last over (e_k, max]; returns
    ``(xs, ys, point_mass_at_e0)``.
    """
    n = float(p.counts.sum())
    cdf = np.cumsum(p.counts[:-1]) / n  # F(e_0) .. F(e_k)
    lo = p.min if p.min is not None else edges[0]
    hi = p.max if p.max is not None else edges[-1]
    xs, ys = [edges], [cdf]
    point = 0.0
    if lo < edges[0]:
        xs.insert(0, np.array([lo]))
        ys.insert(0, np.array([0.0]))
    else:
        point = float(p.counts[0]) / n
    if hi > edges[-1]:
        xs.append(np.array([hi]))
        ys.append(np.array([1.0]))
    return np.concatenate(xs), np.concatenate(ys), point


def wasserstein_profiles_raw(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """W1 between two numeric profiles, each uniform inside its buckets (not normed)."""
    edges = ref.bins.edges_array
    if edges.size == 0:
        m_r, m_c = ref.mean, cur.mean
        return abs(m_r - m_c) if m_r is not None and m_c is not None else float("nan")
    xr, yr, pr = _cdf_knots(ref, edges)
    xc, yc, pc = _cdf_knots(cur, edges)
    grid = np.unique(np.concatenate([xr, xc]))
    fr = np.interp(grid, xr, yr, left=0.0, right=1.0)
    fc = np.interp(grid, xc, yc, left=0.0, right=1.0)
    d_right = fr - fc
    d_left = d_right.copy()
    at_e0 = grid == edges[0]
    # a point mass at e_0 (min == e_0) means the CDF jumps there: its left limit lacks it
    d_left[at_e0] -= pr - pc
    return float(np.sum(_w1_pieces(d_right[:-1], d_left[1:], np.diff(grid))))


def _wasserstein_null(
    ref: ColumnProfile, r: npt.NDArray[Any], c: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    edges = ref.bins.edges_array
    norm = _norm(ref) or _MIN_NORM
    if edges.size < 2:
        return np.zeros(r.shape[0])
    fr = np.cumsum(r[:, :-1], axis=1) / r.sum(axis=1, keepdims=True)
    fc = np.cumsum(c[:, :-1], axis=1) / c.sum(axis=1, keepdims=True)
    d = fr - fc  # at e_0 .. e_k; null draws stay inside [e_0, e_k]
    result: npt.NDArray[Any] = (
        np.sum(_w1_pieces(d[:, :-1], d[:, 1:], np.diff(edges)), axis=1) / norm
    )
    return result


_W_DESC = (
    "Wasserstein-1 distance divided by the reference standard deviation (floored at 0.001), "
    "as Evidently; exact on samples, bucket-uniform approximation on profiles."
)


@register(
    "wasserstein",
    display_name="Wasserstein distance (normed)",
    kinds=("numeric",),
    score="distance",
    default_threshold=0.1,
    description=_W_DESC,
    calibrated=True,
    null_from_counts=_wasserstein_null,
)
def wasserstein_profiles(ref: ColumnProfile, cur: ColumnProfile) -> Score:
    norm = _norm(ref)
    if norm is None or cur.n_finite == 0:
        return Score(float("nan"))
    return Score(
        wasserstein_profiles_raw(ref, cur) / norm,
        None,
        {"norm": norm, "error_bound": wasserstein_error_bound(ref, cur) / norm},
    )


def wasserstein_error_bound(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Bound on |W1(profiles) - W1(samples)| (not normed): Σ_j width_j (p_j + q_j).

    Inside bucket j both true CDFs stay within the bucket's share of their linear stand-ins, so
    the integrand is off by at most p_j + q_j over the bucket's width; the open buckets use the
    profiles' min and max as their outer ends.
    """
    edges = ref.bins.edges_array
    if edges.size == 0:
        return float("nan")
    lo = min(v for v in (ref.min, cur.min, edges[0]) if v is not None)
    hi = max(v for v in (ref.max, cur.max, edges[-1]) if v is not None)
    widths = np.diff(np.concatenate([[lo], edges, [hi]]))
    p = ref.counts / ref.counts.sum()
    q = cur.counts / cur.counts.sum()
    return float(np.sum(widths * (p + q)))


@register(
    "wasserstein",
    display_name="Wasserstein distance (normed)",
    kinds=("numeric",),
    score="distance",
    default_threshold=0.1,
    description=_W_DESC,
    calibrated=True,
    samples=True,
)
def wasserstein_samples(ref: npt.NDArray[Any], cur: npt.NDArray[Any]) -> Score:
    norm = max(float(np.std(ref)), _MIN_NORM)
    return Score(float(scipy.stats.wasserstein_distance(ref, cur)) / norm, None, {"norm": norm})


@register(
    "energy_distance",
    display_name="Energy distance",
    kinds=("numeric",),
    score="distance",
    default_threshold=0.1,
    description="Energy distance (scipy.stats.energy_distance) on samples.",
    calibrated=True,
    symmetric=True,
    samples=True,
)
def energy_distance_samples(ref: npt.NDArray[Any], cur: npt.NDArray[Any]) -> Score:
    return Score(float(scipy.stats.energy_distance(ref, cur)))
