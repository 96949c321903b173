"""The one numeric bucketing of Driftwatch: a value's bucket on fixed edges is
``searchsorted(edges, v, side="left")`` (right-closed bins, see :mod:`detectors.profiles`),
found for most values by one table lookup in a uniform grid.

Two places count buckets and must agree exactly: profiles computed in memory
(:func:`detectors.profiles.profile_numeric`) and the hourly profiles every profile engine
stores (``storage.profile_kernel.NumericCounter``). Both find buckets through
:func:`detectors.profile_kernels.buckets` (a compiled loop over this grid), so they agree by
construction; ``tests/storage/test_engine_contract.py`` checks it. ``storage/``
may import this module and :mod:`detectors.profile_kernels`, nothing else of ``detectors/``
(``tests/test_architecture.py``).

This module is numpy only (the grid's layout); the loop that reads it is compiled with numba in
:mod:`detectors.profile_kernels`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["GRID_CELLS", "MISSING_BUCKET", "BucketGrid"]

# Cells of the uniform grid used to bin numeric values without a binary search per value.
GRID_CELLS = 1 << 14
# The bucket ``profile_kernels.buckets`` gives a NaN (a missing value: in no bucket).
MISSING_BUCKET = -1


class BucketGrid:
    """Bucket numeric values through a uniform grid instead of a binary search per value.

    The grid spans the inner edges ``[e_1, e_{k-1}]`` (values outside are clipped into the first
    or last cell). For each cell we know the bucket of its left neighbourhood and how many edges
    lie within one cell of slack each side (the slack absorbs rounding of the cell index). A value
    starts at its cell's bucket and moves up one bucket per edge it exceeds, for at most
    ``steps`` edges; values in cells holding more edges than that go through a binary search.
    The result is identical to ``searchsorted(edges, x, side="left")``, also for integer columns
    whose values sit exactly on the edges, and for +-inf. Fewer than 8 edges (or a span too
    narrow for the float resolution) give no grid (``enabled`` false): every value is searched.
    """

    max_steps = 2  # the compiled loop (profile_kernels.bucket_index) unrolls at most 2
    enabled: bool
    edges: npt.NDArray[np.float64]  # read-only, contiguous
    log: bool
    steps: int
    lo: float
    scale: float
    bucket: npt.NDArray[np.int64]
    hard: npt.NDArray[np.bool_]
    table: npt.NDArray[np.int32]  # bucket, or -1 where hard (what the compiled loop reads)
    any_hard: bool
    hard_edges: int
    padded: npt.NDArray[np.float64]  # the edges and +inf (never exceeded)

    def __init__(self, edges: npt.NDArray[Any]) -> None:
        e = np.array(edges, dtype=np.float64)  # a copy: read-only below
        e.setflags(write=False)
        self.edges = e
        # one set of argument types whether or not there is a grid: one compiled variant
        self.enabled, self.log, self.steps, self.lo, self.scale = False, False, 0, 0.0, 1.0
        self.table = np.zeros(1, np.int32)
        self.padded = np.append(e, np.inf)  # padded[m] = +inf: never exceeded
        m = e.size
        if m < 8:
            return
        lo, hi = float(e[1]), float(e[-2])
        candidates = [self._layout(e, lo, hi, log=False)]
        if lo >= np.finfo(float).tiny:
            # skewed positive columns (amounts, latencies) crowd their edges at the low end of
            # a linear grid; a grid uniform in log(x) spreads them out. Not below the smallest
            # normal float: the compiled loop takes log(max(v, tiny)), so with a subnormal
            # lowest inner edge every v <= 0 would land above it (found by hypothesis)
            candidates.append(self._layout(e, np.log(lo), np.log(hi), log=True))
        usable = [c for c in candidates if c is not None]
        if not usable:
            return
        # edges are reference quantiles: the share of edges in "hard" cells estimates the share
        # of values that would need a binary search
        best = min(usable, key=lambda c: c["hard_edges"])
        self.__dict__.update(best)
        self.enabled = True

    def _layout(
        self, edges: npt.NDArray[Any], lo: float, hi: float, *, log: bool
    ) -> dict[str, Any] | None:
        m = edges.size
        width = (hi - lo) / GRID_CELLS
        # The cell bounds below are computed in floating point; they are only trustworthy when a
        # cell is much wider than the rounding error of the values' magnitude.
        if not (width > 0 and np.isfinite(width)) or width < 1e3 * np.finfo(float).eps * max(
            abs(lo), abs(hi)
        ):
            return None
        cells = np.arange(GRID_CELLS, dtype=np.float64)
        lower, upper = lo + (cells - 1) * width, lo + (cells + 2) * width
        if log:
            lower, upper = np.exp(lower), np.exp(upper)
        left = np.searchsorted(edges, lower, side="left")
        right = np.searchsorted(edges, upper, side="right")
        left[0] = 0  # the first cell also holds everything below lo
        right[-1] = m  # the last cell also holds everything above hi
        n_edges = right - left
        steps = int(min(n_edges.max(), self.max_steps))
        hard = n_edges > steps
        t = np.log(np.maximum(edges, np.finfo(float).tiny)) if log else edges
        edge_cells = np.clip((t - lo) * (GRID_CELLS / (hi - lo)), 0, GRID_CELLS - 1)
        return {
            "log": log,
            "steps": steps,
            "lo": lo,
            "scale": GRID_CELLS / (hi - lo),
            "bucket": left.astype(np.int64),
            "hard": hard,
            "table": np.where(hard, -1, left).astype(np.int32),
            "any_hard": bool(hard.any()),
            "hard_edges": int(hard[edge_cells.astype(np.intp)].sum()),
        }
