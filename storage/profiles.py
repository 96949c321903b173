"""Hourly column profiles of the inference logs, kept incrementally in the log store's DuckDB file.

A profile of one column in one (hour, tenant, model version) holds: non-missing ``count``,
``missing``, ``n_finite``, ``min``/``max``/``sum``/``sum_sq`` over finite values, and either
histogram ``counts`` on fixed right-closed bin edges (numeric; bucket ``i`` counts values in
``(e_{i-1}, e_i]``, as DuckDB's ``histogram(x, edges)`` and ``detectors.profiles``) or the count
of every category (categorical, bins-free, so any vocabulary can be applied later). Counts add, so
a window's profile is the sum of its hours' profiles and raw rows are scanned once.

How one hour range (at most a week) is profiled: three reads of its rows run at once.

* segments: one DuckDB ``GROUP BY hour, tenant, version`` gives the rows and first/last ``ts``
  of each, and the 64-bit hash that names the segment in the other two reads;
* category counts: one DuckDB scan with one grouping set ``(hour, segment hash, value)`` per
  categorical column;
* numeric columns: streamed out of DuckDB as Arrow record batches and counted, histogram and
  moments (count, missing, n_finite, min, max, sum, sum_sq) in one go, by the compiled loops of
  :mod:`storage.profile_kernels` (numba; a grid table lookup replaces the binary search for
  most values). Memory is bounded by the batch size, not by the range. Not DuckDB's
  ``histogram(x, edges)``: fast over one group (40 ms per million values), but about 0.3 ms
  per (group, column) to build and combine its map states (2,160 hour x tenant groups x 25
  columns took 16 s); and not numpy: with about ten passes over each column plus a second
  scan for the moments, the whole build took 1.5x the CPU.

The build is CPU-bound on 2 cores; a range's profile rows are written (and DuckDB checkpoints)
while the next range is counted.

Late rows: every inference row carries ``received_at``. :meth:`ProfileStore.refresh` reads the
newest ``received_at`` (the new watermark), marks the hours of rows received after the previous
watermark dirty, and stores the new watermark; :meth:`ProfileStore.ensure` recomputes dirty,
missing and re-binned hours of a range before they are read. ``changed_at`` of an hour tells
callers (the runner) which evaluated windows must be evaluated again.

Tables (all in the log store's file): ``profiles__<model>`` (one row per hour, tenant, version,
column, bins), ``profile_hours`` (model, hour, rows, bins set, computed/changed at, dirty),
``profile_state`` (model, watermark).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from storage import tables
from storage.lake_profiles import LakeFile
from storage.lake_rows import check_rows, read_labels, read_sample, write_rows
from storage.logstore import LogStore, label_join
from storage.profile_kernel import (
    PROFILE_SCHEMA,
    ROWS_COLUMN,
    TS,
    NumericCounter,
    ProfileAccumulator,
    ProfileSpec,
    edges_key,
    merge_profiles,
    numeric_rows,
    profile_batch,
    segment_rows,
)
from storage.row_kernel import LABEL_SCHEMA, SAMPLE_BASE
from storage.tables import quote
from storage.types import ALL, as_utc

__all__ = [
    "ROWS_COLUMN",
    "ProfileAccumulator",
    "ProfileSpec",
    "ProfileStore",
    "RawProfile",
    "edges_key",
    "merge_profiles",
    "profile_batch",
]

HOUR = timedelta(hours=1)
_BATCH_ROWS = 1 << 16


@dataclass(frozen=True, eq=False)
class RawProfile:
    """A column's profile over some hours of one segment (see the module docstring)."""

    count: int = 0
    missing: int = 0
    n_finite: int = 0
    min: float | None = None
    max: float | None = None
    sum: float = 0.0
    sum_sq: float = 0.0
    counts: npt.NDArray[Any] | None = None  # numeric histogram
    categories: dict[str, int] | None = None  # categorical value counts

    def __add__(self, other: RawProfile) -> RawProfile:
        lo = [v for v in (self.min, other.min) if v is not None]
        hi = [v for v in (self.max, other.max) if v is not None]
        counts = None
        if self.counts is not None and other.counts is not None:
            counts = self.counts + other.counts
        else:
            counts = self.counts if self.counts is not None else other.counts
        cats = None
        if self.categories is not None or other.categories is not None:
            cats = dict(self.categories or {})
            for k, v in (other.categories or {}).items():
                cats[k] = cats.get(k, 0) + v
        return RawProfile(
            self.count + other.count,
            self.missing + other.missing,
            self.n_finite + other.n_finite,
            min(lo) if lo else None,
            max(hi) if hi else None,
            self.sum + other.sum,
            self.sum_sq + other.sum_sq,
            counts,
            cats,
        )


def _hour(value: datetime) -> datetime:
    v = as_utc(value).astimezone(UTC)
    return v.replace(minute=0, second=0, microsecond=0)


def _runs(hours: Sequence[datetime], max_hours: int = 24) -> list[tuple[datetime, datetime]]:
    """Contiguous [start, end) ranges covering sorted hours, at most ``max_hours`` long."""
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(hours):
        if out and out[-1][1] == h and h - out[-1][0] < max_hours * HOUR:
            out[-1] = (out[-1][0], h + HOUR)
        else:
            out.append((h, h + HOUR))
    return out


def _added(old: ProfileSpec, new: ProfileSpec) -> ProfileSpec | None:
    """The columns and bin sets ``new`` profiles beyond ``old`` when it holds all of ``old``
    (profiles only, no samples or label aggregates); None otherwise or when nothing is added."""
    if old.format != 1 or new.format != 1:
        return None
    if not set(old.categorical) <= set(new.categorical):
        return None
    numeric: dict[str, tuple[tuple[float, ...], ...]] = {}
    for c in {*old.numeric, *new.numeric}:
        had = {edges_key(e) for e in old.numeric.get(c, ())}
        has = {edges_key(e) for e in new.numeric.get(c, ())}
        if not had <= has:
            return None
        extra = tuple(e for e in new.numeric.get(c, ()) if edges_key(e) not in had)
        if extra:
            numeric[c] = extra
    categorical = tuple(c for c in new.categorical if c not in old.categorical)
    if not numeric and not categorical:
        return None
    return ProfileSpec({c: numeric[c] for c in new.numeric if c in numeric}, categorical)


@dataclass(frozen=True)
class _KeyedSpec:
    """What :meth:`ProfileStore._write_hours` reads of a spec: its key."""

    key: str


