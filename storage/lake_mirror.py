"""The ingest API's copy of accepted rows into the Parquet lake (the ``lake_dir`` setting).

With a lake folder configured, every batch the log store commits (inferences, labels, events:
only the rows it accepted, never a retry's duplicates) is also written to the lake layout of
``storage.lake`` as ``<partition>/ingest-<batch>.parquet``, one file per (kind, model, date) of
the batch. How it keeps the store and the lake equal:

1. **Outbox in the same transaction.** Inside the append's transaction the mirror inserts the
   batch's keys ``(batch, table, tenant, key)`` into the DuckDB table ``lake_outbox``: the rows
   and the note that they still need copying commit together, or neither does.
2. **Copy after COMMIT.** The rows (already in memory, full width, with the stored
   ``received_at``) are written per date to a temporary name, fsynced, renamed to
   ``ingest-<batch>.parquet`` and the folder fsynced, before the ingest call returns.
3. **Outbox cleared lazily.** The copied batch's outbox rows are deleted inside the *next*
   append's transaction (no extra commit per batch), or by the next start.
4. **Recovery.** Opening the mirror (server start) copies every batch still in the outbox,
   reading its rows back from the table by key: a crash between COMMIT and the rename (or a
   failed lake write: disk full) is repaired, never lost. The file name depends on the batch
   only, so a batch copied twice (its file written, the process killed before its outbox rows
   went) replaces its own file: the lake never holds a row twice.

``batch`` is the commit time (UTC, microseconds) plus 12 random hex digits: unique without a
counter, and file names sort by commit time. A lake write failure does not fail the ingest
call (the rows are stored and acknowledged); the batch stays in the outbox, is retried by the
first append ``retry_seconds`` (10 s) after the failure and at start, and is logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from storage import tables
from storage.lake import (
    INGEST_PREFIX,
    Partition,
    ensure_layout,
    write_table_atomic,
)
from storage.logstore import LogStore
from storage.tables import quote

__all__ = ["LakeMirror"]

log = logging.getLogger(__name__)

_DATE_OF = {"inferences": "ts", "labels": "received_at", "events": "ts"}
_OUTBOX_DDL = (
    f"CREATE TABLE IF NOT EXISTS {tables.LAKE_OUTBOX} (batch VARCHAR NOT NULL, "
    "tbl VARCHAR NOT NULL, tenant_id VARCHAR NOT NULL, k VARCHAR NOT NULL)"
)


@dataclass(frozen=True)
class _Batch:
    """What :meth:`LakeMirror.record` noted for :meth:`LakeMirror.committed`."""

    name: str
    inserts: list[tuple[str, str, pa.Table]]
    cleared: list[str]  # batches whose outbox rows this transaction deleted


def _kind_model(table: str) -> tuple[str, str | None]:
    if table == tables.EVENTS:
        return "events", None
    for kind in ("inferences", "labels"):
        model = tables.model_of(table, kind)
        if model is not None:
            return kind, model
    raise ValueError(f"{table!r} is not a log table the lake holds")  # pragma: no cover


class LakeMirror:
    """Copies every append the store commits into the lake at ``root`` (see the module
    docstring). :meth:`open` attaches it to a store and copies what a previous process left
    in the outbox.

    Examples
    --------
    >>> import tempfile
    >>> from storage.types import FeatureSpec, ModelSchema
    >>> store = LogStore(":memory:")
    >>> store.ensure_model("churn", ModelSchema("binary", (FeatureSpec("age", "numeric"),)))
    >>> mirror = LakeMirror.open(store, tempfile.mkdtemp())
    >>> store.close()
    """

    def __init__(
        self,
        store: LogStore,
        root: str | Path,
        *,
        retry_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = ensure_layout(root)
        self._store = store
        self._copied: list[str] = []  # batches in the lake whose outbox rows are not yet deleted
        self._failed = False
        # while the lake is unwritable (disk full, mount gone), waiting batches are retried at
        # most this often, not at every append (each retry tries every waiting batch)
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._retry_at = 0.0

    @classmethod
    def open(
        cls,
        store: LogStore,
        root: str | Path,
        *,
        retry_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> LakeMirror:
        """Create the outbox table if needed, attach a mirror to ``store`` and copy every
        batch a previous process committed but did not copy."""
        mirror = cls(store, root, retry_seconds=retry_seconds, clock=clock)
        with store.writer() as con:
            con.execute(_OUTBOX_DDL).fetchall()
            store.attach_mirror(mirror)
            mirror._recover(con)
        return mirror

    # --- CommitMirror (storage.logstore) ----------------------------------------------------
    def record(
        self, con: duckdb.DuckDBPyConnection, inserts: Sequence[tuple[str, str, pa.Table]]
    ) -> object:
        stamp = datetime.now(UTC)
        batch = f"{stamp:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}"
        cleared = list(self._copied)
        if cleared:
            con.execute(
                f"DELETE FROM {tables.LAKE_OUTBOX} WHERE list_contains(?, batch)", [cleared]
            ).fetchall()
        for table, key, rows in inserts:
            tenant = (
                pc.fill_null(rows.column("tenant_id"), "")
                if "tenant_id" in rows.column_names
                else pa.array([""] * rows.num_rows, pa.string())
            )
            keys = pa.table({"tenant_id": tenant, "k": rows.column(key)})
            con.register("__dw_outbox", keys)
            try:
                con.execute(
                    f"INSERT INTO {tables.LAKE_OUTBOX} SELECT ?, ?, tenant_id, k FROM __dw_outbox",
                    [batch, table],
                ).fetchall()
            finally:
                con.unregister("__dw_outbox")
        return _Batch(batch, list(inserts), cleared)

    def committed(self, token: object) -> None:
        assert isinstance(token, _Batch)
        batch, inserts, cleared = token.name, token.inserts, token.cleared
        del self._copied[: len(cleared)]  # deleted by that transaction, which committed
        try:
            for table, _, rows in inserts:
                self._write(batch, table, rows)
        except Exception:
            log.exception("lake copy of batch %s failed; kept in the outbox for a retry", batch)
            self._failed = True
            self._retry_at = self._clock() + self._retry_seconds
            return
        self._copied.append(batch)
        if self._failed and self._clock() >= self._retry_at:
            # an earlier batch failed: retry it now (we hold the write lock)
            with self._store.writer() as con:
                self._recover(con)

    # --- writing ------------------------------------------------------------------------
    def _write(self, batch: str, table: str, rows: pa.Table) -> None:
        """One ``ingest-<batch>.parquet`` per date of ``rows``, each written atomically."""
        kind, model = _kind_model(table)
        days = rows.column(_DATE_OF[kind]).cast(pa.date32())
        for day in pc.unique(days).to_pylist():
            part = rows.filter(pc.equal(days, pa.scalar(day, pa.date32())))
            folder = Partition(kind, model, _as_date(day), part.num_rows).folder(self.root)
            write_table_atomic(folder / f"{INGEST_PREFIX}{batch}.parquet", part)

    def _recover(self, con: duckdb.DuckDBPyConnection) -> None:
        """Copy every batch in the outbox not copied by this process, then delete its outbox
        rows (caller holds the write lock). A batch that fails again stays for the next try."""
        todo = con.execute(
            f"SELECT DISTINCT batch, tbl FROM {tables.LAKE_OUTBOX} ORDER BY batch, tbl"
        ).fetchall()
        failed = False
        for batch, table in todo:
            if batch in self._copied:
                continue
            try:
                rows = con.sql(
                    f"SELECT t.* FROM {quote(table)} AS t JOIN (SELECT tenant_id, k FROM "
                    f"{tables.LAKE_OUTBOX} WHERE batch = ? AND tbl = ?) AS o "
                    f"ON coalesce(t.tenant_id, '') = o.tenant_id AND t.{quote(_key(table))} = o.k",
                    params=[batch, table],
                ).to_arrow_table()
                rows = rows.cast(self._store.arrow_table_schema(table))
                self._write(batch, table, rows)
            except Exception:
                log.exception("lake copy of batch %s (%s) failed; kept for a retry", batch, table)
                failed = True
                continue
            con.execute(
                f"DELETE FROM {tables.LAKE_OUTBOX} WHERE batch = ? AND tbl = ?", [batch, table]
            ).fetchall()
            log.info("lake copy of batch %s (%s) recovered: %d rows", batch, table, rows.num_rows)
        self._failed = failed
        if failed:
            self._retry_at = self._clock() + self._retry_seconds


def _key(table: str) -> str:
    return "event_id" if table == tables.EVENTS else "request_id"


def _as_date(value: object) -> date:
    assert isinstance(value, date)
    return value
