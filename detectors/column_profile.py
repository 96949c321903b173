"""The mergeable summary of one column on fixed reference bins (:class:`ColumnProfile`): counts,
power sums, a histogram; profiles on the same bins add. Built by :mod:`detectors.profiles`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.errors import InvalidParameterError
from detectors.reference_bins import ColumnKind, ReferenceBins

__all__ = ["DEFAULT_MAX_UNSEEN", "ColumnProfile"]

DEFAULT_MAX_UNSEEN = 20


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

    @cached_property
    def seed_key(self) -> str:
        """What seeds this profile's null draws: bins, counts and the exact figures (count,
        missing, min, max) only. ``sum`` is left out: its last bits depend on the CPU's SIMD
        width (numpy's and DuckDB's summation order), and a seed that moves with them would
        draw another Monte-Carlo null on another machine: thresholds 5 % apart, not 1e-15."""
        h = hashlib.sha1(self.bins.key.encode())
        h.update(np.ascontiguousarray(self.counts, dtype=np.float64).tobytes())
        h.update(repr((self.count, self.missing, self.min, self.max)).encode())
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