class ProfileStore:
    """Hourly profiles of a :class:`LogStore`'s inference tables.

    Uses the log store's write connection and lock for writes (one writer per DuckDB file) and
    its read cursors for scans, so API appends keep running while a range is profiled.

    Parameters
    ----------
    logstore
        The open log store.
    batch_rows
        Rows per Arrow batch while counting histograms (bounds memory).
    max_hours_per_scan
        Longest hour range profiled by one scan (bounds memory on long backfills).
    """

    def __init__(
        self, logstore: LogStore, batch_rows: int = _BATCH_ROWS, max_hours_per_scan: int = 168
    ) -> None:
        self._ls = logstore
        self._batch_rows = int(batch_rows)
        # A long range is scanned in pieces of this many hours: the scan reads each row once
        # either way (ts zone maps skip the rest), and the profile rows held before the write
        # stay bounded, so memory does not grow with the number of days.
        self._max_hours = int(max_hours_per_scan)
        self._specs: dict[str, ProfileSpec] = {}
        # every spec registered in this process by key: an hour profiled under one of them that
        # the current spec extends gets only the added columns (``ensure``)
        self._known: dict[str, ProfileSpec] = {}
        self._warm: threading.Thread | None = None
        self._model_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        with self._writer() as con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {tables.PROFILE_HOURS} (model VARCHAR NOT NULL, hour "
                "TIMESTAMPTZ NOT NULL, rows BIGINT NOT NULL, spec VARCHAR NOT NULL, computed_at "
                "TIMESTAMPTZ NOT NULL, changed_at TIMESTAMPTZ NOT NULL, dirty BOOLEAN NOT NULL)"
            ).fetchall()
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {tables.PROFILE_STATE} (model VARCHAR NOT NULL, "
                "watermark TIMESTAMPTZ)"
            ).fetchall()
            # models whose profiles a lake job pushes, and the files they were computed from:
            # the manifest a job compares its listing with
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {tables.PROFILE_LAKE_FILES} (model VARCHAR NOT NULL, "
                "day DATE NOT NULL, spec VARCHAR NOT NULL, path VARCHAR, size BIGINT, "
                "mtime_ns BIGINT)"
            ).fetchall()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # The log store owns the only write connection; writes share its lock.
        with self._ls.writer() as con:
            yield con

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._ls.reader() as cur:
            yield cur

    def _model_lock(self, model: str) -> threading.Lock:
        with self._locks_lock:
            return self._model_locks.setdefault(model, threading.Lock())

    def _table(self, model: str) -> str:
        return self._ls.table(model)

    def _ensure_profile_table(self, model: str) -> str:
        name = tables.profiles(model)
        with self._writer() as con:
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {quote(name)} (hour TIMESTAMPTZ NOT NULL, "
                "tenant_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, column_name VARCHAR "
                "NOT NULL, bins_key VARCHAR NOT NULL, count BIGINT, missing BIGINT, n_finite "
                "BIGINT, min DOUBLE, max DOUBLE, sum DOUBLE, sum_sq DOUBLE, counts BIGINT[], "
                "categories VARCHAR[])"
            ).fetchall()
        return name

    def warm_up(self, *, wait: bool = True) -> None:
        """Load the compiled counting loops (about 0.6 s once per process) on a background
        thread, so the first profile build does not wait for them; with ``wait``, until they
        are loaded. The server's scheduler starts this; benchmarks wait before timing."""
        with self._locks_lock:
            if self._warm is None:
                self._warm = threading.Thread(target=_warm_up, name="profile-kernels", daemon=True)
                self._warm.start()
        if wait:
            self._warm.join()

    # -- spec -------------------------------------------------------------------------------
    def register(self, model: str, spec: ProfileSpec) -> ProfileSpec:
        """Add columns / bin sets to what is profiled for ``model``; returns the merged spec.

        Hours profiled under an older spec are recomputed when next read (``ensure``)."""
        with self._model_lock(model):
            before = self._specs.get(model, ProfileSpec())
            merged = before.merged(spec)
            self._specs[model] = merged
            self._known.setdefault(before.key, before)
            self._known.setdefault(merged.key, merged)
            return merged

    def spec(self, model: str) -> ProfileSpec:
        return self._specs.get(model, ProfileSpec())

    # -- watermark and dirty hours ------------------------------------------------------------
    def watermark(self, model: str) -> datetime | None:
        with self._reader() as cur:
            row = cur.execute(
                f"SELECT watermark FROM {tables.PROFILE_STATE} WHERE model = ?", [model]
            ).fetchone()
        return None if row is None else row[0]

    def refresh(self, model: str) -> list[datetime]:
        """Advance the watermark; mark hours with rows received since the last one dirty.

        Returns
        -------
        list of datetime
            Already profiled hours that became dirty (late rows), sorted.
        """
        table = self._table(model)
        with self._model_lock(model):
            old = self.watermark(model)
            with self._reader() as cur:
                new = cur.execute(f"SELECT max(received_at) FROM {quote(table)}").fetchall()[0][0]
                if new is None or (old is not None and new <= old):
                    return []
                late: list[datetime] = []
                if old is not None:
                    late = [
                        r[0]
                        for r in cur.execute(
                            f"SELECT DISTINCT date_trunc('hour', ts) FROM {quote(table)} "
                            "WHERE received_at > ? AND received_at <= ? ORDER BY 1",
                            [old, new],
                        ).fetchall()
                    ]
            with self._writer() as con:
                con.execute("BEGIN TRANSACTION").fetchall()
                try:
                    dirty: list[datetime] = []
                    if late:
                        con.register("__dw_late", pa.table({"hour": pa.array(late, _TS)}))
                        try:
                            dirty = [
                                r[0]
                                for r in con.execute(
                                    f"UPDATE {tables.PROFILE_HOURS} SET dirty = true WHERE model = ? AND "
                                    "hour IN (SELECT hour FROM __dw_late) RETURNING hour",
                                    [model],
                                ).fetchall()
                            ]
                        finally:
                            con.unregister("__dw_late")
                    con.execute(
                        f"DELETE FROM {tables.PROFILE_STATE} WHERE model = ?", [model]
                    ).fetchall()
                    con.execute(
                        f"INSERT INTO {tables.PROFILE_STATE} VALUES (?, ?)", [model, new]
                    ).fetchall()
                    con.execute("COMMIT").fetchall()
                except BaseException:
                    con.execute("ROLLBACK").fetchall()
                    raise
            return sorted(set(dirty))

    def hours(self, model: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
        """Profiled hours in ``[start, end)``: hour -> rows, spec, computed_at, changed_at,
        dirty."""
        with self._reader() as cur:
            rows = cur.execute(
                f"SELECT hour, rows, spec, computed_at, changed_at, dirty FROM {tables.PROFILE_HOURS} "
                "WHERE model = ? AND hour >= ? AND hour < ?",
                [model, as_utc(start), as_utc(end)],
            ).fetchall()
        return {
            r[0]: {
                "rows": int(r[1]),
                "spec": r[2],
                "computed_at": r[3],
                "changed_at": r[4],
                "dirty": bool(r[5]),
            }
            for r in rows
        }

    def ensure(
        self,
        model: str,
        start: datetime,
        end: datetime,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Profile every hour of ``[start, end)`` that is missing, dirty or on an older spec.

        ``should_stop`` is asked before each range of hours: when it answers True the build
        stops there (the ranges written so far stay; the rest are profiled when next needed).

        Returns
        -------
        int
            Raw rows scanned.
        """
        start, end = _hour(start), _hour(end - timedelta(microseconds=1)) + HOUR
        if self.lake_fed(model):  # a lake job pushes this model's hours: nothing to build here
            return 0
        self.refresh(model)
        with self._model_lock(model):
            spec = self.spec(model)
            have = self.hours(model, start, end)
            need: list[datetime] = []
            data_changed: set[datetime] = set()
            # hours whose rows are profiled under a spec the current one extends: old key ->
            # hours (only the added columns are computed, the stored rows stay)
            extend: dict[str, list[datetime]] = {}
            # old spec key -> whether the current spec extends it (asked once per key, not
            # once per stored hour: 8,760 comparisons of the two specs over a year)
            extends: dict[str, bool] = {}
            h = start
            while h < end:
                info = have.get(h)
                if info is None or info["dirty"]:
                    need.append(h)
                    data_changed.add(h)
                elif info["spec"] != spec.key:
                    ok = extends.get(info["spec"])
                    if ok is None:
                        old = self._known.get(info["spec"])
                        ok = old is not None and _added(old, spec) is not None
                        extends[info["spec"]] = ok
                    if ok:
                        extend.setdefault(info["spec"], []).append(h)
                    else:
                        need.append(h)
                h += HOUR
            scanned = 0
            ptable = self._ensure_profile_table(model)
            for old_key, hours in extend.items():
                added = _added(self._known[old_key], spec)
                assert added is not None
                for lo, hi in _runs(hours, self._max_hours):
                    if should_stop is not None and should_stop():
                        return scanned
                    data, rows_by_hour = self._compute(model, added, lo, hi)
                    data = data.filter(pc.not_equal(data.column("column_name"), ROWS_COLUMN))
                    self._add_columns(model, ptable, spec.key, old_key, lo, hi, data)
                    scanned += sum(rows_by_hour.values())
            # A range's profiles are written (and DuckDB checkpoints) while the next range is
            # counted: the write takes 0.1-0.25 s of one core per range.
            with ThreadPoolExecutor(1, thread_name_prefix="profile-write") as writer:
                pending: Future[None] | None = None
                for lo, hi in _runs(need, self._max_hours):
                    if should_stop is not None and should_stop():
                        break
                    data, rows_by_hour = self._compute(model, spec, lo, hi)
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(
                        self._write_hours,
                        model,
                        ptable,
                        spec,
                        lo,
                        hi,
                        data,
                        rows_by_hour,
                        data_changed,
                    )
                    scanned += sum(rows_by_hour.values())
                if pending is not None:
                    pending.result()
            return scanned

    # -- computing ------------------------------------------------------------------------------
    def _compute(
        self, model: str, spec: ProfileSpec, start: datetime, end: datetime
    ) -> tuple[pa.Table, dict[datetime, int]]:
        """Profile rows of the hours in ``[start, end)`` and the raw rows of each hour.

        Three reads of the range run at once: the segments (rows and first/last ts per hour,
        tenant and version) and the category counts in DuckDB on their own cursors, while this
        thread streams the numeric columns through the compiled counting loops."""
        table = quote(self._table(model))
        have_cols = self._ls.table_columns(model)
        numeric = [c for c in spec.numeric if c in have_cols and spec.numeric[c]]
        categorical = [c for c in spec.categorical if c in have_cols]
        where = "ts >= ? AND ts < ?"
        params: list[Any] = [start, end]

        def query(sql: str) -> pa.Table:
            with self._reader() as cur:
                return cur.sql(sql, params=params).to_arrow_table()

        pool = ThreadPoolExecutor(max_workers=2)
        try:
            # hours as integers (epoch hours): half the cost of date_trunc on a TIMESTAMPTZ
            segments_future = pool.submit(
                query,
                f"SELECT {_EPOCH_HOUR} AS hour, tenant_id, coalesce(model_version, '') AS mv, "
                f"count(*) AS n, epoch_us(min(ts)) AS t0, epoch_us(max(ts)) AS t1, "
                f"any_value({_GROUP_HASH}) AS gh "
                f"FROM {table} WHERE {where} GROUP BY ALL",
            )
            cats_future = (
                pool.submit(query, _category_sql(table, where, categorical, hashed=True))
                if categorical
                else None
            )
            base = _hour_index(start)
            stream = (
                self._stream(table, where, params, spec, numeric, base, hashed=True)
                if numeric
                else None
            )
            seg = segments_future.result().to_pydict()
            hours = [_hour_of(h) for h in seg["hour"]]
            groups = list(zip(hours, seg["tenant_id"], seg["mv"], strict=True))
            # (tenant, version) is carried as a 64-bit hash so the stream and the category
            # counts group by one integer, not two strings (converting VARCHAR to Arrow cost more
            # than the scan); a collision between two segments of one hour falls back to the
            # strings.
            keyed = list(zip(seg["hour"], seg["gh"], seg["tenant_id"], seg["mv"], strict=True))
            names = {(h, gh): (t, v) for h, gh, t, v in keyed}
            hashed = len(names) == len(groups)
            # (hour, segment hash), or (hour, tenant, version) after a collision
            stream_keys: list[tuple[Any, ...]]
            if hashed:
                stream_keys = [(h - base, gh) for h, gh, _, _ in keyed]
            else:
                if numeric:
                    stream = self._stream(table, where, params, spec, numeric, base, hashed=False)
                stream_keys = [(h - base, t, v) for h, _, t, v in keyed]
            # row of each group in the streamed arrays; -1: no row streamed (appended meanwhile)
            parts = [segment_rows(groups, seg["n"], seg["t0"], seg["t1"])] if groups else []
            if stream is not None and groups:
                keymap, counter = stream
                rows = np.array([keymap.get(k, -1) for k in stream_keys], np.int64)
                parts.append(numeric_rows(groups, rows, counter))
            if cats_future is not None:
                if hashed:
                    counts = _categorical_rows(cats_future.result(), categorical, names)
                else:
                    sql = _category_sql(table, where, categorical, hashed=False)
                    counts = _categorical_rows(query(sql), categorical, None)
                parts.append(counts)
        finally:
            pool.shutdown(wait=True)
        rows_by_hour: dict[datetime, int] = {}
        for h, n in zip(hours, seg["n"], strict=True):
            rows_by_hour[h] = rows_by_hour.get(h, 0) + int(n)
        data = pa.concat_tables(parts) if parts else _PROFILE_SCHEMA.empty_table()
        return data, rows_by_hour

    def _stream(
        self,
        table: str,
        where: str,
        params: list[Any],
        spec: ProfileSpec,
        numeric: list[str],
        base: int,
        *,
        hashed: bool,
    ) -> tuple[dict[tuple[Any, ...], int], NumericCounter]:
        """Histogram counts and moments of the numeric columns per group, from one streamed
        scan, counted by the kernel's :class:`storage.profile_kernel.NumericCounter` (the
        counting path of every engine).

        Groups are numbered as they appear: key ``(hour offset, segment hash)`` (or
        ``(hour offset, tenant, version)`` when ``hashed`` is false) -> row of the arrays.
        """
        sel = ", ".join(quote(c) for c in numeric)
        seg = f"{_GROUP_HASH} AS gh" if hashed else "tenant_id, coalesce(model_version, '') AS mv"
        first = 2 if hashed else 3
        keymap: dict[tuple[Any, ...], int] = {}
        counter = NumericCounter(spec, numeric)
        with self._reader() as cur:
            reader = cur.sql(
                f"SELECT {_EPOCH_HOUR} - ? AS hi, {seg}, {sel} FROM {table} WHERE {where}",
                params=[base, *params],
            ).to_arrow_reader(self._batch_rows)
            grouper = _HashGrouper(keymap) if hashed else None
            for batch in reader:
                gids = grouper.ids(batch) if grouper is not None else _batch_groups(batch, keymap)
                counter.add(
                    [batch.column(first + j) for j in range(len(numeric))], gids, len(keymap)
                )
        return keymap, counter

    def _write_hours(
        self,
        model: str,
        ptable: str,
        spec: ProfileSpec | _KeyedSpec,
        start: datetime,
        end: datetime,
        data: pa.Table,
        rows_by_hour: dict[datetime, int],
        changed: set[datetime],
        also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> None:
        """Replace the profile rows and hour records of ``[start, end)`` in one transaction
        (``also`` runs inside it: the lake manifest of a pushed day)."""
        hours = []
        h = start
        while h < end:
            hours.append(h)
            h += HOUR
        now = self._ls.now()
        meta = pa.table(
            {
                "hour": pa.array(hours, _TS),
                "rows": pa.array([rows_by_hour.get(x, 0) for x in hours], pa.int64()),
                "changed": pa.array([x in changed for x in hours], pa.bool_()),
            }
        )
        with self._writer() as con:
            con.register("__dw_prof", data)
            con.register("__dw_hours", meta)
            try:
                con.execute("BEGIN TRANSACTION").fetchall()
                try:
                    con.execute(
                        f"DELETE FROM {quote(ptable)} WHERE hour >= ? AND hour < ?", [start, end]
                    ).fetchall()
                    con.execute(f"INSERT INTO {quote(ptable)} SELECT * FROM __dw_prof").fetchall()
                    # keep changed_at of hours recomputed only because the spec changed
                    con.execute(
                        "CREATE OR REPLACE TEMP TABLE __dw_old AS SELECT hour, changed_at FROM "
                        f"{tables.PROFILE_HOURS} WHERE model = ? AND hour >= ? AND hour < ?",
                        [model, start, end],
                    ).fetchall()
                    con.execute(
                        f"DELETE FROM {tables.PROFILE_HOURS} WHERE model = ? AND hour >= ? AND hour < ?",
                        [model, start, end],
                    ).fetchall()
                    con.execute(
                        f"INSERT INTO {tables.PROFILE_HOURS} SELECT ?, h.hour, h.rows, ?, ?, "
                        "CASE WHEN h.changed OR o.changed_at IS NULL THEN ?::TIMESTAMPTZ "
                        "ELSE o.changed_at END, false FROM __dw_hours h LEFT JOIN __dw_old o "
                        "ON o.hour = h.hour",
                        [model, spec.key, now, now],
                    ).fetchall()
                    con.execute("DROP TABLE __dw_old").fetchall()
                    if also is not None:
                        also(con)
                    con.execute("COMMIT").fetchall()
                except BaseException:
                    con.execute("ROLLBACK").fetchall()
                    raise
            finally:
                con.unregister("__dw_prof")
                con.unregister("__dw_hours")
            self._ls.committed(data.nbytes)

    def _add_columns(
        self,
        model: str,
        ptable: str,
        key: str,
        old_key: str,
        start: datetime,
        end: datetime,
        data: pa.Table,
    ) -> None:
        """Add the profile rows of columns a spec gained to the hours of ``[start, end)``
        still profiled under ``old_key`` (their stored rows stay), and record them under
        ``key``, in one transaction. Hours whose record changed meanwhile (recomputed, or
        another spec) get no rows: they are what the next ``ensure`` looks at."""
        hours = [h[0] for h in self._hours_under(model, old_key, start, end)]
        if len(hours) < int((end - start) / HOUR):
            keep = pc.is_in(data.column("hour"), pa.array(hours, _TS))
            data = data.filter(keep)
        now = self._ls.now()
        with self._writer() as con:
            con.register("__dw_prof", data)
            try:
                con.execute("BEGIN TRANSACTION").fetchall()
                try:
                    con.execute(f"INSERT INTO {quote(ptable)} SELECT * FROM __dw_prof").fetchall()
                    con.execute(
                        f"UPDATE {tables.PROFILE_HOURS} SET spec = ?, computed_at = ? WHERE "
                        "model = ? AND hour >= ? AND hour < ? AND spec = ?",
                        [key, now, model, start, end, old_key],
                    ).fetchall()
                    con.execute("COMMIT").fetchall()
                except BaseException:
                    con.execute("ROLLBACK").fetchall()
                    raise
            finally:
                con.unregister("__dw_prof")
            self._ls.committed(data.nbytes)

    def _hours_under(
        self, model: str, key: str, start: datetime, end: datetime
    ) -> list[tuple[datetime]]:
        with self._reader() as cur:
            return cur.execute(
                f"SELECT hour FROM {tables.PROFILE_HOURS} WHERE model = ? AND hour >= ? AND "
                "hour < ? AND spec = ?",
                [model, as_utc(start), as_utc(end), key],
            ).fetchall()

    # -- profiles pushed by a lake job ---------------------------------------------------------
    def lake_fed(self, model: str) -> bool:
        """Whether ``model``'s hours are pushed by a lake job (see :meth:`replace_day`)."""
        with self._reader() as cur:
            row = cur.execute(
                f"SELECT count(*) FROM {tables.PROFILE_LAKE_FILES} WHERE model = ?", [model]
            ).fetchone()
        return bool(row and row[0])

    def lake_manifest(self, model: str) -> dict[date, tuple[str, list[LakeFile]]]:
        """Per pushed day: the spec key its profiles were computed under and the lake files
        they were computed from."""
        with self._reader() as cur:
            rows = cur.execute(
                f"SELECT day, spec, path, size, mtime_ns FROM {tables.PROFILE_LAKE_FILES} "
                "WHERE model = ? ORDER BY day, path",
                [model],
            ).fetchall()
        out: dict[date, tuple[str, list[LakeFile]]] = {}
        for day, spec, path, size, mtime in rows:
            files = out.setdefault(day, (spec, []))[1]
            if path is not None:
                files.append(LakeFile(path, int(size), int(mtime)))
        return out

    def replace_day(
        self,
        model: str,
        day: date,
        rows: pa.Table,
        spec_key: str,
        files: Sequence[LakeFile],
        samples: pa.Table | None = None,
        labels: pa.Table | None = None,
        sample_k: int = 0,
    ) -> int:
        """Replace the 24 hours of ``day`` with profile rows computed elsewhere (a lake job),
        and, for a format-2 spec, its sample rows and label aggregates
        (``storage.row_kernel``), and record the files they came from, in one transaction: a
        reader sees the old day or the new one, never a mix. Idempotent: the same push again
        leaves the same state. The day's hours are marked changed (late-data re-runs) only
        when its files differ from the last push's: a re-push under a new spec keeps them.

        Raises ``ValueError`` naming the problem when ``rows`` do not fit (missing or
        mistyped columns, an hour outside the day). Returns the profile rows stored.
        """
        missing = [f.name for f in PROFILE_SCHEMA if f.name not in rows.schema.names]
        if missing:
            raise ValueError(f"profile rows: columns {missing} are missing")
        try:
            rows = rows.select(PROFILE_SCHEMA.names).cast(PROFILE_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ValueError(f"profile rows: {exc}") from exc
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        if rows.num_rows:
            lo, hi = (v.as_py() for v in pc.min_max(rows.column("hour")).values())
            if lo is None or lo < start or hi >= end:
                raise ValueError(
                    f"profile rows: hours {lo} .. {hi} are not all on {day.isoformat()}"
                )
        self._table(model)  # an unknown model is refused before anything is written
        ptable = self._ensure_profile_table(model)
        seg = rows.filter(pc.equal(rows.column("column_name"), ROWS_COLUMN))
        rows_by_hour: dict[datetime, int] = {}
        for h, n in zip(
            seg.column("hour").to_pylist(), seg.column("count").to_pylist(), strict=True
        ):
            rows_by_hour[h] = rows_by_hour.get(h, 0) + int(n)
        hours = {start + i * HOUR for i in range(24)}
        manifest = pa.table(
            {
                "path": pa.array([f.path for f in files] if files else [None], pa.string()),
                "size": pa.array([f.size for f in files] if files else [None], pa.int64()),
                "mtime_ns": pa.array([f.mtime_ns for f in files] if files else [None], pa.int64()),
            }
        )

        samples = samples if samples is not None else SAMPLE_BASE.empty_table()
        labels = check_rows(
            samples,
            labels if labels is not None else LABEL_SCHEMA.empty_table(),
            start,
            end,
        )

        def record_files(con: duckdb.DuckDBPyConnection) -> None:
            write_rows(con, model, start, end, samples, labels, sample_k)
            con.execute(
                f"DELETE FROM {tables.PROFILE_LAKE_FILES} WHERE model = ? AND day = ?",
                [model, day],
            ).fetchall()
            con.register("__dw_files", manifest)
            try:
                con.execute(
                    f"INSERT INTO {tables.PROFILE_LAKE_FILES} SELECT ?, ?, ?, path, size, "
                    "mtime_ns FROM __dw_files",
                    [model, day, spec_key],
                ).fetchall()
            finally:
                con.unregister("__dw_files")

        # the stored hours carry the pushed spec key (a pushed day is never rebuilt here)
        with self._model_lock(model):
            # The same files as last pushed: only the spec changed (or the push is repeated),
            # so the rows did not; the hours keep changed_at (no late-data re-runs), as the
            # embedded build does for new bins. Other files: every hour of the day changed.
            old = self.lake_manifest(model).get(day)
            same_rows = old is not None and sorted(old[1]) == sorted(files)
            self._write_hours(
                model,
                ptable,
                _KeyedSpec(spec_key),
                start,
                end,
                rows,
                rows_by_hour,
                set() if same_rows else hours,
                record_files,
            )
        pushed: int = rows.num_rows
        return pushed

    def lake_sample(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
    ) -> pa.Table:
        """A lake-fed model's window sample from its pushed hourly bottom-k samples: the same
        rows ``LogReads.sample`` picks from the embedded rows (seed 0). ``LookupError`` names
        why not (nothing pushed, a column not sampled, ``n`` over the k the job kept)."""
        with self._reader() as cur:
            return read_sample(cur, model, start, end, columns, n, tenant_id)

    def label_aggregates(self, model: str, start: datetime, end: datetime) -> pa.Table:
        """A lake-fed model's pushed label aggregates of the hours in ``[start, end)``
        (``storage.row_kernel.LABEL_SCHEMA``)."""
        with self._reader() as cur:
            return read_labels(cur, model, start, end)

    # -- reading ----------------------------------------------------------------------------
    def profile_rows(self, model: str, start: datetime, end: datetime) -> pa.Table:
        """The stored profile rows of the hours in ``[start, end)`` as they are (schema
        :data:`storage.profile_kernel.PROFILE_SCHEMA`): what engines are compared by."""
        ptable = tables.profiles(model)
        with self._reader() as cur:
            exists = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [ptable]
            ).fetchall()[0][0]
            if not exists:
                return PROFILE_SCHEMA.empty_table()
            tbl = cur.sql(
                f"SELECT * FROM {quote(ptable)} WHERE hour >= ? AND hour < ?",
                params=[as_utc(start), as_utc(end)],
            ).to_arrow_table()
        return tbl.cast(PROFILE_SCHEMA)

    def window(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[tuple[str, str]] | None = None,
        tenant_id: str | None = None,
    ) -> dict[tuple[str, str], dict[tuple[str, str], RawProfile]]:
        """Profiles of ``[start, end)`` summed over its hours, per segment.

        Call :meth:`ensure` first. Returns ``{(tenant_id, model_version): {(column, bins_key):
        RawProfile}}``; ``(ROWS_COLUMN, "")`` holds the row count and first/last ``ts``.
        ``columns`` restricts to these (column, bins_key) pairs (the rows pseudo column is
        always included).
        """
        return self.windows(model, [(start, end)], columns, tenant_id)[0]

    def windows(
        self,
        model: str,
        bounds: Sequence[tuple[datetime, datetime]],
        columns: Sequence[tuple[str, str]] | None = None,
        tenant_id: str | None = None,
    ) -> list[dict[tuple[str, str], dict[tuple[str, str], RawProfile]]]:
        """:meth:`window` of each ``[start, end)`` of ``bounds`` (the same sums), the profile
        rows of all of them read at once (a block of a backfill's windows). Ranges of more than
        ``_WINDOW_BLOCK_ROWS`` profile rows are split, so memory does not grow with them."""
        if not bounds:
            return []
        ptable = tables.profiles(model)
        utc = [(as_utc(s), as_utc(e)) for s, e in bounds]
        where = "hour >= ? AND hour < ?"
        params: list[Any] = [min(s for s, _ in utc), max(e for _, e in utc)]
        if tenant_id is not None:
            where += " AND tenant_id = ?"
            params.append(tenant_id)
        wanted = None if columns is None else {*columns, (ROWS_COLUMN, "")}
        with self._reader() as cur:
            exists = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [ptable]
            ).fetchall()[0][0]
            if not exists:
                return [{} for _ in bounds]
            if len(utc) > 1:
                total = cur.execute(
                    f"SELECT count(*) FROM {quote(ptable)} WHERE {where}", params
                ).fetchall()[0][0]
                if total > _WINDOW_BLOCK_ROWS:
                    half = len(bounds) // 2
                    return self.windows(model, bounds[:half], columns, tenant_id) + self.windows(
                        model, bounds[half:], columns, tenant_id
                    )
            tbl = cur.sql(
                f"SELECT epoch_us(hour) AS us, tenant_id, model_version, column_name, bins_key, "
                f"count, missing, n_finite, min, max, sum, sum_sq, counts, categories FROM "
                f"{quote(ptable)} WHERE {where}",
                params=params,
            ).to_arrow_table()
        if len(utc) == 1:
            return [_summed(tbl, wanted)]
        # each window's rows in table order, as a read of that window alone gives them: rows
        # sorted by window once (stably), then one slice per window
        us = tbl.column("us").to_numpy()
        starts = np.array([_epoch_us(s) for s, _ in utc], dtype=np.int64)
        ends = np.array([_epoch_us(e) for _, e in utc], dtype=np.int64)
        order = np.argsort(starts, kind="stable")
        if np.any(ends[order][:-1] > starts[order][1:]):  # overlapping windows: one by one
            return [
                _summed(tbl.filter(pa.array((us >= s) & (us < e))), wanted)
                for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
            ]
        w = order[np.clip(np.searchsorted(starts[order], us, side="right") - 1, 0, None)]
        w[(us < starts[w]) | (us >= ends[w])] = len(utc)  # in no window (a gap between them)
        by_window = np.argsort(w, kind="stable")
        tbl = tbl.take(pa.array(by_window))
        cuts = np.searchsorted(w[by_window], np.arange(len(utc) + 1))
        return [_summed(tbl.slice(cuts[i], cuts[i + 1] - cuts[i]), wanted) for i in range(len(utc))]

    def row_counts(
        self, model: str, start: datetime, end: datetime, step: timedelta
    ) -> dict[tuple[str, str], list[int]]:
        """Rows per window of ``step`` in ``[start, end)`` from the stored hourly profiles
        (windows without profiled hours are left out). Keys as :meth:`last_ts`: per tenant,
        per model version and for all."""
        return self.row_counts_windows(model, [(start, end)], step)[0]

    def row_counts_windows(
        self, model: str, ranges: Sequence[tuple[datetime, datetime]], step: timedelta
    ) -> list[dict[tuple[str, str], list[int]]]:
        """:meth:`row_counts` of each ``[start, end)`` of ``ranges``, read at once for all of
        them (the baselines of a block of a backfill's windows)."""
        if not ranges:
            return []
        ptable = tables.profiles(model)
        lo, hi = as_utc(min(s for s, _ in ranges)), as_utc(max(e for _, e in ranges))
        with self._reader() as cur:
            exists = cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [ptable]
            ).fetchall()[0][0]
            if not exists:
                return [{} for _ in ranges]
            rows = cur.execute(
                f"SELECT tenant_id, model_version, hour, sum(count) FROM {quote(ptable)} "
                "WHERE column_name = ? AND hour >= ? AND hour < ? GROUP BY ALL",
                [ROWS_COLUMN, lo, hi],
            ).fetchall()
            profiled = cur.execute(
                f"SELECT hour FROM {tables.PROFILE_HOURS} WHERE model = ? AND hour >= ? AND hour < ?",
                [model, lo, hi],
            ).fetchall()
        # each range's rows picked at once, in read order (every range scanned all the rows
        # of the block in Python before: O(windows x block) per block)
        row_us = np.array([_epoch_us(r[2]) for r in rows], np.int64)
        hour_us = np.array([_epoch_us(h) for (h,) in profiled], np.int64)
        out = []
        for start, end in ranges:
            s, e = _epoch_us(as_utc(start)), _epoch_us(as_utc(end))
            mine = [rows[i] for i in np.flatnonzero((row_us >= s) & (row_us < e)).tolist()]
            hours = [profiled[i] for i in np.flatnonzero((hour_us >= s) & (hour_us < e)).tolist()]
            out.append(_row_counts(mine, hours, start, end, step))
        return out

    def label_hours(self, model: str, since: datetime) -> dict[datetime, datetime]:
        """Hour of the inference -> newest label ``received_at``, for labels received after
        ``since`` (late labels re-run realized performance)."""
        inf = quote(self._table(model))
        lab = self._ls.table(model, "labels")
        # Every label that may label a row (one its own tenant's label overrides too: at worst
        # a window is re-run for nothing)
        with self._reader() as cur:
            rows = cur.execute(
                f"SELECT date_trunc('hour', i.ts), max(l.received_at) FROM {quote(lab)} l JOIN "
                f"{inf} i ON {label_join(lab).matches} WHERE l.received_at > ? GROUP BY 1",
                [as_utc(since)],
            ).fetchall()
        return {h: r for h, r in rows}


