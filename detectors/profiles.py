"""Mergeable column profiles on fixed reference bins.

A *profile* is the summary of one column over some rows: how many values, how many missing, the
range, the first two power sums and a histogram on bins fixed by the reference. Histograms on the
same bins add, so an hour, a day or a month is the sum of smaller profiles and raw rows are
scanned once. The storage layer computes the same numbers in one SQL scan; both must agree
exactly (``tests/detectors/test_profiles.py`` checks this against DuckDB).

Numeric bins
------------
``ReferenceBins.numeric`` takes strictly increasing, finite edges ``e_0 < e_1 < ... < e_k`` from
the reference quantiles (``e_0`` is the reference minimum, ``e_k`` its maximum). The bins are
*right-closed*, matching DuckDB's ``histogram(x, [e_0, ..., e_k])``::

    bucket 0      (-inf, e_0]
    bucket i      (e_{i-1}, e_i]        for i = 1..k
    bucket k + 1  (e_k, +inf)           (DuckDB's overflow key: +inf for DOUBLE, max int for BIGINT)

so a value ``x`` lands in ``np.searchsorted(edges, x, side="left")`` and there are
``len(edges) + 1`` counts. A column without any finite reference value has no edges and a single
bucket.

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

Categorical bins
----------------
``ReferenceBins.categorical`` keeps the reference's most frequent categories (ties broken by
name, at most ``cap``, default 1,000) as the vocabulary; bucket ``i`` counts category
``categories[i]`` and one last bucket counts everything else ("other"). Categories are compared
as strings. A categorical profile also keeps the counts of the most frequent values that fell into
"other" (at most ``max_unseen``), so new categories can be named; the total of "other" is exact,
the names and counts of the top unseen values are exact for a single profile and a lower bound
after merges (a value can be cut from one part's top list).
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from detectors.bucket_grid import BucketGrid
from detectors.errors import InvalidParameterError

__all__ = [
    "ColumnKind",
    "ColumnProfile",
    "ReferenceBins",
    "profile_categorical",
    "profile_categorical_from_counts",
    "profile_from_summary",
    "profile_numeric",
    "profile_reference",
]

ColumnKind = Literal["numeric", "categorical"]

DEFAULT_N_BINS = 100
DEFAULT_CAP = 1000
DEFAULT_MAX_UNSEEN = 20
# Quantile edges of more rows than this are taken from a seeded subsample: the bins only need to
# be close to quantiles (the counts on them are exact), and a full partition of 1M rows costs
# ~50 ms per column where sorting a 100k subsample costs ~6 ms.
_QUANTILE_SAMPLE = 100_000
# Above this many finite values a numeric column is bucketed through the grid (its table
# lookups beat a binary search per value once the grid's layout, a few ms, is paid).
_GRID_MIN_VALUES = 4 * (1 << 14)


def as_float_array(values: Any) -> npt.NDArray[Any]:
    """Return ``values`` as a 1-d float64 array; ``None`` / ``pd.NA`` become NaN."""
    import pandas as pd  # here, not at import: ~0.7 s a server's start-up need not pay

    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        return np.asarray(values.to_numpy(dtype="float64", na_value=np.nan)).ravel()
    if hasattr(values, "to_numpy") and hasattr(values, "null_count"):  # pyarrow arrays
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64).ravel()
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = pd.to_numeric(pd.Series(arr.ravel(), dtype=object), errors="raise").to_numpy(
            dtype="float64", na_value=np.nan
        )
    return np.asarray(arr, dtype=np.float64).ravel()


def _factorize_strings(values: Any) -> tuple[npt.NDArray[Any], list[str], int]:
    """Codes (``-1`` for missing) and unique labels (as ``str``) of a string-like column.

    pyarrow arrays use ``dictionary_encode`` (no Python objects); everything else goes through
    ``pandas.factorize``, which hashes object arrays in C. Returns ``(codes, labels, missing)``.
    """
    if hasattr(values, "dictionary_encode"):  # pyarrow Array / ChunkedArray
        import pyarrow as pa

        arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        enc = arr.dictionary_encode()
        missing = int(arr.null_count)
        codes = enc.indices.to_numpy(zero_copy_only=False)
        if missing:
            codes = np.where(np.asarray(enc.indices.is_null()), -1, codes)
        labels = [str(v) for v in enc.dictionary.to_pylist()]
        return np.asarray(codes, dtype=np.int64), labels, missing
    import pandas as pd  # here, not at import: ~0.7 s a server's start-up need not pay

    if not isinstance(values, pd.Series | pd.Index | np.ndarray):
        values = np.asarray(list(values) if not isinstance(values, Sequence) else values, object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = [str(v) for v in np.asarray(uniques, dtype=object)]
    codes = np.asarray(codes, dtype=np.int64)
    missing = int(np.count_nonzero(codes < 0))
    # str() can map two distinct raw values (e.g. 1 and "1") onto one label; merge them.
    if len(set(labels)) != len(labels):
        uniq, inverse = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
        remap = np.append(inverse.astype(np.int64), -1)
        codes = remap[codes]  # -1 indexes the appended -1
        labels = [str(v) for v in uniq]
    return codes, labels, missing


class _FiniteSplit(NamedTuple):
    """A numeric column split by :func:`_split_finite`."""

    finite: npt.NDArray[np.float64]  # the finite values, in their order
    missing: int  # NaN (None / pd.NA)
    neg_inf: int
    pos_inf: int
    lo: float | None  # min and max of the finite values
    hi: float | None


def _split_finite(x: npt.NDArray[Any]) -> _FiniteSplit:
    """The finite values of a float64 column and counts of the others, in one compiled pass."""
    from detectors import profile_kernels  # numba: compiled (or loaded) when first profiling

    out = np.empty(x.size, dtype=np.float64)
    k, n_nan, n_neg, n_pos, lo, hi = profile_kernels.split_finite(x, out)
    if k == 0:
        return _FiniteSplit(out[:0], n_nan, n_neg, n_pos, None, None)
    return _FiniteSplit(out[:k], n_nan, n_neg, n_pos, float(lo), float(hi))


def _quantile_edges(split: _FiniteSplit, n_bins: int) -> tuple[float, ...]:
    """Inverted-CDF quantile edges of the finite values (see :meth:`ReferenceBins.numeric`)."""
    x = split.finite
    if x.size == 0:
        return ()
    if x.size > _QUANTILE_SAMPLE:
        rng = np.random.default_rng(x.size)
        x = x[rng.integers(0, x.size, _QUANTILE_SAMPLE)]
    probs = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.ceil(probs * x.size).astype(np.int64) - 1, 0, x.size - 1)
    # the order statistics at idx by one multi-pivot partition (a third faster than a full
    # sort, the same values); np.quantile would run one partition pass per quantile
    q = np.partition(x, np.unique(idx))[idx]
    q[0], q[-1] = split.lo, split.hi
    return tuple(float(e) for e in np.unique(q))


def _numeric_profile(split: _FiniteSplit, bins: ReferenceBins) -> ColumnProfile:
    """The profile of a split column on numeric ``bins`` (see :func:`profile_numeric`)."""
    from detectors import profile_kernels

    x = split.finite
    counts = np.zeros(bins.n_buckets, dtype=np.int64)
    counts[0] += split.neg_inf  # -inf lands in (-inf, e_0], +inf in (e_k, +inf)
    counts[-1] += split.pos_inf
    if x.size:
        scratch = np.empty(x.size, dtype=np.int32)
        profile_kernels.bucket_counts(
            x, bins._grid, counts, scratch, use_grid=x.size > _GRID_MIN_VALUES
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


@dataclass(frozen=True, eq=False)
class ReferenceBins:
    """Fixed bins of one column, taken from its reference data.

    Parameters
    ----------
    kind
        ``"numeric"`` (``edges`` set) or ``"categorical"`` (``categories`` set).
    edges
        Strictly increasing finite edges; buckets are right-closed (see the module docstring).
    categories
        The vocabulary, most frequent first; values outside it count in one "other" bucket.

    Examples
    --------
    >>> bins = ReferenceBins.numeric([1.0, 2.0, 2.0, 3.0, float("nan")], n_bins=4)
    >>> bins.edges
    (1.0, 2.0, 3.0)
    >>> bins.n_buckets
    4
    """

    kind: ColumnKind
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "numeric":
            e = np.asarray(self.edges, dtype=np.float64)
            if self.categories:
                raise InvalidParameterError("categories", self.categories, "empty for numeric")
            if e.size and (not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0)):
                raise InvalidParameterError(
                    "edges", self.edges, "strictly increasing finite numbers"
                )
        elif self.kind == "categorical":
            if self.edges:
                raise InvalidParameterError("edges", self.edges, "empty for categorical")
            if len(set(self.categories)) != len(self.categories):
                raise InvalidParameterError("categories", self.categories, "distinct strings")
        else:
            raise InvalidParameterError("kind", self.kind, "'numeric' or 'categorical'")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def numeric(cls, values: Any, n_bins: int = DEFAULT_N_BINS) -> ReferenceBins:
        """Quantile edges of the finite reference values.

        Parameters
        ----------
        values
            The reference column (array-like; NaN, None and ±inf are ignored for the edges).
        n_bins
            Number of quantile bins between the reference minimum and maximum (>= 1). Ties and
            constant columns give fewer, deduplicated edges.

        Returns
        -------
        ReferenceBins
            ``edges = unique(quantiles(values, linspace(0, 1, n_bins + 1)))`` with quantiles
            that are data values (``method="inverted_cdf"``), so integer columns get integer
            edges; above 100,000 finite values the inner quantiles come from a seeded
            subsample (the reference min and max stay exact).
        """
        if not isinstance(n_bins, int | np.integer) or n_bins < 1:
            raise InvalidParameterError("n_bins", n_bins, "an integer >= 1")
        split = _split_finite(as_float_array(values))
        return cls("numeric", _quantile_edges(split, int(n_bins)))

    @classmethod
    def categorical(cls, values: Any, cap: int = DEFAULT_CAP) -> ReferenceBins:
        """The reference's most frequent categories (at most ``cap``) as the vocabulary.

        Parameters
        ----------
        values
            The reference column: strings (any hashable values are compared as ``str``); None
            and NaN are missing and not categories.
        cap
            Maximum vocabulary size (>= 1); ties at the cut are broken by name.
        """
        if not isinstance(cap, int | np.integer) or cap < 1:
            raise InvalidParameterError("cap", cap, "an integer >= 1")
        codes, labels, missing = _factorize_strings(values)
        counts = np.bincount(codes[codes >= 0] if missing else codes, minlength=len(labels))
        return cls._vocabulary(labels, counts, int(cap))

    @classmethod
    def _vocabulary(cls, labels: list[str], counts: npt.NDArray[Any], cap: int) -> ReferenceBins:
        top = _top_by_count(labels, counts, np.arange(len(labels)), cap)
        return cls("categorical", categories=tuple(labels[i] for i in top))

    # -- derived ------------------------------------------------------------------------------
    @property
    def n_buckets(self) -> int:
        """Number of histogram counts: ``len(edges) + 1`` or ``len(categories) + 1``."""
        return (len(self.edges) if self.kind == "numeric" else len(self.categories)) + 1

    @cached_property
    def edges_array(self) -> npt.NDArray[Any]:
        """The edges as a read-only float64 array."""
        e = np.asarray(self.edges, dtype=np.float64)
        e.setflags(write=False)
        return e

    @cached_property
    def _grid(self) -> BucketGrid:
        return BucketGrid(self.edges_array)

    @cached_property
    def _category_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.categories)}

    @cached_property
    def key(self) -> str:
        """A stable content hash (hex) of the bins, usable as a cache or database key."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(blob.encode()).hexdigest()

    def bucket_of(self, values: Any) -> npt.NDArray[Any]:
        """Bucket index of each numeric value (NaN goes to the last bucket; filter it first)."""
        return np.searchsorted(self.edges_array, as_float_array(values), side="left")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReferenceBins):
            return NotImplemented
        return self is other or (
            self.kind == other.kind
            and self.edges == other.edges
            and self.categories == other.categories
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.edges, self.categories))

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (floats round-trip exactly through ``json``)."""
        if self.kind == "numeric":
            return {"kind": "numeric", "edges": list(self.edges)}
        return {"kind": "categorical", "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceBins:
        """Inverse of :meth:`to_dict`."""
        kind = data.get("kind")
        if kind == "numeric":
            return cls("numeric", tuple(float(e) for e in data["edges"]))
        if kind == "categorical":
            return cls("categorical", categories=tuple(str(c) for c in data["categories"]))
        raise InvalidParameterError("kind", kind, "'numeric' or 'categorical'")


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """Mergeable summary of one column on fixed :class:`ReferenceBins`.

    Attributes
    ----------
    bins
        The bins the histogram is counted on.
    count
        Non-missing values (finite and ±inf for numeric columns).
    missing
        None / NaN values.
    min, max, sum, sum_sq
        Over the *finite* values of a numeric column (``None``/``0.0`` when there are none, and
        for categorical columns). ±inf are counted in the open first/last bucket but kept out of
        these so a mean and a standard deviation stay defined.
    counts
        int64 histogram, ``bins.n_buckets`` long; for categorical columns the last bucket is
        "other".
    n_finite
        Finite values of a numeric column (``count`` minus ±inf); defaults to ``count``.
    unseen
        Categorical only: ``(value, count)`` of the most frequent values outside the vocabulary,
        most frequent first, at most ``max_unseen``.
    """

    bins: ReferenceBins
    count: int
    missing: int
    min: float | None
    max: float | None
    sum: float
    sum_sq: float
    counts: npt.NDArray[Any]
    unseen: tuple[tuple[str, int], ...] = ()
    max_unseen: int = DEFAULT_MAX_UNSEEN
    n_finite: int | None = None

    def __post_init__(self) -> None:
        if self.n_finite is None:
            object.__setattr__(self, "n_finite", self.count)
        counts = np.asarray(self.counts, dtype=np.int64)
        if counts.shape != (self.bins.n_buckets,):
            raise InvalidParameterError(
                "counts", counts.shape, f"a vector of {self.bins.n_buckets} bucket counts"
            )
        counts.setflags(write=False)
        object.__setattr__(self, "counts", counts)

    @property
    def finite(self) -> int:
        """The finite values counted (``n_finite``; ``count`` when it was not given)."""
        return self.count if self.n_finite is None else self.n_finite

    @property
    def kind(self) -> ColumnKind:
        """``"numeric"`` or ``"categorical"`` (the bins' kind)."""
        return self.bins.kind

    @property
    def mean(self) -> float | None:
        """Mean of the finite values, ``None`` without any."""
        n = self.n_finite
        return self.sum / n if n else None

    @property
    def std(self) -> float | None:
        """Population standard deviation (ddof=0) of the finite values from the power sums.

        Computed as ``sqrt(sum_sq / n - mean**2)``: exact enough for drift scales but it loses
        precision when the mean is many orders of magnitude larger than the spread.
        """
        n = self.n_finite
        if not n:
            return None
        m = self.sum / n
        return float(np.sqrt(max(self.sum_sq / n - m * m, 0.0)))

    @cached_property
    def fingerprint(self) -> str:
        """A stable content hash of the profile (bins and counts), e.g. a reference id."""
        h = hashlib.sha1(self.bins.key.encode())
        h.update(self.counts.tobytes())
        h.update(repr((self.count, self.missing, self.min, self.max, self.sum)).encode())
        return h.hexdigest()

    # -- merging ----------------------------------------------------------------------------
    def __add__(self, other: ColumnProfile) -> ColumnProfile:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        if other.bins != self.bins:
            raise InvalidParameterError(
                "bins",
                other.bins.key,
                f"the same bins as the left profile ({self.bins.kind}, key {self.bins.key}); "
                "profiles on different reference bins cannot be merged",
            )
        mins = [v for v in (self.min, other.min) if v is not None]
        maxs = [v for v in (self.max, other.max) if v is not None]
        unseen: tuple[tuple[str, int], ...] = ()
        if self.unseen or other.unseen:
            merged: dict[str, int] = dict(self.unseen)
            for name, c in other.unseen:
                merged[name] = merged.get(name, 0) + c
            keep = max(self.max_unseen, other.max_unseen)
            unseen = tuple(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:keep])
        return ColumnProfile(
            bins=self.bins,
            count=self.count + other.count,
            missing=self.missing + other.missing,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            sum=self.sum + other.sum,
            sum_sq=self.sum_sq + other.sum_sq,
            counts=self.counts + other.counts,
            unseen=unseen,
            max_unseen=max(self.max_unseen, other.max_unseen),
            n_finite=self.finite + other.finite,
        )

    def __radd__(self, other: object) -> ColumnProfile:
        # sum(profiles) starts from 0
        if other == 0:
            return self
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        return (
            self.bins == other.bins
            and (self.count, self.missing, self.min, self.max, self.n_finite)
            == (other.count, other.missing, other.min, other.max, other.n_finite)
            and self.sum == other.sum
            and self.sum_sq == other.sum_sq
            and np.array_equal(self.counts, other.counts)
            and self.unseen == other.unseen
        )

    __hash__ = None  # type: ignore[assignment]

    @staticmethod
    def merge(profiles: Iterable[ColumnProfile]) -> ColumnProfile:
        """Sum of several profiles on the same bins (at least one), in one pass."""
        items = list(profiles)
        if not items:
            raise InvalidParameterError("profiles", items, "at least one profile")
        first = items[0]
        if len(items) == 1:
            return first
        if any(p.kind == "categorical" and p.unseen for p in items):
            out = first
            for p in items[1:]:
                out = out + p
            return out
        for p in items[1:]:
            if p.bins != first.bins:
                return first + p  # raises the error naming both bins
        mins = [p.min for p in items if p.min is not None]
        maxs = [p.max for p in items if p.max is not None]
        return ColumnProfile(
            bins=first.bins,
            count=sum(p.count for p in items),
            missing=sum(p.missing for p in items),
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            sum=float(sum(p.sum for p in items)),
            sum_sq=float(sum(p.sum_sq for p in items)),
            counts=np.sum([p.counts for p in items], axis=0),
            max_unseen=max(p.max_unseen for p in items),
            n_finite=sum(p.n_finite or 0 for p in items),
        )

    # -- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict; :meth:`from_dict` restores an equal profile."""
        return {
            "bins": self.bins.to_dict(),
            "count": int(self.count),
            "missing": int(self.missing),
            "n_finite": int(self.finite),
            "min": self.min,
            "max": self.max,
            "sum": self.sum,
            "sum_sq": self.sum_sq,
            "counts": [int(c) for c in self.counts],
            "unseen": [[name, int(c)] for name, c in self.unseen],
            "max_unseen": int(self.max_unseen),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(
            bins=ReferenceBins.from_dict(data["bins"]),
            count=int(data["count"]),
            missing=int(data["missing"]),
            min=None if data["min"] is None else float(data["min"]),
            max=None if data["max"] is None else float(data["max"]),
            sum=float(data["sum"]),
            sum_sq=float(data["sum_sq"]),
            counts=np.asarray(data["counts"], dtype=np.int64),
            unseen=tuple((str(n), int(c)) for n, c in data.get("unseen", [])),
            max_unseen=int(data.get("max_unseen", DEFAULT_MAX_UNSEEN)),
            n_finite=int(data.get("n_finite", data["count"])),
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
    return _numeric_profile(_split_finite(as_float_array(values)), bins)


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
    codes, labels, n_missing = _factorize_strings(values)
    per_label = np.bincount(codes[codes >= 0] if n_missing else codes, minlength=len(labels))
    return _categorical_from_counts(labels, per_label, n_missing, bins, max_unseen)


def _top_by_count(
    labels: list[str], counts: npt.NDArray[Any], among: npt.NDArray[Any], k: int
) -> list[int]:
    """Indices (from ``among``) of the ``k`` largest counts, ties broken by label.

    Vectorised preselection keeps the Python sort small for ID-like columns with a million
    distinct values; among values tied at the cut only the ``k`` smallest labels are sorted.
    """
    c = counts[among]
    if among.size > k:
        kth = np.partition(c, among.size - k)[among.size - k]  # the k-th largest count
        above = among[c > kth]
        tied = [labels[i] for i in among[c == kth]]
        need = k - above.size
        keep = set(heapq.nsmallest(need, tied)) if need > 0 else set()
        among = np.concatenate([above, [i for i in among[c == kth] if labels[i] in keep]])
        among = among.astype(np.int64)
    order = sorted(among.tolist(), key=lambda i: (-int(counts[i]), labels[i]))
    return order[:k]


def _categorical_from_counts(
    labels: list[str],
    per_label: npt.NDArray[Any],
    n_missing: int,
    bins: ReferenceBins,
    max_unseen: int,
) -> ColumnProfile:
    index = bins._category_index
    other = len(bins.categories)
    to_bucket = np.fromiter((index.get(lab, other) for lab in labels), np.int64, len(labels))
    counts = np.bincount(to_bucket, weights=per_label, minlength=bins.n_buckets)
    counts = np.rint(counts).astype(np.int64)
    outside = np.flatnonzero((to_bucket == other) & (per_label > 0))
    unseen: tuple[tuple[str, int], ...] = ()
    if outside.size and max_unseen:
        top = _top_by_count(labels, per_label, outside, max_unseen)
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
    index = bins._category_index
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
        split = _split_finite(as_float_array(values))
        bins = ReferenceBins("numeric", _quantile_edges(split, int(n_bins)))
        return _numeric_profile(split, bins)
    if kind != "categorical":
        raise InvalidParameterError("kind", kind, "'numeric' or 'categorical'")
    if not isinstance(cap, int | np.integer) or cap < 1:
        raise InvalidParameterError("cap", cap, "an integer >= 1")
    codes, labels, n_missing = _factorize_strings(values)
    per_label = np.bincount(codes[codes >= 0] if n_missing else codes, minlength=len(labels))
    bins = ReferenceBins._vocabulary(labels, per_label, int(cap))
    return _categorical_from_counts(labels, per_label, n_missing, bins, max_unseen)
