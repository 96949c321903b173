"""Raw-log reads the monitors need besides profiles: bounded samples, labelled rows,
operational figures (freshness, label coverage, quarantine) and references.

:class:`LogReads` is the DuckDB implementation of ``monitor.ports.LogReader`` (structurally: this
package does not import ``monitor``). It reads through :class:`~storage.logstore.LogStore`'s
public API (``reader()``, ``table()``), like every other module of this package.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from storage import tables
from storage.logstore import LogStore, label_join
from storage.tables import quote
from storage.types import ALL, as_utc

__all__ = ["LogReads"]


class LogReads:
    """Bounded, read-only queries over one :class:`LogStore` (thread-safe: each call opens its
    own read cursor)."""

    def __init__(self, logstore: LogStore) -> None:
        self._ls = logstore

    # -- references ---------------------------------------------------------------------------
    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        """(name, version, rows) for every stored reference version of ``model``."""
        return self._ls.list_references(model)

    def read_reference(self, model: str, name: str, version: int | None = None) -> pa.Table:
        """A reference version (the latest unless ``version``); KeyError names what exists."""
        return self._ls.read_reference(model, name, version)

    # -- one column, bounded (the dashboard's distributions) -------------------------------------
    def column_values(
        self,
        model: str,
        column: str,
        start: datetime,
        end: datetime,
        *,
        tenant_id: str | None = None,
        limit: int,
    ) -> pa.Array[Any]:
        """The first ``limit`` values of ``column`` in ``[start, end)`` (by ``ts`` then
        ``request_id``), NULLs included."""
        table = self._ls.read_inferences(
            model, start, end, tenant_id=tenant_id, columns=[column], limit=limit
        )
        return table.column(column).combine_chunks()

    def reference_values(
        self, model: str, name: str, column: str, *, limit: int
    ) -> pa.Array[Any] | None:
        """The first ``limit`` values of ``column`` in the latest version of reference ``name``
        (upload order); None when the reference has no such column. KeyError when there is no
        such reference."""
        table = self._ls.read_reference(model, name)
        if column not in table.column_names:
            return None
        return table.column(column).slice(0, limit).combine_chunks()

    # -- samples and labelled rows ----------------------------------------------------------------
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
        """A bounded uniform random sample (at most ``n`` rows, the same for the same ``seed``)
        of the window's rows, with ``tenant_id``, ``model_version`` and ``columns``.

        The rows with the ``n`` smallest portable sample keys of ``request_id``
        (``storage.row_kernel.sample_keys``: FNV-1a 64 + fmix64 of ``id#seed``; ties by
        request_id), in that order. Not ``USING SAMPLE reservoir(n ROWS) REPEATABLE (seed)``:
        it is only repeatable on one thread, and a re-run of a window must give the same
        results. Not DuckDB's ``hash()``: a lake job's engines (DuckDB, Spark) must pick the
        same rows (the bottom-k of a window is the bottom-k of its hours' bottom-k), so the
        key is one documented function computed by the kernel.
        """
        return self.samples(model, [(start, end)], columns, n, tenant_id=tenant_id, seed=seed)[0]

    def samples(
        self,
        model: str,
        windows: Sequence[tuple[datetime, datetime]],
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
        seed: int = 0,
    ) -> list[pa.Table]:
        """:meth:`sample` of each window ``[start, end)``: the same rows in the same order, read
        with two queries for all the windows (a block of a backfill) instead of two each.

        The request ids of the windows' whole range are read once (in table order, as a
        window's own read gives them), each window's bottom-``n`` picked from its rows, and
        the picked rows of every window fetched at once. Ranges of more than
        ``_BLOCK_ROWS`` rows are split, so memory does not grow with the windows."""
        if not windows:
            return []
        bounds = [(as_utc(s), as_utc(e)) for s, e in windows]
        lo, hi = min(s for s, _ in bounds), max(e for _, e in bounds)
        table = quote(self._ls.table(model))
        where = "ts >= ? AND ts < ?"
        params: list[Any] = [lo, hi]
        if tenant_id is not None:
            where += " AND tenant_id = ?"
            params.append(tenant_id)
        halves = self._halves(model, windows, tenant_id)
        if halves is not None:
            kw: dict[str, Any] = {"tenant_id": tenant_id, "seed": seed}
            return [x for h in halves for x in self.samples(model, h, columns, n, **kw)]
        cols = ", ".join(["tenant_id", "model_version", *(f"t.{quote(c)}" for c in columns)])
        with self._ls.reader() as cur:
            ids = cur.sql(
                f"SELECT rowid AS r, request_id, epoch_us(ts) AS us FROM {table} WHERE {where}",
                params=params,
            ).to_arrow_table()
            keys = _sample_keys(ids.column("request_id"), seed)
            us = ids.column("us").to_numpy()
            # each window's rows are one slice of the rows sorted by time, found by binary
            # search, not a scan of the block per window
            by_time = np.argsort(us, kind="stable")
            cuts = np.searchsorted(
                us[by_time], [_epoch_us(t) for bound in bounds for t in bound]
            ).reshape(-1, 2)
            rowid = ids.column("r").to_numpy()
            picked = [_bottom_k(ids, rowid, by_time[a:b], keys, n) for a, b in cuts.tolist()]
            rowids = np.unique(np.concatenate(picked))
            cur.register("__dw_picks", pa.table({"r": rowids}))
            try:
                rows_ = cur.sql(
                    f"SELECT p.r AS __dw_r, {cols} FROM {table} t JOIN __dw_picks p "
                    "ON t.rowid = p.r ORDER BY p.r"
                ).to_arrow_table()
            finally:
                cur.unregister("__dw_picks")
        found = rows_.column("__dw_r").to_numpy()
        rows_ = rows_.drop_columns(["__dw_r"])
        out = []
        for want in picked:
            at = np.minimum(np.searchsorted(found, want), max(found.size - 1, 0))
            # a row deleted between the two reads is left out, as a join leaves it out
            at = at[found[at] == want] if found.size else at[:0]
            out.append(rows_.take(pa.array(at)))
        return out

    # -- operational reads ----------------------------------------------------------------------
    def first_ts(self, model: str) -> datetime | None:
        """Timestamp of the model's oldest inference row."""
        with self._ls.reader() as cur:
            row = cur.execute(f"SELECT min(ts) FROM {quote(self._ls.table(model))}").fetchall()
        first: datetime | None = row[0][0]
        return first

    def last_ts(
        self, model: str, before: datetime, since: datetime | None = None
    ) -> dict[tuple[str, str], datetime]:
        """Newest row ``ts`` before ``before`` — freshness. Keys: ``(tenant, "*")`` per tenant,
        ``("*", version)`` per model version (no version: ``""``) and ``("*", "*")``. With
        ``since``, only rows at or after it are read (segments without any are left out)."""
        where, params = "ts < ?", [as_utc(before)]
        if since is not None:
            where, params = "ts >= ? AND ts < ?", [as_utc(since), as_utc(before)]
        with self._ls.reader() as cur:
            rows = cur.execute(
                f"SELECT {_SEGMENT_KEYS}, max(ts) FROM (SELECT tenant_id, coalesce(model_version, "
                f"'') AS mv, ts FROM {quote(self._ls.table(model))} WHERE {where}) "
                f"GROUP BY {_SEGMENT_SETS}",
                params,
            ).fetchall()
        return {(str(t), str(v)): ts for t, v, ts in rows if ts is not None}

    def last_ts_windows(
        self, model: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[dict[tuple[str, str], datetime]]:
        """:meth:`last_ts` of each ``[since, before)`` of ``ranges`` (freshness of a block of a
        backfill's windows), read at once: the newest ``ts`` per segment of each stretch between
        consecutive bounds, then the newest of a range's stretches (a max: the same value)."""
        if not ranges:
            return []
        cuts = sorted({as_utc(t) for r in ranges for t in r})
        stretches = list(pairwise(cuts))
        if not stretches:
            return [{} for _ in ranges]
        with self._over_windows(stretches) as (cur, bounds):
            rows = cur.execute(
                f"SELECT w, {_SEGMENT_KEYS}, max(ts) FROM (SELECT win.w, tenant_id, "
                f"coalesce(model_version, '') AS mv, ts FROM {quote(self._ls.table(model))} "
                "JOIN __dw_windows win ON ts >= win.s AND ts < win.e WHERE ts >= ? AND ts < ?) "
                "GROUP BY GROUPING SETS ((w, tenant_id), (w, mv), (w))",
                bounds,
            ).fetchall()
        newest: list[dict[tuple[str, str], datetime]] = [{} for _ in stretches]
        for w, t, v, ts in rows:
            if ts is not None:
                newest[w][(str(t), str(v))] = ts
        out = []
        for since, before in ranges:
            last: dict[tuple[str, str], datetime] = {}
            lo, hi = as_utc(since), as_utc(before)
            for (s, e), segs in zip(stretches, newest, strict=True):
                if lo <= s and e <= hi:
                    for seg, ts in segs.items():
                        if seg not in last or ts > last[seg]:
                            last[seg] = ts
            out.append(last)
        return out

    def label_stats(
        self, model: str, start: datetime, end: datetime
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Rows, labelled rows and mean label delay (s, label received - inference ts) of the
        window's inferences. Keys as :meth:`last_ts`: per tenant, per model version and all."""
        return self.label_stats_windows(model, [(start, end)])[0]

    def label_stats_windows(
        self, model: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[dict[tuple[str, str], dict[str, Any]]]:
        """:meth:`label_stats` of each window ``[start, end)``, the labels joined once for all
        of them (a block of a backfill: each window's own read joins every label of the
        model). Ranges of more than ``_BLOCK_ROWS`` rows are split."""
        if not windows:
            return []
        halves = self._halves(model, windows)
        if halves is not None:
            return [x for h in halves for x in self.label_stats_windows(model, h)]
        inf, lj = quote(self._ls.table(model)), label_join(self._ls.table(model, "labels"))
        with self._over_windows(windows) as (cur, bounds):
            rows = cur.execute(
                # the delay in whole microseconds: their sum is exact, so the mean does not
                # depend on the order rows are added in (alone or with other windows)
                f"SELECT w, {_SEGMENT_KEYS}, count(*), count(label), avg(delay) / 1e6 FROM ("
                f"SELECT win.w, i.tenant_id, coalesce(i.model_version, '') AS mv, "
                f"{lj.label} AS label, epoch_us({lj.received_at}) - epoch_us(i.ts) AS delay "
                f"FROM {inf} i JOIN __dw_windows win ON i.ts >= win.s AND i.ts < win.e"
                f"{lj.joins} WHERE i.ts >= ? AND i.ts < ?) "
                "GROUP BY GROUPING SETS ((w, tenant_id), (w, mv), (w))",
                bounds,
            ).fetchall()
        out: list[dict[tuple[str, str], dict[str, Any]]] = [{} for _ in windows]
        for w, t, v, n, k, d in rows:
            out[w][(str(t), str(v))] = {"rows": int(n), "labelled": int(k), "delay_s": d}
        for stats in out:  # a window without rows: the grand total of nothing, as on its own
            stats.setdefault((ALL, ALL), {"rows": 0, "labelled": 0, "delay_s": None})
        return out

    def labelled(
        self,
        model: str,
        start: datetime,
        end: datetime,
        prediction: str,
        scores: Sequence[str] = (),
    ) -> pa.Table:
        """The window's inferences that have a label: tenant_id, model_version, prediction,
        scores and ``label``."""
        return self.labelled_windows(model, [(start, end)], prediction, scores)[0]

    def labelled_windows(
        self,
        model: str,
        windows: Sequence[tuple[datetime, datetime]],
        prediction: str,
        scores: Sequence[str] = (),
    ) -> list[pa.Table]:
        """:meth:`labelled` of each window ``[start, end)``, the labels joined once for all of
        them (see :meth:`label_stats_windows`)."""
        if not windows:
            return []
        halves = self._halves(model, windows)
        if halves is not None:
            return [x for h in halves for x in self.labelled_windows(model, h, prediction, scores)]
        inf, lj = quote(self._ls.table(model)), label_join(self._ls.table(model, "labels"))
        cols = ", ".join(f"i.{quote(c)}" for c in (prediction, *scores))
        with self._over_windows(windows) as (cur, bounds):
            table = cur.sql(
                f"SELECT win.w AS __dw_w, i.tenant_id, coalesce(i.model_version, '') AS "
                f"model_version, {cols}, {lj.label} AS label FROM {inf} i "
                f"JOIN __dw_windows win ON i.ts >= win.s AND i.ts < win.e{lj.joins} "
                # in table order: a window's rows come in the same order read alone or with
                # others (float sums of its metrics do not depend on the join)
                f"WHERE i.ts >= ? AND i.ts < ? AND {lj.label} IS NOT NULL ORDER BY i.rowid",
                params=bounds,
            ).to_arrow_table()
        w = table.column("__dw_w").to_numpy()
        table = table.drop_columns(["__dw_w"])
        if len(windows) == 1:
            return [table]
        return [table.filter(pa.array(w == i)) for i in range(len(windows))]

    @contextmanager
    def _over_windows(
        self, windows: Sequence[tuple[datetime, datetime]]
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[Any]]]:
        """A read cursor on which ``windows`` are the table ``__dw_windows`` (``w``: the
        window's index, ``s``/``e``: its bounds) to join, and the bounds of their whole range
        (to give the scan its ``ts`` filter)."""
        utc = [(as_utc(s), as_utc(e)) for s, e in windows]
        table = pa.table(
            {
                "w": pa.array(range(len(utc)), pa.int64()),
                "s": pa.array([s for s, _ in utc], pa.timestamp("us", tz="UTC")),
                "e": pa.array([e for _, e in utc], pa.timestamp("us", tz="UTC")),
            }
        )
        with self._ls.reader() as cur:
            cur.register("__dw_windows", table)
            try:
                yield cur, [min(s for s, _ in utc), max(e for _, e in utc)]
            finally:
                cur.unregister("__dw_windows")

    def _halves(
        self, model: str, windows: Sequence[tuple[datetime, datetime]], tenant_id: str | None = None
    ) -> list[Sequence[tuple[datetime, datetime]]] | None:
        """The two halves of ``windows`` to read apart when their range holds more than
        ``_BLOCK_ROWS`` rows (of ``tenant_id``); None when they are read at once."""
        if len(windows) < 2:
            return None
        where = "ts >= ? AND ts < ?"
        params: list[Any] = [as_utc(min(s for s, _ in windows)), as_utc(max(e for _, e in windows))]
        if tenant_id is not None:
            where += " AND tenant_id = ?"
            params.append(tenant_id)
        with self._ls.reader() as cur:
            total = cur.execute(
                f"SELECT count(*) FROM {quote(self._ls.table(model))} WHERE {where}", params
            ).fetchall()[0][0]
        if int(total) <= _BLOCK_ROWS:
            return None
        half = len(windows) // 2
        return [windows[:half], windows[half:]]

    def quarantined(self, model: str, start: datetime, end: datetime) -> dict[str, int]:
        """Quarantined rows of this model received in ``[start, end)``, per tenant and all
        (``"*"``). Not per model version: a rejected row may not have a readable one."""
        with self._ls.reader() as cur:
            rows = cur.execute(
                f"SELECT coalesce(tenant_id, '?') AS t, count(*) FROM {tables.QUARANTINE} WHERE model = ? "
                "AND received_at >= ? AND received_at < ? GROUP BY ALL",
                [model, as_utc(start), as_utc(end)],
            ).fetchall()
        out = {str(t): int(n) for t, n in rows}
        out[ALL] = sum(out.values())
        return out


# Operational reads group a subquery with columns ``tenant_id`` and ``mv`` (the model version,
# "" when none) by tenant, by version and over everything; the grouped-away side reads "*".
# Rows of one read of several windows (samples: request ids and their keys held at once,
# about 50 bytes a row; labelled rows)
_BLOCK_ROWS = 2_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _sample_keys(ids: Any, seed: int) -> Any:
    from storage.row_kernel import sample_keys

    return sample_keys(ids, seed)


def _bottom_k(ids: pa.Table, rowid: Any, inside: Any, keys: Any, n: int) -> Any:
    """The ``rowid``s (``rowid``: column ``r`` of ``ids``) of the ``n`` rows among positions
    ``inside`` with the smallest (sample key, request id), in that order.

    Integer sorts only (a window's Arrow take and string sort were most of a backfill's
    sampling), unless two picked keys are equal (a repeated or NULL request id, or a 64-bit
    collision): then the strings break the tie, as before."""
    k = keys[inside]
    if k.size > n:
        # every row whose key is at most the n-th smallest (ties included)
        kth = np.partition(k, n - 1)[n - 1]
        keep = k <= kth
        inside, k = inside[keep], k[keep]
    order = np.argsort(k, kind="stable")
    ks = k[order]
    if ks.size < 2 or not np.any(ks[1:] == ks[:-1]):
        return rowid[inside[order[:n]]]
    # equal (key, id) pairs (an id logged again) keep the table order, as a window's own read
    table_order = np.argsort(inside, kind="stable")
    inside, k = inside[table_order], k[table_order]
    cand = ids.take(pa.array(inside))
    cand = pa.table({"r": cand.column("r"), "k": k, "id": cand.column("request_id")}).sort_by(
        [("k", "ascending"), ("id", "ascending")]
    )
    return cand.column("r").slice(0, n).to_numpy()


_SEGMENT_KEYS = (
    "CASE WHEN grouping(tenant_id) = 1 THEN '*' ELSE tenant_id END, "
    "CASE WHEN grouping(mv) = 1 THEN '*' ELSE mv END"
)
_SEGMENT_SETS = "GROUPING SETS ((tenant_id), (mv), ())"
