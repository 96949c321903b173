"""What a backfill asks once instead of once per window.

A backfill evaluates hundreds of windows of one monitor in a row. Which reference versions a
model has (``LogReader.list_references``, to resolve "the latest version") and whether its hours
are pushed by a lake job (``ProfileEngine.lake_fed``) were read from DuckDB on every window and
check, a few milliseconds each. :func:`backfill_env` gives the backfill a :class:`CheckEnv` whose
readers answer those two questions once per model and pass every other call through; the whole
backfill then sees one reference listing and one lake mode (a version uploaded or a first day
pushed meanwhile is seen by the next run, not midway through this one).

Window samples (``LogReader.sample``, two queries and the sample keys of every row of the
window, several times per window for estimated performance) are read for a block of
``BLOCK`` of the backfill's windows at once (``LogReader.samples``: the same rows in the
same order); a block is read when one of its windows first asks, so rows appended meanwhile are
seen by the next block (and the late-window re-runs), as by the next run. Likewise the
windows' summed hourly profiles (``ProfileEngine.windows``, one read per block instead of one
per window and check), and the hours the backfill brought up to date before its first window
are not checked again by each window (``ensure``: five reads of the profile state per call);
late rows for them are seen by the late-window re-runs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from monitor.checks.base import CheckEnv
from monitor.lake_mode import LakeGuard
from monitor.ports import LogReader, ProfileEngine
from storage.profiles import RawProfile

__all__ = ["backfill_env"]


# windows read at once by a per-window read of a backfill
BLOCK = 32


class _Blocks:
    """Per-window answers of reads (by key), read for a block of the backfill's windows when
    one of its windows first asks; each answer is handed out once."""

    def __init__(self, windows: Sequence[tuple[datetime, datetime]], kept: int = 1) -> None:
        self._windows = list(windows)
        self._index = {w: i for i, w in enumerate(self._windows)}
        self._starts = {s: i for i, (s, _) in enumerate(self._windows)}
        self._ends = {e: i for i, (_, e) in enumerate(self._windows)}
        self._kept = kept
        self._blocks: OrderedDict[tuple[Any, ...], dict[int, Any]] = OrderedDict()

    def index(self, start: datetime, end: datetime) -> int | None:
        """The position of ``[start, end)`` among the backfill's windows (None: not one)."""
        return self._index.get((start, end))

    def ending(self, end: datetime) -> int | None:
        """The position of the backfill's window ending at ``end`` (None: none)."""
        return self._ends.get(end)

    def starting(self, start: datetime) -> int | None:
        """The position of the backfill's window starting at ``start`` (None: none)."""
        return self._starts.get(start)

    def get(self, key: tuple[Any, ...], i: int, read: Callable[[list[Any]], list[Any]]) -> Any:
        """Window ``i``'s answer of the read ``key``; ``read(windows)`` answers a block."""
        block = self._blocks.get(key)
        if block is None or i not in block:
            ahead = self._windows[i : i + BLOCK]
            block = dict(zip(range(i, i + len(ahead)), read(ahead), strict=True))
            self._blocks[key] = block
            while len(self._blocks) > self._kept:
                self._blocks.popitem(last=False)
        self._blocks.move_to_end(key)
        return block.pop(i)


