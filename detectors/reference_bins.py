"""Fixed bins of a column, taken from its reference data: numeric quantile edges or a
categorical vocabulary. Profiles (:mod:`detectors.profiles`) count on them.

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

Categorical bins
----------------
``ReferenceBins.categorical`` keeps the reference's most frequent categories (ties broken by
name, at most ``cap``, default 1,000) as the vocabulary; bucket ``i`` counts category
``categories[i]`` and one last bucket counts everything else ("other"). Categories are compared
as strings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from detectors.bucket_grid import BucketGrid
from detectors.column_values import (
    FiniteSplit,
    as_float_array,
    count_labels,
    finite_split,
    top_by_count,
)
from detectors.errors import InvalidParameterError

__all__ = ["DEFAULT_CAP", "DEFAULT_N_BINS", "ColumnKind", "ReferenceBins", "quantile_edges"]

ColumnKind = Literal["numeric", "categorical"]

DEFAULT_N_BINS = 100
DEFAULT_CAP = 1000
# Quantile edges of more rows than this are taken from a seeded subsample: the bins only need to
# be close to quantiles (the counts on them are exact), and a full partition of 1M rows costs
# ~50 ms per column where sorting a 100k subsample costs ~6 ms.
_QUANTILE_SAMPLE = 100_000


def quantile_edges(split: FiniteSplit, n_bins: int) -> tuple[float, ...]:
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
        split = finite_split(as_float_array(values))
        return cls("numeric", quantile_edges(split, int(n_bins)))

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
        labels, counts, _ = count_labels(values)
        return cls.from_counts(labels, counts, int(cap))

    @classmethod
    def from_counts(cls, labels: list[str], counts: npt.NDArray[Any], cap: int) -> ReferenceBins:
        """The vocabulary of the ``cap`` largest ``counts`` of ``labels`` (ties by label)."""
        top = top_by_count(labels, counts, np.arange(len(labels)), cap)
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
    def grid(self) -> BucketGrid:
        """The grid that buckets values on the edges (numeric bins; built at first use)."""
        return BucketGrid(self.edges_array)

    @cached_property
    def category_index(self) -> dict[str, int]:
        """Category -> its bucket (categorical bins)."""
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
