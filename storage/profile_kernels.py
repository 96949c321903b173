"""Compiled (numba) loops that count one numeric column of a streamed batch into per-group
histograms and moments.

Why compiled: the profile build is CPU-bound. With numpy, counting a column's histogram took
about ten passes over the batch (grid cell, clip, table lookup, hard-cell fix, group offset,
``bincount``; 12 ns a value), and the moments (count, min, max, sum, sum of squares) were a
second scan in DuckDB. These loops do both in two passes and release the GIL.

A value's bucket is found by the bucketing every profile shares,
:func:`detectors.profile_kernels.buckets` (pass 1: buckets into a scratch array); this
module adds the per-group counts and moments (pass 2). Why two passes and not one: a single
loop that looks the bucket up in the grid table and then increments ``counts[group, bucket]``
ran 2.4x slower (the table loads wait on the preceding stores to ``counts``, which the CPU
cannot prove do not alias them).

Numba compiles each function on first use (cached on disk with ``cache=True``); this module is
imported lazily by :mod:`storage.profile_kernel`, so processes that never profile do not pay for
it.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from detectors.bucket_grid import BucketGrid
from detectors.profile_kernels import buckets

__all__ = ["count_buckets", "count_column", "grown_moments", "new_moments", "warm_up"]

# columns of the integer moments array
COUNT, FINITE, MISSING = 0, 1, 2
# columns of the float moments array
SUM, SUM_SQ, MIN, MAX = 0, 1, 2, 3


def new_moments(groups: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Empty moment accumulators for ``groups`` groups: int64 (count, n_finite, missing) and
    float64 (sum, sum_sq, min, max) with min = +inf and max = -inf (no finite value yet)."""
    ints = np.zeros((groups, 3), np.int64)
    floats = np.zeros((groups, 4), np.float64)
    floats[:, MIN] = np.inf
    floats[:, MAX] = -np.inf
    return ints, floats


def grown_moments(
    ints: npt.NDArray[Any], floats: npt.NDArray[Any], groups: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The accumulators with room for ``groups`` groups, the new ones empty."""
    new_ints, new_floats = new_moments(groups)
    new_ints[: ints.shape[0]] = ints
    new_floats[: floats.shape[0]] = floats
    return new_ints, new_floats


@numba.njit(nogil=True, cache=True, boundscheck=False)  # type: ignore[untyped-decorator]  # numba is untyped
def _moment(v: float, g: int, ints: npt.NDArray[Any], floats: npt.NDArray[Any]) -> None:
    if v != v:  # NaN: a missing value (nulls arrive as NaN)
        ints[g, MISSING] += 1
        return
    ints[g, COUNT] += 1
    if abs(v) < np.inf:
        ints[g, FINITE] += 1
        floats[g, SUM] += v
        floats[g, SUM_SQ] += v * v
        floats[g, MIN] = min(floats[g, MIN], v)
        floats[g, MAX] = max(floats[g, MAX], v)


@numba.njit(nogil=True, cache=True, boundscheck=False)  # type: ignore[untyped-decorator]  # numba is untyped
def count_buckets(
    buckets: npt.NDArray[Any],
    x: npt.NDArray[Any],
    gid: npt.NDArray[Any],
    counts: npt.NDArray[Any],
    ints: npt.NDArray[Any],
    floats: npt.NDArray[Any],
    with_moments: bool,
) -> None:
    """Pass 2: add each value's bucket (``MISSING_BUCKET``: none) to ``counts[group]`` and,
    when ``with_moments``, the value to its group's moments."""
    for i in range(x.size):
        g = gid[i]
        if with_moments:
            _moment(x[i], g, ints, floats)
        b = buckets[i]
        if b >= 0:  # not MISSING_BUCKET
            counts[g, b] += 1


def count_column(
    x: npt.NDArray[Any],
    gid: npt.NDArray[Any],
    grid: BucketGrid,
    counts: npt.NDArray[Any],
    ints: npt.NDArray[Any],
    floats: npt.NDArray[Any],
    with_moments: bool,
    scratch: npt.NDArray[Any],
) -> None:
    """Add the values ``x`` (float64) of groups ``gid`` to ``counts[group, bucket]`` and, when
    ``with_moments``, to the moment accumulators (see :func:`new_moments`).

    The bucket of a value is ``searchsorted(grid.edges, x, side="left")`` (right-closed bins),
    found by :func:`detectors.profile_kernels.buckets` into ``scratch`` (int32, at
    least ``x.size`` long). NaN counts as missing and in no bucket; +-inf land in the end
    buckets.
    """
    buckets(grid, x, scratch)
    count_buckets(scratch, x, gid, counts, ints, floats, with_moments)


def warm_up() -> None:
    """Compile or load from the cache the variants the profile build calls (values read-only,
    as Arrow hands them over)."""
    x = np.zeros(1)
    x.setflags(write=False)
    ints, floats = new_moments(1)
    grid = BucketGrid(np.zeros(1))
    count_column(
        x, np.zeros(1, np.intp), grid, np.zeros((1, 2), np.int64), ints, floats, True,
        np.zeros(1, np.int32),
    )  # fmt: skip