class _ProfilesAhead:
    """A profile engine whose ``lake_fed`` is read once per model, whose ``ensure`` of hours
    already brought up to date in this backfill is a no-op, and whose window sums are read a
    block of the backfill's windows at a time."""

    def __init__(self, engine: ProfileEngine, windows: Sequence[tuple[datetime, datetime]]) -> None:
        self._engine = engine
        self._lake_fed: dict[str, bool] = {}
        self._ensured: dict[str, list[tuple[datetime, datetime]]] = {}
        self._blocks = _Blocks(windows, kept=2)

    def lake_fed(self, model: str) -> bool:
        if model not in self._lake_fed:
            self._lake_fed[model] = self._engine.lake_fed(model)
        return self._lake_fed[model]

    def ensure(
        self,
        model: str,
        start: datetime,
        end: datetime,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        if any(s <= start and end <= e for s, e in self._ensured.get(model, ())):
            return 0
        scanned = self._engine.ensure(model, start, end, should_stop)
        if should_stop is None or not should_stop():  # not stopped midway: every hour is done
            self._ensured.setdefault(model, []).append((start, end))
        return scanned

    def window(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[tuple[str, str]] | None = None,
        tenant_id: str | None = None,
    ) -> dict[tuple[str, str], dict[tuple[str, str], RawProfile]]:
        i = self._blocks.index(start, end)
        if i is None:
            return self._engine.window(model, start, end, columns, tenant_id)
        key = (model, None if columns is None else tuple(columns), tenant_id)
        return self._blocks.get(  # type: ignore[no-any-return]
            key, i, lambda ahead: self._engine.windows(model, ahead, columns, tenant_id)
        )

    def row_counts(
        self, model: str, start: datetime, end: datetime, step: timedelta
    ) -> dict[tuple[str, str], list[int]]:
        # data quality's baseline: the windows before one of the backfill's (ending at its start)
        i = self._blocks.starting(end)
        if i is None:
            return self._engine.row_counts(model, start, end, step)
        back = end - start
        return self._blocks.get(  # type: ignore[no-any-return]
            ("row_counts", model, back, step),
            i,
            lambda ahead: self._engine.row_counts_windows(
                model, [(s - back, s) for s, _ in ahead], step
            ),
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class _ListedOnce:
    """A log reader whose ``list_references`` is read once per model."""

    def __init__(self, logs: LogReader) -> None:
        self._logs = logs
        self._listed: dict[str, list[tuple[str, int, int]]] = {}

    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        if model not in self._listed:
            self._listed[model] = self._logs.list_references(model)
        return list(self._listed[model])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logs, name)


class _ReadAhead:
    """A log reader whose per-window reads (samples, label statistics, labelled rows) are read
    a block of the backfill's windows at a time (embedded models; a lake-fed model's reads pass
    through to the guard, which serves them from what its lake job pushed)."""

    def __init__(
        self,
        guarded: Any,
        logs: LogReader,
        profiles: Any,
        windows: Sequence[tuple[datetime, datetime]],
    ) -> None:
        self._guarded = guarded
        self._logs = logs
        self._profiles = profiles
        # drift on samples asks one sample per column and segment: several kept at once
        self._blocks = _Blocks(windows, kept=8)

    def _ahead(self, model: str, start: datetime, end: datetime) -> int | None:
        i = self._blocks.index(start, end)
        return None if i is None or self._profiles.lake_fed(model) else i

    def sample(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
        seed: int = 0,
    ) -> pa.Table:
        i = self._ahead(model, start, end)
        if i is None:
            return self._guarded.sample(
                model, start, end, columns, n, tenant_id=tenant_id, seed=seed
            )
        key = ("sample", model, tuple(columns), n, tenant_id, seed)
        return self._blocks.get(
            key,
            i,
            lambda ahead: self._logs.samples(
                model, ahead, columns, n, tenant_id=tenant_id, seed=seed
            ),
        )

    def last_ts(
        self, model: str, before: datetime, since: datetime | None = None
    ) -> dict[tuple[str, str], datetime]:
        # freshness: the rows since the baseline's first window, up to one of the backfill's
        # windows' end (the whole history when asked for it: not read ahead)
        i = self._blocks.ending(before)
        if i is None or since is None or self._profiles.lake_fed(model):
            return self._guarded.last_ts(model, before, since)  # type: ignore[no-any-return]
        back = before - since
        return self._blocks.get(  # type: ignore[no-any-return]
            ("last_ts", model, back),
            i,
            lambda ahead: self._logs.last_ts_windows(model, [(e - back, e) for _, e in ahead]),
        )

    def label_stats(
        self, model: str, start: datetime, end: datetime
    ) -> dict[tuple[str, str], dict[str, Any]]:
        i = self._ahead(model, start, end)
        if i is None:
            return self._guarded.label_stats(model, start, end)  # type: ignore[no-any-return]
        return self._blocks.get(  # type: ignore[no-any-return]
            ("label_stats", model), i, lambda ahead: self._logs.label_stats_windows(model, ahead)
        )

    def labelled(
        self,
        model: str,
        start: datetime,
        end: datetime,
        prediction: str,
        scores: Sequence[str] = (),
    ) -> pa.Table:
        i = self._ahead(model, start, end)
        if i is None:
            return self._guarded.labelled(model, start, end, prediction, scores)
        key = ("labelled", model, prediction, tuple(scores))
        return self._blocks.get(
            key, i, lambda ahead: self._logs.labelled_windows(model, ahead, prediction, scores)
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guarded, name)


def backfill_env(
    env: CheckEnv, logs: LogReader, windows: Sequence[tuple[datetime, datetime]] = ()
) -> CheckEnv:
    """``env`` for one backfill of ``windows`` (``[start, end)``, oldest first): the same
    profile engine, raw-log reads (``logs``, unguarded) and caches, with the reference listing
    and the lake mode read once per model, and the windows' per-window reads a block at a time."""
    profiles = _ProfilesAhead(env.profiles, windows)
    guarded = _ListedOnce(LakeGuard(logs, profiles))
    reads = _ReadAhead(guarded, logs, profiles, windows)
    return CheckEnv(profiles, reads, env.caches, env.sample_size)