def _groups(
    tbl: pa.Table, wanted: set[tuple[str, str]] | None
) -> dict[tuple[str, str, str, str], npt.NDArray[Any]]:
    """The rows (ascending) of each (tenant, version, column, bins_key) of stored profile rows,
    in the order of each key's first row; only the (column, bins_key) ``wanted``."""
    if tbl.num_rows == 0:
        return {}
    codes, names = [], []
    for col in ("tenant_id", "model_version", "column_name", "bins_key"):
        enc = tbl.column(col).combine_chunks().dictionary_encode()
        codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64))
        names.append(enc.dictionary.to_pylist())
    key = codes[0]
    for c, n in zip(codes[1:], names[1:], strict=True):
        key = key * len(n) + c
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rows = np.argsort(inverse, kind="stable")
    cuts = np.r_[0, np.cumsum(np.bincount(inverse))]
    out: dict[tuple[str, str, str, str], npt.NDArray[Any]] = {}
    for g in np.argsort(first, kind="stable"):
        i = first[g]
        t, v, c, k = (n[int(code[i])] for n, code in zip(names, codes, strict=True))
        if wanted is None or (c, k) in wanted:
            out[(t, v, c, k)] = rows[cuts[g] : cuts[g + 1]]
    return out


def _summed(
    tbl: pa.Table, wanted: set[tuple[str, str]] | None
) -> dict[tuple[str, str], dict[tuple[str, str], RawProfile]]:
    """Stored profile rows summed per segment and (column, bins_key) (``ProfileStore.window``)."""
    out: dict[tuple[str, str], dict[tuple[str, str], RawProfile]] = {}
    # Arrow, not fetchall(): the histogram lists stay one flat int64 buffer (fetchall built a
    # Python list per hour and column). Rows are grouped first, then each group's numbers
    # are added at once.
    groups = _groups(tbl, wanted)
    if not groups:
        return out
    num = {
        name: tbl.column(name).to_numpy(zero_copy_only=False)
        for name in ("count", "missing", "n_finite", "min", "max", "sum", "sum_sq")
    }
    lists = tbl.column("counts").combine_chunks()
    offsets = lists.offsets.to_numpy()
    flat = lists.values.to_numpy(zero_copy_only=False)
    # the category names and counts as Python values at once (one conversion per row and
    # value was most of a window's time)
    cat_names = tbl.column("categories").to_pylist()
    stats = _group_stats(num, list(groups.values()))
    for g, ((t, v, c, k), idx) in enumerate(groups.items()):
        n, miss, n_finite, lo, hi, total, total_sq = stats[g]
        if cat_names[idx[0]] is not None:  # categorical: merge the value counts
            cats: dict[str, int] = {}
            for i in idx.tolist():
                counts = flat[offsets[i] : offsets[i + 1]].tolist()
                for name, cnt in zip(cat_names[i], counts, strict=True):
                    cats[name] = cats.get(name, 0) + cnt
            prof = RawProfile(n, miss, 0, categories=cats)
        else:
            counts = None
            if c != ROWS_COLUMN:
                starts = offsets[idx]
                width = int(offsets[idx[0] + 1] - starts[0])
                if np.all(offsets[idx + 1] - starts == width):  # one bin set: one gather
                    counts = flat[starts[:, None] + np.arange(width)].sum(axis=0, dtype=np.int64)
                else:  # (ragged lists raise here, as they did)
                    counts = np.add.reduce(
                        [flat[offsets[i] : offsets[i + 1]] for i in idx], dtype=np.int64
                    )
            prof = RawProfile(n, miss, n_finite, lo, hi, total, total_sq, counts)
        out.setdefault((t, v), {})[(c, k)] = prof
    return out


