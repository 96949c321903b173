"""Column tables → numeric matrices for the scikit-learn models of ``detectors``.

A *table* is a mapping ``column name → 1-d array`` (what a DuckDB or pandas result gives with
``{c: df[c].to_numpy() for c in df}``). Numeric and boolean columns stay numbers (NaN is
missing); string/object columns are categorical and get integer codes from a vocabulary (missing
and unknown values become NaN, which the gradient-boosting models treat as "missing"), or their
reference frequency (for PCA, as NannyML does).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from detectors.errors import InvalidParameterError

Table = Mapping[str, ArrayLike]

# HistGradientBoosting needs category codes below max_bins (255); one code is kept for "other".
MAX_CATEGORIES = 250
_MISSING = "\x00<missing>"


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _as_strings(a: NDArray[Any]) -> NDArray[np.object_]:
    return np.array([_MISSING if _is_missing(v) else str(v) for v in a.tolist()], dtype=object)


def table_length(table: Table) -> int:
    """Rows of a table; raises when the columns differ in length or there are none."""
    if not table:
        raise InvalidParameterError("table", "{}", "at least one column")
    lengths = {name: len(np.asarray(col).ravel()) for name, col in table.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidParameterError("column lengths", lengths, "columns of equal length")
    return next(iter(lengths.values()))


def take(table: Table, idx: NDArray[np.intp]) -> dict[str, NDArray[Any]]:
    """Rows ``idx`` of every column."""
    return {name: np.asarray(col).ravel()[idx] for name, col in table.items()}


class TableEncoder:
    """Encode tables with a fixed column list and fixed vocabularies.

    Parameters
    ----------
    categorical
        Column names to treat as categorical even when numeric (e.g. integer-coded ids); string
        and object columns are always categorical.
    mode
        ``"codes"`` (vocabulary index; unseen and missing → NaN, overflow → "other" code) or
        ``"frequency"`` (the category's share in the fitted data; unseen → 0).
    """

    def __init__(self, categorical: Collection[str] = (), mode: str = "codes") -> None:
        if mode not in ("codes", "frequency"):
            raise InvalidParameterError("mode", mode, "'codes' or 'frequency'")
        self.force_categorical = frozenset(categorical)
        self.mode = mode
        self.columns: tuple[str, ...] = ()
        self.kinds: dict[str, str] = {}
        self.vocab: dict[str, dict[str, float]] = {}

    def fit(self, tables: Sequence[Table]) -> TableEncoder:
        """Learn columns, kinds and vocabularies from one or more tables (pooled)."""
        first = tables[0]
        self.columns = tuple(first)
        for t in tables:
            table_length(t)
            if tuple(t) != self.columns and set(t) != set(self.columns):
                raise InvalidParameterError("columns", sorted(t), f"the columns {sorted(first)}")
        unknown = self.force_categorical - set(self.columns)
        if unknown:
            raise InvalidParameterError(
                "categorical", sorted(unknown), f"names among {sorted(first)}"
            )
        for name in self.columns:
            arrays = [np.asarray(t[name]).ravel() for t in tables]
            numeric = all(a.dtype.kind in "biuf" for a in arrays)
            if numeric and name not in self.force_categorical:
                self.kinds[name] = "numeric"
                continue
            self.kinds[name] = "categorical"
            values, counts = np.unique(
                np.concatenate([_as_strings(a) for a in arrays]), return_counts=True
            )
            order = np.lexsort((values, -counts))  # most frequent first, ties by name
            if self.mode == "codes":
                keep = [v for v in values[order] if v != _MISSING][:MAX_CATEGORIES]
                self.vocab[name] = {v: float(i) for i, v in enumerate(keep)}
            else:
                total = counts.sum()
                self.vocab[name] = {v: c / total for v, c in zip(values, counts, strict=True)}
        return self

    @property
    def categorical_mask(self) -> NDArray[np.bool_]:
        return np.array([self.kinds[c] == "categorical" for c in self.columns], dtype=bool)

    def transform(self, table: Table) -> NDArray[np.float64]:
        """The table as an ``(n, n_columns)`` float matrix, columns in fitted order."""
        if set(table) != set(self.columns):
            raise InvalidParameterError(
                "columns", sorted(table), f"the columns {sorted(self.columns)}"
            )
        n = table_length(table)
        out = np.empty((n, len(self.columns)), dtype=np.float64)
        for j, name in enumerate(self.columns):
            a = np.asarray(table[name]).ravel()
            if self.kinds[name] == "numeric":
                if a.dtype.kind not in "biuf":
                    raise InvalidParameterError(f"column {name!r}", a.dtype.str, "numbers")
                out[:, j] = a.astype(np.float64)
                continue
            vocab = self.vocab[name]
            if self.mode == "codes":
                other = float(MAX_CATEGORIES)  # past the cap: one shared "other" code
                default = other if len(vocab) == MAX_CATEGORIES else np.nan
                out[:, j] = [
                    np.nan if s == _MISSING else vocab.get(s, default) for s in _as_strings(a)
                ]
            else:
                out[:, j] = [vocab.get(s, 0.0) for s in _as_strings(a)]
        return out


def openmp_limited(n_threads: int | None) -> threadpool_limits:
    """``threadpool_limits`` on OpenMP with scikit-learn's OpenMP runtime loaded first.

    threadpoolctl limits only the libraries loaded when the block is entered. scikit-learn
    loads at the first fit (not when the API is imported), so a block entered before that
    left the boosting models on every core: on a busy 2-core machine their spinning threads
    took a DLE fit from ~3 to ~40 CPU seconds."""
    import sklearn.ensemble  # noqa: F401  (loads libgomp before the limit is taken)

    return threadpool_limits(limits=n_threads, user_api="openmp")
