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

__all__ = ["FiniteSplit", "as_float_array", "factorize_strings", "finite_split", "top_by_count"]


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
