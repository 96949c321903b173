"""Profiles of many columns at once, numeric columns in parallel.

A numeric profile is two compiled loops and a few numpy reductions, all of which release the
GIL (:mod:`detectors.profile_kernels`), so numeric columns run on a small thread pool.
Categorical columns run on the calling thread meanwhile: a long object column is grouped by
object identity in a compiled loop (no GIL, ~3 ms per million values) and only its distinct
values are hashed as strings (:func:`detectors.column_values.count_labels`); other inputs are
hashed by pandas or Arrow. The results are those of the per-column functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from detectors.errors import InvalidParameterError
from detectors.profiles import (
    DEFAULT_MAX_UNSEEN,
    ColumnKind,
    ColumnProfile,
    ReferenceBins,
    profile_categorical,
    profile_numeric,
    profile_reference,
)

__all__ = ["profile_columns", "profile_references"]


def profile_columns(
    columns: Mapping[str, Any],
    bins: Mapping[str, ReferenceBins],
    *,
    max_unseen: int = DEFAULT_MAX_UNSEEN,
    workers: int | None = None,
) -> dict[str, ColumnProfile]:
    """Profile every column of ``bins`` (name -> bins) from ``columns`` (name -> values).

    Same profiles as :func:`~detectors.profiles.profile_numeric` /
    :func:`~detectors.profiles.profile_categorical` column by column, in the order of
    ``bins``. ``workers``: threads for the numeric columns (default: the CPU count).
    """
    missing = [c for c in bins if c not in columns]
    if missing:
        raise InvalidParameterError("columns", missing, "values for every binned column")
    tasks = {
        c: (
            (lambda v=columns[c], b=b: profile_numeric(v, b))
            if b.kind == "numeric"
            else (lambda v=columns[c], b=b: profile_categorical(v, b, max_unseen))
        )
        for c, b in bins.items()
    }
    numeric = [c for c, b in bins.items() if b.kind == "numeric"]
    return _run(tasks, numeric, workers)


def profile_references(
    columns: Mapping[str, Any],
    kinds: Mapping[str, ColumnKind],
    *,
    workers: int | None = None,
    **options: Any,
) -> dict[str, ColumnProfile]:
    """Bins and profile of every column of ``kinds`` (name -> ``"numeric"`` /
    ``"categorical"``), as :func:`~detectors.profiles.profile_reference` column by column
    (``options``: its ``n_bins``, ``cap``, ``max_unseen``)."""
    missing = [c for c in kinds if c not in columns]
    if missing:
        raise InvalidParameterError("columns", missing, "values for every column of kinds")
    tasks = {
        c: (lambda v=columns[c], k=k: profile_reference(v, k, **options)) for c, k in kinds.items()
    }
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    return _run(tasks, numeric, workers)


def _run(
    tasks: Mapping[str, Callable[[], ColumnProfile]], numeric: list[str], workers: int | None
) -> dict[str, ColumnProfile]:
    threads = min(len(numeric), workers or os.cpu_count() or 1)
    if threads < 1 or (threads == 1 and len(numeric) == len(tasks)):
        return {c: fn() for c, fn in tasks.items()}
    with ThreadPoolExecutor(threads, thread_name_prefix="profile") as pool:
        futures: dict[str, Future[ColumnProfile]] = {c: pool.submit(tasks[c]) for c in numeric}
        done = {c: fn() for c, fn in tasks.items() if c not in futures}  # strings: this thread
        done |= {c: f.result() for c, f in futures.items()}
    return {c: done[c] for c in tasks}
