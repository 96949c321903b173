"""A column's values as arrays: float64 (``None``/``pd.NA`` as NaN), its finite values split
from the missing and infinite ones, string codes, and the largest counts among labels. Shared by
the reference bins and the profiles built on them (:mod:`detectors.profiles`).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FiniteSplit",
    "as_float_array",
    "count_labels",
    "factorize_strings",
    "finite_split",
    "top_by_count",
]

# An object column at least this long is first grouped by object identity (see count_labels).
_BY_IDENTITY_MIN = 1 << 14
# ... unless it holds more distinct objects than this (ID-like columns): then pandas hashes it.
_BY_IDENTITY_MAX_DISTINCT = 1 << 16


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


def factorize_strings(values: Any) -> tuple[npt.NDArray[Any], list[str], int]:
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


def count_labels(values: Any) -> tuple[list[str], npt.NDArray[np.int64], int]:
    """The labels of a string-like column (as :func:`factorize_strings`, in the same order),
    how often each occurs (int64) and how many values are missing.

    The same figures as ``np.bincount`` over :func:`factorize_strings`' codes, cheaper for a
    long object array: it holds a few distinct string objects many times over (a CSV reader,
    pandas and Arrow's ``to_pandas`` reuse one object per distinct string), so a compiled loop
    first groups the values by object identity (their addresses; no hashing of strings, no
    GIL) and only the distinct objects, in order of first appearance, go through
    :func:`factorize_strings`. Identical objects are equal in ``pandas.factorize`` too, so the
    labels, their order and the counts are the same.
    """
    pandas_objects = getattr(values, "dtype", None) == np.dtype(object)  # Series / Index
    if pandas_objects and not isinstance(values, np.ndarray) and hasattr(values, "to_numpy"):
        values = values.to_numpy()
    long_objects = isinstance(values, np.ndarray) and values.dtype == object
    if long_objects and values.ndim == 1 and values.size >= _BY_IDENTITY_MIN:
        grouped = _count_by_identity(values)
        if grouped is not None:
            return grouped
    codes, labels, missing = factorize_strings(values)
    per_label = np.bincount(codes[codes >= 0] if missing else codes, minlength=len(labels))
    return labels, per_label.astype(np.int64, copy=False), missing


class _Addresses:
    """A uint64 view of an object array's element pointers (``__array_interface__``); keeps
    the array alive as long as the view."""

    def __init__(self, values: npt.NDArray[Any]) -> None:
        self.values = values
        self.__array_interface__ = {
            "shape": values.shape,
            "typestr": np.dtype(np.uint64).str,
            "data": (values.ctypes.data, True),  # read-only
            "strides": values.strides,
            "version": 3,
        }


def _count_by_identity(
    values: npt.NDArray[Any],
) -> tuple[list[str], npt.NDArray[np.int64], int] | None:
    from detectors import profile_kernels  # numba: compiled (or loaded) when first profiling

    if np.dtype(np.uintp).itemsize != 8:
        return None
    pointers = np.asarray(_Addresses(values))
    k, first, counts = profile_kernels.count_objects(pointers, _BY_IDENTITY_MAX_DISTINCT)
    if k < 0:
        return None
    codes, labels, _ = factorize_strings(values[first])  # the distinct objects, in order
    seen = codes >= 0
    per_label = np.zeros(len(labels), np.int64)
    np.add.at(per_label, codes[seen], counts[seen])
    return labels, per_label, int(counts[~seen].sum())


class FiniteSplit(NamedTuple):
    """A numeric column split by :func:`finite_split`."""

    finite: npt.NDArray[np.float64]  # the finite values, in their order
    missing: int  # NaN (None / pd.NA)
    neg_inf: int
    pos_inf: int
    lo: float | None  # min and max of the finite values
    hi: float | None


def finite_split(x: npt.NDArray[Any]) -> FiniteSplit:
    """The finite values of a float64 column and counts of the others, in one compiled pass."""
    from detectors import profile_kernels  # numba: compiled (or loaded) when first profiling

    out = np.empty(x.size, dtype=np.float64)
    k, n_nan, n_neg, n_pos, lo, hi = profile_kernels.split_finite(x, out)
    if k == 0:
        return FiniteSplit(out[:0], n_nan, n_neg, n_pos, None, None)
    return FiniteSplit(out[:k], n_nan, n_neg, n_pos, float(lo), float(hi))


def top_by_count(
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