def _group_stats(
    num: dict[str, npt.NDArray[Any]], groups: list[npt.NDArray[Any]]
) -> list[tuple[int, int, int, float | None, float | None, float, float]]:
    """(count, missing, n_finite, min, max, sum, sum of squares) of each group of rows, as
    ``int(a[idx].sum())``, the min/max of the non-NaN values (None without) and
    ``float(np.nansum(a[idx]))`` give them, bit for bit: the groups of one size are gathered
    into a matrix and reduced along its rows (each row is reduced as the one-dimensional array
    it was, the same pairwise summation), one numpy call per size and statistic instead of
    seven per group."""
    out: list[Any] = [None] * len(groups)
    by_size: dict[int, list[int]] = {}
    for g, idx in enumerate(groups):
        by_size.setdefault(len(idx), []).append(g)
    for members in by_size.values():
        rows = np.stack([groups[g] for g in members])
        ints = [num[name][rows].sum(axis=1).tolist() for name in ("count", "missing", "n_finite")]
        lo, hi = num["min"][rows], num["max"][rows]
        has_lo, has_hi = (~np.isnan(lo)).any(axis=1).tolist(), (~np.isnan(hi)).any(axis=1).tolist()
        los = np.fmin.reduce(lo, axis=1).tolist()
        his = np.fmax.reduce(hi, axis=1).tolist()
        sums = []
        for name in ("sum", "sum_sq"):
            a = num[name][rows]
            sums.append(np.where(np.isnan(a), 0.0, a).sum(axis=1).tolist())
        for j, g in enumerate(members):
            out[g] = (
                int(ints[0][j]),
                int(ints[1][j]),
                int(ints[2][j]),
                float(los[j]) if has_lo[j] else None,
                float(his[j]) if has_hi[j] else None,
                float(sums[0][j]),
                float(sums[1][j]),
            )
    return out


