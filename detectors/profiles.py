"""Mergeable column profiles on fixed reference bins.

A *profile* is the summary of one column over some rows: how many values, how many missing, the
range, the first two power sums and a histogram on bins fixed by the reference. Histograms on the
same bins add, so an hour, a day or a month is the sum of smaller profiles and raw rows are
scanned once. The storage layer computes the same numbers for every hour; both must agree
exactly (``tests/detectors/test_profiles.py`` checks this against DuckDB,
``tests/storage/test_engine_contract.py`` against every profile engine).

Where the pieces live: the bins in :mod:`detectors.reference_bins`, the profile value
(:class:`ColumnProfile`: merging, JSON) in :mod:`detectors.column_profile`, the value
conversions in :mod:`detectors.column_values`, a value's bucket in
:mod:`detectors.bucket_grid` and :mod:`detectors.profile_kernels`; this module builds profiles
from values or stored summaries and re-exports the names callers import from it.

Numeric profiles
----------------
The bins are right-closed (see :mod:`detectors.reference_bins`): a value ``x`` lands in
``np.searchsorted(edges, x, side="left")`` and there are ``len(edges) + 1`` counts.

Which values go where in a numeric profile:

========================  =========  ==========  ==================  ==============
value                     ``count``  ``missing``  histogram bucket    min/max/sums
========================  =========  ==========  ==================  ==============
finite                    yes        no           by searchsorted     yes
``+inf`` / ``-inf``       yes        no           last / first        no (kept out so
                                                                      sums stay finite)
``NaN`` / ``None``        no         yes          none                no
========================  =========  ==========  ==================  ==============

The same numbers in SQL (DuckDB; what ``tests/detectors/test_profiles.py`` checks)::

    SELECT histogram(x, [e_0, ..., e_k]) FILTER (WHERE NOT isnan(x)),   -- counts
           count(x) FILTER (WHERE NOT isnan(x)),                        -- count
           count(x) FILTER (WHERE isfinite(x)),                         -- n_finite
           count(*) - count(x) FILTER (WHERE NOT isnan(x)),             -- missing
           min(x) FILTER (WHERE isfinite(x)), max(x) FILTER (WHERE isfinite(x)),
           sum(x) FILTER (WHERE isfinite(x)), sum(x * x) FILTER (WHERE isfinite(x))
    FROM t

Categorical profiles
--------------------
Bucket ``i`` counts category ``categories[i]`` of the vocabulary and one last bucket counts
everything else ("other"); categories are compared as strings. A categorical profile also keeps
the counts of the most frequent values that fell into "other" (at most ``max_unseen``), so new
categories can be named; the total of "other" is exact, the names and counts of the top unseen
values are exact for a single profile and a lower bound after merges (a value can be cut from
one part's top list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.column_profile import DEFAULT_MAX_UNSEEN, ColumnProfile
from detectors.column_values import (
    FiniteSplit,
    as_float_array,
    count_labels,
    finite_split,
    top_by_count,
)
from detectors.errors import InvalidParameterError
from detectors.reference_bins import (
    DEFAULT_CAP,
    DEFAULT_N_BINS,
    ColumnKind,
    ReferenceBins,
    quantile_edges,
)

__all__ = [
    "DEFAULT_CAP",
    "DEFAULT_MAX_UNSEEN",
    "DEFAULT_N_BINS",
    "ColumnKind",
    "ColumnProfile",
    "ReferenceBins",
    "as_float_array",
    "profile_categorical",
    "profile_categorical_from_counts",
    "profile_from_summary",
    "profile_numeric",
    "profile_reference",
]

# Above this many finite values a numeric column is bucketed through the grid (its table
# lookups beat a binary search per value once the grid's layout, a few ms, is paid).
_GRID_MIN_VALUES = 4 * (1 << 14)


def _numeric_profile(split: FiniteSplit, bins: ReferenceBins) -> ColumnProfile:
    """The profile of a split column on numeric ``bins`` (see :func:`profile_numeric`)."""
    from detectors import profile_kernels

    x = split.finite
    counts = np.zeros(bins.n_buckets, dtype=np.int64)
    counts[0] += split.neg_inf  # -inf lands in (-inf, e_0], +inf in (e_k, +inf)
    counts[-1] += split.pos_inf
    if x.size:
        scratch = np.empty(x.size, dtype=np.int32)
        profile_kernels.bucket_counts(
            x, bins.grid, counts, scratch, use_grid=x.size > _GRID_MIN_VALUES
        )
    return ColumnProfile(
        bins=bins,
        count=int(x.size + split.neg_inf + split.pos_inf),
        missing=split.missing,
        min=split.lo,
        max=split.hi,
        sum=float(np.sum(x)),
        sum_sq=float(np.dot(x, x)),
        counts=counts,
        n_finite=int(x.size),
    )


def profile_numeric(values: Any, bins: ReferenceBins) -> ColumnProfile:
    """Profile a numeric column on numeric ``bins``.

    Parameters
    ----------
    values
        Array-like of numbers (numpy, pandas incl. nullable dtypes, pyarrow, sequences);
        None / NaN / pd.NA are missing.
    bins
        Numeric reference bins.

    Returns
    -------
    ColumnProfile
        Counts on the right-closed buckets, ``count``/``missing``, and min/max/sum/sum_sq over
        the finite values (see the module docstring for ±inf).

    Examples
    --------
    >>> bins = ReferenceBins("numeric", (0.0, 1.0))
    >>> p = profile_numeric([-1.0, 0.0, 0.5, 1.0, 7.0, float("nan")], bins)
    >>> p.counts.tolist(), p.count, p.missing
    ([2, 2, 1], 5, 1)
    """
    if bins.kind != "numeric":
        raise InvalidParameterError("bins.kind", bins.kind, "'numeric' for profile_numeric")
    return _numeric_profile(finite_split(as_float_array(values)), bins)


def profile_categorical(
    values: Any, bins: ReferenceBins, max_unseen: int = DEFAULT_MAX_UNSEEN
) -> ColumnProfile:
    """Profile a categorical column on categorical ``bins``.

    Parameters
    ----------
    values
        Strings (numpy object array, pandas Series, pyarrow array, list); None / NaN are
        missing; other values are compared as ``str``.
    bins
        Categorical reference bins (the vocabulary).
    max_unseen
        How many of the most frequent out-of-vocabulary values to keep by name (>= 0).

    Examples
    --------
    >>> bins = ReferenceBins("categorical", categories=("a", "b"))
    >>> p = profile_categorical(["a", "b", "b", "z", None], bins)
    >>> p.counts.tolist(), p.missing, p.unseen
    ([1, 2, 1], 1, (('z', 1),))
    """
    if bins.kind != "categorical":
        raise InvalidParameterError("bins.kind", bins.kind, "'categorical' for profile_categorical")
    if max_unseen < 0:
        raise InvalidParameterError("max_unseen", max_unseen, "an integer >= 0")
    labels, per_label, n_missing = count_labels(values)
    return _categorical_from_counts(labels, per_label, n_missing, bins, max_unseen)


def _categorical_from_counts(
    labels: list[str],
    per_label: npt.NDArray[Any],
    n_missing: int,
    bins: ReferenceBins,
    max_unseen: int,
) -> ColumnProfile:
    index = bins.category_index
    other = len(bins.categories)
    to_bucket = np.fromiter((index.get(lab, other) for lab in labels), np.int64, len(labels))
    counts = np.bincount(to_bucket, weights=per_label, minlength=bins.n_buckets)
    counts = np.rint(counts).astype(np.int64)
    outside = np.flatnonzero((to_bucket == other) & (per_label > 0))
    unseen: tuple[tuple[str, int], ...] = ()
    if outside.size and max_unseen:
        top = top_by_count(labels, per_label, outside, max_unseen)
        unseen = tuple((labels[i], int(per_label[i])) for i in top)
    return ColumnProfile(
        bins=bins,
        count=int(per_label.sum()),
        missing=n_missing,
        min=None,
        max=None,
        sum=0.0,
        sum_sq=0.0,
        counts=counts,
        unseen=unseen,
        max_unseen=int(max_unseen),
    )


def profile_categorical_from_counts(
    value_counts: Mapping[str, int] | Iterable[tuple[str, int]],
    bins: ReferenceBins,
    missing: int = 0,
    max_unseen: int = DEFAULT_MAX_UNSEEN,
) -> ColumnProfile:
    """Categorical profile from ``value -> count`` pairs (e.g. a SQL ``GROUP BY``).

    Gives the same profile as :func:`profile_categorical` on the raw values.

    Examples
    --------
    >>> bins = ReferenceBins("categorical", categories=("a", "b"))
    >>> p = profile_categorical_from_counts({"a": 3, "z": 2}, bins, missing=1)
    >>> p.counts.tolist(), p.count, p.unseen
    ([3, 0, 2], 5, (('z', 2),))
    """
    if bins.kind != "categorical":
        raise InvalidParameterError("bins.kind", bins.kind, "'categorical'")
    pairs = value_counts.items() if isinstance(value_counts, Mapping) else value_counts
    merged: dict[str, int] = {}
    for value, n in pairs:
        merged[str(value)] = merged.get(str(value), 0) + int(n)
    labels = list(merged)
    per_label = np.fromiter(merged.values(), dtype=np.int64, count=len(labels))
    return _categorical_from_counts(labels, per_label, int(missing), bins, max_unseen)


def profile_from_summary(
    bins: ReferenceBins,
    *,
    count: int = 0,
    missing: int = 0,
    n_finite: int | None = None,
    min: float | None = None,
    max: float | None = None,
    sum: float = 0.0,
    sum_sq: float = 0.0,
    counts: npt.NDArray[Any] | None = None,
    categories: Mapping[str, int] | None = None,
) -> ColumnProfile:
    """A :class:`ColumnProfile` on ``bins`` from a stored summary's plain fields.

    The summary is what a profile store keeps per column and hour (and sums over a window):
    the counts and power sums, a numeric histogram already counted on ``bins``' edges
    (``counts``; none: all zero), or categorical ``value -> count`` pairs (``categories``),
    which are mapped onto the vocabulary here: a value outside it counts in the "other"
    bucket and is listed in ``unseen`` (the 20 most frequent, most frequent first, ties by
    value). No summary at all (``count=0``) gives the empty profile.

    Examples
    --------
    >>> bins = ReferenceBins("categorical", categories=("a", "b"))
    >>> p = profile_from_summary(bins, count=5, missing=1, categories={"a": 3, "z": 2})
    >>> p.counts.tolist(), p.count, p.unseen
    ([3, 0, 2], 5, (('z', 2),))
    """
    if bins.kind == "numeric":
        if counts is None:
            counts = np.zeros(bins.n_buckets, np.int64)
        return ColumnProfile(bins, count, missing, min, max, sum, sum_sq, counts, n_finite=n_finite)
    index = bins.category_index
    hist = np.zeros(bins.n_buckets, np.int64)
    unseen = []
    for value, n in (categories or {}).items():
        i = index.get(value)
        if i is None:
            hist[-1] += n
            unseen.append((value, int(n)))
        else:
            hist[i] += n
    unseen.sort(key=lambda t: (-t[1], t[0]))
    return ColumnProfile(
        bins, count, missing, None, None, 0.0, 0.0, hist, unseen=tuple(unseen[:DEFAULT_MAX_UNSEEN])
    )


def profile_reference(
    values: Any,
    kind: ColumnKind,
    *,
    n_bins: int = DEFAULT_N_BINS,
    cap: int = DEFAULT_CAP,
    max_unseen: int = DEFAULT_MAX_UNSEEN,
) -> ColumnProfile:
    """Bins from a reference column and its profile on them, in one pass over the values.

    Same result as ``ReferenceBins.numeric/categorical`` followed by
    ``profile_numeric/profile_categorical``, but a string column is hashed once instead of twice.
    The bins are ``result.bins``.

    Examples
    --------
    >>> p = profile_reference(["b", "a", "b", None], "categorical")
    >>> p.bins.categories, p.counts.tolist(), p.missing
    (('b', 'a'), [2, 1, 0], 1)
    """
    if kind == "numeric":
        if not isinstance(n_bins, int | np.integer) or n_bins < 1:
            raise InvalidParameterError("n_bins", n_bins, "an integer >= 1")
        # one pass splits off the finite values for both the edges and the profile
        split = finite_split(as_float_array(values))
        bins = ReferenceBins("numeric", quantile_edges(split, int(n_bins)))
        return _numeric_profile(split, bins)
    if kind != "categorical":
        raise InvalidParameterError("kind", kind, "'numeric' or 'categorical'")
    if not isinstance(cap, int | np.integer) or cap < 1:
        raise InvalidParameterError("cap", cap, "an integer >= 1")
    labels, per_label, n_missing = count_labels(values)
    bins = ReferenceBins.from_counts(labels, per_label, int(cap))
    return _categorical_from_counts(labels, per_label, n_missing, bins, max_unseen)