def _row_counts(
    rows: list[Any], profiled: list[Any], start: datetime, end: datetime, step: timedelta
) -> dict[tuple[str, str], list[int]]:
    """``ProfileStore.row_counts`` of ``[start, end)`` from (tenant, version, hour, rows) and
    (profiled hour,) rows read for a range holding it."""
    n_windows = int((end - start) / step)
    covered = [False] * n_windows
    for (h,) in profiled:
        if start <= h < end:
            covered[int((h - start) / step)] = True
    per: dict[tuple[str, str], list[int]] = {}
    for t, v, h, n in rows:
        if not start <= h < end:
            continue
        i = int((h - start) / step)
        for key in ((str(t), ALL), (ALL, str(v)), (ALL, ALL)):
            per.setdefault(key, [0] * n_windows)[i] += int(n)
    return {k: [v[i] for i in range(n_windows) if covered[i]] for k, v in per.items()}


# Profile rows of one windows() read
_WINDOW_BLOCK_ROWS = 1_000_000


def _epoch_us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


_TS = TS
# The hour of a row as epoch hours. Floating-point: DuckDB divides BIGINTs by a constant with a
# real division instruction (a third of the CPU of the segment query went there). Exact for
# 1730-2209: epoch_us converts to a double exactly (< 2**53), and a quotient's rounding error
# (< 2.4e-10) stays below the distance of any non-integer quotient from an integer (1 us over
# an hour, 2.8e-10). tests/storage/test_profiles.py checks it at hour boundaries.
_EPOCH_HOUR = "CAST(floor(epoch_us(ts) / 3600000000.0) AS BIGINT)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _hour_of(index: int) -> datetime:
    return _EPOCH + int(index) * HOUR


def _hour_index(hour: datetime) -> int:
    return int((hour - _EPOCH) // HOUR)


_GROUP_HASH = "hash(tenant_id, coalesce(model_version, ''))"
_PROFILE_SCHEMA = PROFILE_SCHEMA


def _warm_up() -> None:
    try:
        from storage import profile_kernels

        profile_kernels.warm_up()
    except Exception:  # the first build loads them again and raises there
        pass


def _category_sql(table: str, where: str, categorical: list[str], *, hashed: bool) -> str:
    """Counts of every value of every categorical column per (hour, segment), in one scan: one
    grouping set per column. Columns: ci (index into ``categorical``), hour (epoch hours), the
    segment as ``gh`` (its 64-bit hash: grouping by one integer instead of two strings is 20 %
    cheaper) or, when ``hashed`` is false, as ``tenant_id, mv``; v (the value, NULL = missing),
    n. Sorted by column, hour, segment and value with NULL first."""
    seg = f"{_GROUP_HASH} AS gh" if hashed else "tenant_id, coalesce(model_version, '') AS mv"
    seg_cols = "gh" if hashed else "tenant_id, mv"
    vals = ", ".join(f"CAST({quote(c)} AS VARCHAR) AS v{i}" for i, c in enumerate(categorical))
    m = len(categorical)
    sets = ", ".join(f"(hour, {seg_cols}, v{i})" for i in range(m))
    # which column a grouping set is about: its bit is the only 0 in the grouping mask
    mask = f"grouping({', '.join(f'v{i}' for i in range(m))})"
    ones = (1 << m) - 1
    ci = " ".join(f"WHEN {ones ^ (1 << (m - 1 - i))} THEN {i}" for i in range(m))
    val = " ".join(f"WHEN {ones ^ (1 << (m - 1 - i))} THEN v{i}" for i in range(m))
    return (
        f"SELECT CASE {mask} {ci} END AS ci, hour, {seg_cols}, "
        f"CASE {mask} {val} END AS v, count(*) AS n FROM "
        f"(SELECT {_EPOCH_HOUR} AS hour, {seg}, {vals} FROM {table} WHERE {where}) "
        f"GROUP BY GROUPING SETS ({sets}) "
        f"ORDER BY ci, hour, {seg_cols}, v NULLS FIRST"
    )


def _categorical_rows(
    counts: pa.Table,
    categorical: list[str],
    names: dict[tuple[int, int], tuple[str, str]] | None,
) -> pa.Table:
    """The categorical columns' profile rows from the category counts, column-wise.

    ``counts`` (see :func:`_category_sql`) is sorted by column index, group and value with the
    NULL value (missing) first, so each group is one run of rows and its categories come out
    sorted by code point (UTF-8 byte order), as ``sorted()`` would give. With ``names``, the
    segments are hashes named by ``names[(hour, hash)] = (tenant, version)``; a hash not there
    (rows appended after the segments were read) is left out, as the numeric rows leave it."""
    if counts.num_rows == 0:
        return _PROFILE_SCHEMA.empty_table()
    ci = counts.column("ci").to_numpy().astype(np.int64)
    hour = counts.column("hour").to_numpy().astype(np.int64)
    value = counts.column("v").combine_chunks()
    n = counts.column("n").to_numpy().astype(np.int64)
    new = np.ones(counts.num_rows, bool)
    new[1:] = (ci[1:] != ci[:-1]) | (hour[1:] != hour[:-1])
    if names is not None:
        gh = counts.column("gh").to_numpy().astype(np.uint64)
        new[1:] |= gh[1:] != gh[:-1]
    else:
        for name in ("tenant_id", "mv"):
            col = counts.column(name).combine_chunks()
            new[1:] |= pc.not_equal(col.slice(1), col.slice(0, len(col) - 1)).to_numpy(
                zero_copy_only=False
            )
    starts = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    is_null = value.is_null().to_numpy(zero_copy_only=False)
    n_groups = starts.size
    missing = np.bincount(gid[is_null], weights=n[is_null], minlength=n_groups).astype(np.int64)
    present = np.bincount(gid[~is_null], weights=n[~is_null], minlength=n_groups).astype(np.int64)
    # list offsets into the non-null rows: a group's categories are one contiguous run there
    kept = np.concatenate([[0], np.cumsum(~is_null)])
    offsets = pa.array(kept[np.append(starts, counts.num_rows)].astype(np.int32))
    keep = pa.array(~is_null)
    first = pa.array(starts)
    known = np.ones(n_groups, bool)
    if names is not None:
        seg = [names.get(k) for k in zip(hour[starts].tolist(), gh[starts].tolist(), strict=True)]
        known = np.array([x is not None for x in seg], bool)
        tenant = pa.array([x[0] if x else "" for x in seg], pa.string())
        mv = pa.array([x[1] if x else "" for x in seg], pa.string())
    else:
        tenant = counts.column("tenant_id").combine_chunks().take(first)
        mv = counts.column("mv").combine_chunks().take(first)
    columns = np.array(categorical, dtype=object)[ci[starts]]
    rows = pa.table(
        [
            pa.array(hour[starts] * 3_600_000_000).cast(_TS),  # epoch hours -> timestamps
            tenant,
            mv,
            pa.array(columns, pa.string()),
            pa.array(np.full(n_groups, "", dtype=object), pa.string()),
            pa.array(present),
            pa.array(missing),
            pa.array(np.zeros(n_groups, np.int64)),
            pa.nulls(n_groups, pa.float64()),
            pa.nulls(n_groups, pa.float64()),
            pa.array(np.zeros(n_groups)),
            pa.array(np.zeros(n_groups)),
            pa.ListArray.from_arrays(offsets, pa.array(n).filter(keep)),
            pa.ListArray.from_arrays(offsets, value.filter(keep).cast(pa.string())),
        ],
        schema=_PROFILE_SCHEMA,
    )
    return rows if known.all() else rows.filter(pa.array(known))


class _HashGrouper:
    """Group number of each streamed row from (hour offset, 64-bit segment hash), kept across
    the batches of one scan: a sorted array of the segment hashes seen and a dense
    (hour offset x segment) table of group numbers, so a batch costs a few vectorised lookups
    (``np.unique`` on every batch cost 50 ms per 262,144 rows). New groups are appended to
    ``keymap`` as ``(hour offset, segment hash) -> group number``, in order of appearance."""

    def __init__(self, keymap: dict[tuple[Any, ...], int]) -> None:
        self.keymap = keymap
        self.known = np.empty(0, np.uint64)  # sorted segment hashes
        self.table = np.full((0, 0), -1, np.int64)  # [hour offset, segment code] -> group
        self.by_low: npt.NDArray[Any] | None = None

    def _codes(self, gh: npt.NDArray[Any]) -> npt.NDArray[Any]:
        if self.known.size:
            if self.by_low is not None:  # low 16 bits -> code: a lookup, not a binary search
                code = self.by_low[(gh & np.uint64(0xFFFF)).astype(np.intp)]
            else:
                code = np.searchsorted(self.known, gh)
                np.minimum(code, self.known.size - 1, out=code)
            found = self.known[code] == gh
            if found.all():
                return code
            new = np.unique(gh[~found])
        else:
            new = np.unique(gh)
        known = np.union1d(self.known, new)
        # re-index the table's segment axis to the new order of the sorted hashes
        table = np.full((self.table.shape[0], known.size), -1, np.int64)
        table[:, np.searchsorted(known, self.known)] = self.table
        self.known, self.table = known, table
        low = (known & np.uint64(0xFFFF)).astype(np.intp)
        self.by_low = None
        if np.unique(low).size == low.size:  # else two segments share low bits: binary search
            self.by_low = np.zeros(1 << 16, np.intp)
            self.by_low[low] = np.arange(known.size)
        return np.searchsorted(self.known, gh)

    def ids(self, batch: pa.RecordBatch) -> npt.NDArray[Any]:
        hi = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        gh = batch.column(1).to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
        if hi.size == 0:
            return np.empty(0, np.int64)
        code = self._codes(gh)
        rows = int(hi.max()) + 1
        if rows > self.table.shape[0]:
            grown = np.full((rows, self.table.shape[1]), -1, np.int64)
            grown[: self.table.shape[0]] = self.table
            self.table = grown
        n_segs = self.table.shape[1]
        combo = hi * n_segs + code  # row-major index into the table
        flat_table = self.table.reshape(-1)  # a view: writes land in the table
        gid = flat_table[combo]
        missing = gid < 0
        if missing.any():  # new (hour, segment) pairs: counted, not sorted (O(rows))
            new = np.flatnonzero(np.bincount(combo[missing], minlength=flat_table.size))
            for i in new.tolist():
                h, c = divmod(i, n_segs)
                flat_table[i] = self.keymap.setdefault((h, int(self.known[c])), len(self.keymap))
            gid = flat_table[combo]
        result: npt.NDArray[Any] = gid
        return result


def _batch_groups(batch: pa.RecordBatch, keymap: dict[tuple[Any, ...], int]) -> npt.NDArray[Any]:
    """Group number of each row of a batch keyed by (hour offset, tenant, version) strings (the
    path after a segment-hash collision; hashed batches go through :class:`_HashGrouper`); new
    groups are appended to ``keymap``."""
    hi = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
    # (tenant, version) as one string; "\x1f" cannot occur in a tenant id
    joined = pc.binary_join_element_wise(batch.column(1), batch.column(2), "\x1f")
    enc = joined.dictionary_encode()
    inv_s = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = [tuple(v.split("\x1f", 1)) for v in enc.dictionary.to_pylist()]
    combo = hi * len(names) + inv_s
    uniq, inverse = np.unique(combo, return_inverse=True)
    table = np.empty(uniq.size, np.int64)
    for i, u in enumerate(uniq.tolist()):
        table[i] = keymap.setdefault((u // len(names), *names[u % len(names)]), len(keymap))
    return table[inverse]
