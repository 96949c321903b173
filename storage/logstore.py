"""DuckDB log store: inference logs, labels, business events, references, quarantine.

One DuckDB file holds everything the monitors scan. One process owns the file; inside it, one
:class:`LogStore` owns one *write* connection guarded by a lock (every write is serialised, as
in datasette) and hands out read cursors, so the API's threads read while another one appends.

Tables
------
``inferences__<model>``
    ``request_id``, ``ts`` (UTC), ``tenant_id``, ``model_version``, one real column per feature
    (numeric DOUBLE, categorical/text VARCHAR, boolean BOOLEAN), the prediction (DOUBLE for
    regression, INTEGER 0/1 for binary, VARCHAR for multiclass), score columns (DOUBLE),
    ``received_at``. Real columns let one scan compute many aggregates.
``labels__<model>``
    ``request_id``, ``label`` (typed as the prediction), ``ts``, ``received_at``, ``tenant_id``
    (NULL when sent without one; see :func:`label_join`).
``references__<model>``
    ``reference_name``, ``reference_version``, ``reference_row`` (upload order), the
    inference columns and ``label`` (all nullable: an
    uploaded baseline may hold a subset). One table per model rather than one per version keeps
    the catalogue small and lets schema evolution reach references too; the catalogue table
    ``reference_sets`` records each version's row count and uploaded columns.
``events``
    Business events of every tenant: ``event_id``, ``tenant_id``, ``ts``, ``name``, ``value``,
    ``request_id``, ``model``, ``received_at``.
``quarantine``
    Rejected input rows with the field and reason, and the raw row as JSON text.

Later (monitors issue) hourly profile tables ``profiles__<model>`` and a watermark table join
these; ``received_at`` on every row is what marks late hours dirty.

Idempotency
-----------
Appends are idempotent by key (``request_id`` for inferences and labels, ``event_id`` for
events) *within a tenant*: the key is ``(tenant_id, id)``, so one tenant's ids can neither
reveal nor block another tenant's rows (a label sent without a tenant has the NULL tenant as
its scope). This needs no index either: a PRIMARY KEY / ART index made appends into a table of 5 M
rows 4-6x slower (56-80 k rows/s) and the index took as much disk as the data; an anti-join
against the stored keys costs a scan of every stored key on every append (0.23 s per batch at
5 M rows, growing with the table). Instead each key table has an in-memory :class:`_KeyIndex`:
the sorted 64-bit DuckDB ``hash(tenant, id)`` of every stored key (8 bytes per row), built by
one scan on first use and extended after each commit. A batch row whose hash is absent is certainly new;
rows whose hash is present (retries, or a hash collision) are checked exactly against the
table, first within the batch's ``ts`` range (cheap thanks to zone maps; a retry normally has
the same ``ts``) and, for keys still unconfirmed, against the whole table. The index is always a
superset of the stored keys, so correctness never depends on ``ts`` nor on hash uniqueness.

Exceptions
----------
::

    LogStoreError            any refused or failed log-store operation
    ├── SchemaChangeError    a column would change type (nothing is changed)
    └── UnknownModelError    no tables for this model (also a KeyError)
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from storage import key_hash, tables
from storage.errors import StorageError
from storage.private import private_dir, private_file
from storage.tables import quote
from storage.types import (
    COLUMN_RE,
    NAME_RE,
    RESERVED_COLUMNS,
    AppendResult,
    ModelSchema,
    QuarantineRow,
)

log = logging.getLogger(__name__)

__all__ = [
    "CommitMirror",
    "LabelJoin",
    "LogStore",
    "LogStoreError",
    "SchemaChangeError",
    "UnknownModelError",
    "label_join",
]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CommitMirror(Protocol):
    """Something that copies every committed append elsewhere (``storage.lake_mirror``: the
    Parquet lake). The store calls :meth:`record` inside the append's transaction, so what it
    records (an outbox of the rows still to copy) commits or rolls back with the rows, then
    :meth:`committed` after COMMIT, still under the write lock. ``committed`` must not raise:
    the rows are stored, and a failed copy stays in the outbox for a later retry."""

    def record(
        self, con: duckdb.DuckDBPyConnection, inserts: Sequence[tuple[str, str, pa.Table]]
    ) -> object:
        """Inside the transaction: note ``(table, key column, full-width rows)`` per insert."""
        ...

    def committed(self, token: object) -> None:
        """After COMMIT: copy what :meth:`record` noted (``token`` is its return value)."""
        ...


class LogStoreError(StorageError):
    """Base of log-store errors."""


class SchemaChangeError(LogStoreError):
    """A column would change type (refused); message names the column, old and new type."""


class UnknownModelError(LogStoreError, KeyError):
    """The model has no tables in the log store (``ensure_model`` was never called)."""

    def __str__(self) -> str:  # KeyError would show the message repr'd in quotes
        return str(self.args[0]) if self.args else ""


_UTC = pa.timestamp("us", tz="UTC")

# DuckDB type names (as information_schema spells them) and their Arrow types.
_DUCK_TO_ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "TIMESTAMP WITH TIME ZONE": _UTC,
}
_DUCK_DDL = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}
_FEATURE_TYPES = {
    "numeric": "DOUBLE",
    "categorical": "VARCHAR",
    "boolean": "BOOLEAN",
    "text": "VARCHAR",
}
_PREDICTION_TYPES = {"regression": "DOUBLE", "binary": "INTEGER", "multiclass": "VARCHAR"}
_REFERENCE_META = ("reference_name", "reference_version", "reference_row")
_REFERENCE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

# Paths opened by a LogStore in this process: two stores on one file would each keep their own
# lock and key index, and could then store a duplicate.
_OPEN_PATHS: set[str] = set()
_OPEN_PATHS_LOCK = threading.Lock()


def _check_model(model: str) -> str:
    if not isinstance(model, str) or not NAME_RE.match(model):
        raise LogStoreError(f"invalid model name {model!r}: must match {NAME_RE.pattern}")
    return model


def _check_column(name: str) -> str:
    if not isinstance(name, str) or not COLUMN_RE.match(name):
        raise LogStoreError(f"invalid column name {name!r}: must match {COLUMN_RE.pattern}")
    return name


def _inference_columns(schema: ModelSchema) -> dict[str, str]:
    """Column name -> DuckDB type of a model's inference table, in table order."""
    if schema.task not in _PREDICTION_TYPES:
        raise LogStoreError(
            f"unknown task {schema.task!r}: expected one of {sorted(_PREDICTION_TYPES)}"
        )
    cols: dict[str, str] = {
        "request_id": "VARCHAR",
        "ts": "TIMESTAMP WITH TIME ZONE",
        "tenant_id": "VARCHAR",
        "model_version": "VARCHAR",
    }
    seen = {c.lower(): c for c in (*cols, "received_at", "label", *_REFERENCE_META)}
    named: list[tuple[str, str]] = [
        (f.name, _FEATURE_TYPES.get(f.kind, "")) for f in schema.features
    ]
    named.append((schema.prediction, _PREDICTION_TYPES[schema.task]))
    named.extend((s, "DOUBLE") for s in schema.scores)
    for name, typ in named:
        _check_column(name)
        if not typ:
            spec = schema.feature(name)
            kind = spec.kind if spec else "?"
            raise LogStoreError(f"feature {name!r}: unknown kind {kind!r}")
        if name in RESERVED_COLUMNS or name.lower() in seen:
            # DuckDB identifiers are case-insensitive: "Age" and "age" are one column.
            raise LogStoreError(
                f"column {name!r} clashes with column {seen.get(name.lower(), name)!r}"
            )
        seen[name.lower()] = name
        cols[name] = typ
    cols["received_at"] = "TIMESTAMP WITH TIME ZONE"
    return cols


_NOT_NULL = {"request_id", "ts", "tenant_id", "received_at"}


def _label_columns(schema: ModelSchema) -> dict[str, str]:
    # tenant_id: set when a tenant-scoped key sent the label; such a label only joins rows of
    # that tenant, so one tenant cannot label another tenant's predictions.
    return {
        "request_id": "VARCHAR",
        "label": _PREDICTION_TYPES[schema.task],
        "ts": "TIMESTAMP WITH TIME ZONE",
        "received_at": "TIMESTAMP WITH TIME ZONE",
        "tenant_id": "VARCHAR",
    }


def _reference_columns(schema: ModelSchema) -> dict[str, str]:
    cols = {"reference_name": "VARCHAR", "reference_version": "INTEGER", "reference_row": "BIGINT"}
    cols.update(_inference_columns(schema))
    # A baseline usually carries its true labels (realized reference performance, and what
    # performance estimation is fitted on), typed like the prediction.
    cols["label"] = _PREDICTION_TYPES[schema.task]
    return cols


_EVENT_COLUMNS = {
    "event_id": "VARCHAR",
    "tenant_id": "VARCHAR",
    "ts": "TIMESTAMP WITH TIME ZONE",
    "name": "VARCHAR",
    "value": "DOUBLE",
    "request_id": "VARCHAR",
    "model": "VARCHAR",
    "received_at": "TIMESTAMP WITH TIME ZONE",
}
_EVENT_NOT_NULL = {"event_id", "tenant_id", "ts", "name", "received_at"}


def _create_sql(table: str, cols: dict[str, str], not_null: set[str]) -> str:
    body = ", ".join(
        f"{quote(c)} {_DUCK_DDL.get(t, t)}{' NOT NULL' if c in not_null else ''}"
        for c, t in cols.items()
    )
    return f"CREATE TABLE IF NOT EXISTS {quote(table)} ({body})"


@dataclass(frozen=True)
class LabelJoin:
    """SQL attaching to each inference row its one label (see :func:`label_join`)."""

    joins: str  # two LEFT JOINs, aliases lt (the row's tenant) and lu (no tenant)
    label: str  # the label, NULL when the row has none yet
    received_at: str  # when that label arrived
    anti: str  # two ANTI JOINs: keeps only the rows without any label
    matches: str  # ON condition of a label ``l`` that may label the row (label_hours)


def label_join(labels_table: str, inf: str = "i") -> LabelJoin:
    """How every reader joins a model's labels to its inference rows (alias ``inf``).

    A label is unique per ``(tenant, request_id)`` (see the module's Idempotency); the NULL
    tenant (labels sent by an unscoped key without ``tenant_id``) is its own scope. A row takes
    the label sent for its own tenant and else the one sent without a tenant, so a row has at
    most one label, and a label a tenant-scoped key sent never reaches another tenant's row.
    """
    lab = quote(labels_table)
    own = f"lt.request_id = {inf}.request_id AND lt.tenant_id = {inf}.tenant_id"
    untenanted = f"lu.request_id = {inf}.request_id AND lu.tenant_id IS NULL"
    return LabelJoin(
        joins=f" LEFT JOIN {lab} AS lt ON {own} LEFT JOIN {lab} AS lu ON {untenanted}",
        # label and received_at are NOT NULL in a stored label, so coalesce picks lt's if any
        label="coalesce(lt.label, lu.label)",
        received_at="coalesce(lt.received_at, lu.received_at)",
        anti=f" ANTI JOIN {lab} AS lt ON {own} ANTI JOIN {lab} AS lu ON {untenanted}",
        matches=f"l.request_id = {inf}.request_id "
        f"AND (l.tenant_id IS NULL OR l.tenant_id = {inf}.tenant_id)",
    )


class _KeyIndex:
    """Sorted 64-bit hashes of every key stored in one table (a superset: never misses a key).

    The hashes live in a few sorted runs, merged like a binary counter (a run is merged into
    the previous one once it is at least half its size), so adding a batch costs amortised
    O(batch x log(runs)) instead of rewriting every stored hash, and a lookup is one binary
    search per run (about log2(stored / batch) runs). Queries are looked up in sorted order,
    which keeps the binary searches cache-friendly (5-10x faster than random order).
    """

    def __init__(self, hashes: npt.NDArray[Any]) -> None:
        self._runs: list[npt.NDArray[Any]] = []
        if hashes.size:
            self._runs.append(np.sort(hashes.astype(np.uint64, copy=False)))

    def __len__(self) -> int:
        return sum(int(r.size) for r in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(int(r.nbytes) for r in self._runs)

    def contains_sorted(self, sorted_hashes: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Membership of each of ``sorted_hashes`` (ascending)."""
        found = np.zeros(sorted_hashes.shape, dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, sorted_hashes)
            pos[pos == run.size] = 0
            found |= run[pos] == sorted_hashes
        return found

    def add_sorted(self, sorted_hashes: npt.NDArray[Any]) -> None:
        """Add hashes (ascending) of keys that were just committed."""
        if not sorted_hashes.size:
            return
        self._runs.append(sorted_hashes.astype(np.uint64, copy=True))
        while len(self._runs) > 1 and 2 * self._runs[-1].size >= self._runs[-2].size:
            last = self._runs.pop()
            # Timsort (kind="stable") finds the two sorted runs and merges them in one pass.
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")


def _model_of(model: str | None) -> str:
    if model is None:
        raise LogStoreError("this append needs a model")
    return model


class _Pending:
    """One queued append of a group commit; ``finish`` wakes nobody: its caller waits on the
    write lock, and finds it finished when it gets the lock."""

    __slots__ = ("batch", "done", "error", "kt", "required", "result")

    def __init__(self, kt: _KeyedTable, batch: pa.Table, required: set[str]) -> None:
        self.kt = kt
        self.batch = batch
        self.required = required
        self.done = False
        self.result: AppendResult | None = None
        self.error: BaseException | None = None

    def finish(
        self, *, result: AppendResult | None = None, error: BaseException | None = None
    ) -> None:
        self.result, self.error, self.done = result, error, True


@dataclass(frozen=True)
class _KeyedTable:
    """What an idempotent append needs to know about its target table.

    Keys are unique per ``(tenant, key)``: a tenant-scoped client can neither learn whether
    another tenant stored an id nor block that tenant's later row by storing the id first. A
    NULL tenant (a label sent by an unscoped key without ``tenant_id``) is its own scope.
    """

    table: str
    key: str
    ts: str | None  # column used to narrow the exact duplicate check, when not null
    tenant: str = "tenant_id"

    def hash_sql(self, prefix: str = "") -> str:
        """The index hash of a row (the same expression for stored rows and a new batch)."""
        return f"hash(coalesce({prefix}{quote(self.tenant)}, ''), {prefix}{quote(self.key)})"


class LogStore:
    """One DuckDB file, one write connection (all writes serialised), read cursors per call.

    Parameters
    ----------
    path
        The DuckDB file (created if missing), or ``":memory:"`` for tests.
    checkpoint_threshold
        WAL size after which DuckDB folds the WAL into the file (DuckDB's default, 16 MB, when
        None). A 100k-row append (about 25 MB of WAL) then checkpoints at every commit. A
        larger threshold makes the appends themselves faster (1 GB: 534 k vs 310 k rows/s
        here) but the deferred checkpoint then costs about what was saved (a 2 M-row
        checkpoint took 4 s), and a crash leaves a longer WAL to replay; rates measured
        *including* checkpoints were no better than with the default.
        ``close()`` always checkpoints.
    background_checkpoint
        WAL size (e.g. ``"16MB"``) at which a background thread folds the WAL into the file,
        instead of the commit that crosses DuckDB's threshold doing it inline: an ingest
        request then waited 0.25 s for every 80 k JSON rows, and up to 1.3 s when the
        checkpoint also compressed earlier large appends (written straight to the file, they
        leave the WAL small; the thread also runs after 4x this size of such appends). The
        next request parses its body meanwhile and waits only if it must append before the
        checkpoint ends; readers are not blocked (DuckDB 2). DuckDB's own threshold is raised
        to 4x this size, a backstop if the checkpoint keeps failing. Durability is unchanged:
        a commit is in the WAL before it returns. None: inline checkpoints (file stores only).
    threads, memory_limit
        Passed to DuckDB when given.
    group_commit
        Concurrent appends (inferences, labels, events) share transactions: each call queues
        its batch and waits for the write lock; whoever gets the lock commits everything
        queued by then in one transaction, planned in queue order (a key sent twice in one
        group is stored once, by the append queued first), and every caller returns only after
        that COMMIT. A commit costs the same for 1 row or 1,000, so 64 writers of 10 rows pay
        for a few commits instead of 64. When the shared transaction fails, each append is
        retried alone, so a bad batch fails only its caller.

    Examples
    --------
    >>> from storage.types import FeatureSpec, ModelSchema
    >>> store = LogStore(":memory:")
    >>> store.ensure_model("churn", ModelSchema("binary", (FeatureSpec("age", "numeric"),)))
    >>> store.count_inferences("churn")
    0
    >>> store.close()
    """

    def __init__(
        self,
        path: str | Path,
        *,
        checkpoint_threshold: str | None = None,
        background_checkpoint: str | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        clock: Callable[[], datetime] | None = None,
        group_commit: bool = False,
    ) -> None:
        # what stamps received_at (the late-data watermark) and profile times: the process's
        # clock, so they agree with the metadata store's run times
        self._clock = clock or _utcnow
        self._path = str(path)
        self._key: str | None = None
        if self._path != ":memory:":
            p = Path(self._path).expanduser().resolve()
            private_dir(p.parent)
            self._key = str(p)
            with _OPEN_PATHS_LOCK:
                if self._key in _OPEN_PATHS:
                    raise LogStoreError(f"log store {self._key} is already open in this process")
                _OPEN_PATHS.add(self._key)
        try:
            self._con = duckdb.connect(self._path if self._key is None else self._key)
            if self._key is not None:  # DuckDB refuses an empty file: tighten right after
                private_file(self._key)
                private_file(self._key + ".wal")
            self._background_bytes = 0
            if background_checkpoint is not None and self._key is not None:
                self._background_bytes = _size_bytes(background_checkpoint)
                backstop = 4 * self._background_bytes
                if checkpoint_threshold is not None:
                    backstop = max(backstop, _size_bytes(checkpoint_threshold))
                checkpoint_threshold = f"{backstop}B"
            if checkpoint_threshold is not None:
                self._run(f"SET checkpoint_threshold = '{_size(checkpoint_threshold)}'")
            if threads is not None:
                self._run(f"SET threads = {int(threads)}")
            if memory_limit is not None:
                self._run(f"SET memory_limit = '{_size(memory_limit)}'")
            self._run("SET TimeZone = 'UTC'")
            # Lets DuckDB insert an Arrow batch in parallel without keeping its row order
            # (+4-50 % append rate in paired runs here). Every read that cares says ORDER BY.
            self._run("SET preserve_insertion_order = false")
            self._bootstrap()
        except BaseException:
            self._release_path()
            raise
        self._wlock = threading.RLock()
        self._group_commit = group_commit
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._appends = 0  # see commit_stats
        self._commits = 0
        self._cursor_lock = threading.Lock()
        self._indexes: dict[str, _KeyIndex] = {}
        # inference table -> tenant -> stored rows (see tenant_counts); changed under both
        # the write lock and this lock, copied by readers under this lock alone
        self._counts: dict[str, dict[str, int]] = {}
        self._counts_lock = threading.Lock()
        self._py_hash: bool | None = None  # see _py_hash_ok
        self._columns: dict[str, dict[str, str]] = {}
        self._closed = False
        self._mirror: CommitMirror | None = None  # see attach_mirror
        self._direct_bytes = 0  # appended since the last checkpoint (see background_checkpoint)
        self._checkpoint_wanted = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if self._background_bytes:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="logstore-checkpoint", daemon=True
            )
            self._checkpointer.start()

    # --- lifecycle ----------------------------------------------------------------------
    def _release_path(self) -> None:
        if self._key is not None:
            with _OPEN_PATHS_LOCK:
                _OPEN_PATHS.discard(self._key)

    def close(self) -> None:
        """Checkpoint (fold the WAL into the file) and close. Safe to call twice."""
        if getattr(self, "_closed", True):
            return
        with self._wlock:
            self._closed = True
            try:
                if self._key is not None:
                    with suppress(duckdb.Error):
                        self._run("CHECKPOINT")
                self._con.close()
            finally:
                self._release_path()
                self._indexes.clear()
                with self._counts_lock:
                    self._counts.clear()
        if self._checkpointer is not None:
            self._checkpoint_wanted.set()  # wakes the thread, which sees _closed and ends
            self._checkpointer.join()

    # --- background checkpoints (see background_checkpoint) -----------------------------
    def _wal_bytes(self) -> int:
        try:
            return Path(self._key + ".wal").stat().st_size if self._key else 0
        except OSError:
            return 0

    def _committed(self, nbytes: int) -> None:
        """After a write commits (under the write lock): wake the checkpoint thread when the
        WAL, or the data appended since the last checkpoint, has grown enough."""
        if not self._background_bytes:
            return
        self._direct_bytes += nbytes
        if (
            self._wal_bytes() >= self._background_bytes
            or self._direct_bytes >= 4 * self._background_bytes
        ):
            self._checkpoint_wanted.set()

    def _checkpoint_loop(self) -> None:
        while True:
            self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            with self._wlock:
                if self._closed:
                    return
                try:
                    self._run("CHECKPOINT")
                    self._direct_bytes = 0
                    continue
                except duckdb.Error as exc:  # e.g. the disk is full: the WAL keeps every commit
                    log.warning("background checkpoint failed, retrying in 1 s: %s", exc)
            time.sleep(1.0)
            self._checkpoint_wanted.set()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the database file now (e.g. from a quiet-time job)."""
        with self._wlock:
            self._check_open()
            self._run("CHECKPOINT")

    @contextmanager
    def writes_held(self) -> Iterator[None]:
        """Hold every write until the block ends (readers go on): e.g. to copy the files at
        a consistent point. With group commit, appends sent meanwhile queue and then commit
        together."""
        with self._wlock:
            self._check_open()
            yield

    @property
    def queued_appends(self) -> int:
        """Appends waiting for the next group commit."""
        with self._queue_lock:
            return len(self._queue)

    def commit_stats(self) -> dict[str, int]:
        """``appends`` (inference, label and event appends that stored rows) and ``commits``
        (the transactions that stored them); with group commit several appends share one."""
        return {"appends": self._appends, "commits": self._commits}

    @property
    def path(self) -> str:
        return self._path

    def now(self) -> datetime:
        """The store's clock (aware UTC): stamps ``received_at`` and profile times."""
        return self._clock()

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
        """Execute on the write connection and drain the result (DuckDB 2 refuses new work on a
        connection with an unread result)."""
        return (
            self._con.execute(sql, params).fetchall()
            if params
            else self._con.execute(sql).fetchall()
        )

    def _bootstrap(self) -> None:
        self._run(_create_sql(tables.EVENTS, _EVENT_COLUMNS, _EVENT_NOT_NULL))
        self._run("CREATE SEQUENCE IF NOT EXISTS quarantine_id_seq")
        self._run(
            f"CREATE TABLE IF NOT EXISTS {tables.QUARANTINE} (id BIGINT NOT NULL, received_at TIMESTAMPTZ "
            "NOT NULL, batch_id VARCHAR, kind VARCHAR NOT NULL, model VARCHAR, tenant_id VARCHAR, "
            "row_index INTEGER, field VARCHAR, reason VARCHAR, raw VARCHAR)"
        )
        self._run(
            f"CREATE TABLE IF NOT EXISTS {tables.REFERENCE_SETS} (model VARCHAR NOT NULL, name VARCHAR NOT "
            "NULL, version INTEGER NOT NULL, rows BIGINT NOT NULL, columns VARCHAR[] NOT NULL, "
            "created_at TIMESTAMPTZ NOT NULL)"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise LogStoreError(f"log store {self._path} is closed")

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read cursor (its own connection to the same database; sees committed data)."""
        self._check_open()
        with self._cursor_lock:
            cur = self._con.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'").fetchall()
            yield cur
        finally:
            cur.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN/COMMIT on the write connection; ROLLBACK and wrap on any error."""
        self._run("BEGIN TRANSACTION")
        try:
            yield
            self._run("COMMIT")
        except BaseException as exc:
            with suppress(duckdb.Error):
                self._run("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise LogStoreError(f"log store write failed: {exc}") from exc
            raise

    # --- schema -------------------------------------------------------------------------
    def _table_columns(self, table: str, *, cached: bool = True) -> dict[str, str]:
        """Column -> DuckDB type of an existing table ({} when missing). Call under the lock or
        with ``cached=False`` from a reader."""
        if cached and table in self._columns:
            return self._columns[table]
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
        cols = {str(n): str(t) for n, t in rows}
        if cols and cached:
            self._columns[table] = cols
        return cols

    # --- for the storage package's other modules (storage.profiles, storage.kpi_sql, ...) --
    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one write connection, held under the write lock: every write of the process is
        serialised through it. A module that writes its own tables (``storage.profiles``) runs
        its transaction here and calls :meth:`committed` after COMMIT, still inside."""
        with self._wlock:
            self._check_open()
            yield self._con

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read cursor (its own connection to the same database; sees committed data)."""
        with self._cursor() as cur:
            yield cur

    def attach_mirror(self, mirror: CommitMirror) -> None:
        """From now on every committed append (inferences, labels, events) is also handed to
        ``mirror``: its :meth:`CommitMirror.record` runs inside the append's transaction and
        its :meth:`CommitMirror.committed` after COMMIT. Without a mirror nothing changes (an
        append stays one INSERT statement)."""
        with self._wlock:
            self._check_open()
            self._mirror = mirror

    def arrow_table_schema(self, table: str) -> pa.Schema:
        """The Arrow schema ``SELECT *`` of a log table gives (every column, in table order,
        all nullable): what a copy of its rows, e.g. a lake file, holds."""
        return pa.schema(
            [pa.field(c, _DUCK_TO_ARROW[t]) for c, t in self._table_columns(table).items()]
        )

    def committed(self, nbytes: int) -> None:
        """Report a commit of ``nbytes`` made through :meth:`writer` (call it inside), so the
        background checkpoint sees the WAL grow."""
        self._committed(nbytes)

    def table(self, model: str, kind: str = "inferences") -> str:
        """The model's ``kind`` table (``inferences``, ``labels``, ``references``), unquoted;
        :class:`UnknownModelError` when the model has no log tables."""
        return self._require(model, kind)

    def _require(self, model: str, prefix: str = "inferences", *, locked: bool = False) -> str:
        """The model's table name; UnknownModelError when missing. Only a caller holding the
        write lock (``locked``) fills the column cache, so a reader never caches a stale list."""
        table = tables.model_table(prefix, _check_model(model))
        if table in self._columns:  # tables are never dropped: a cached table exists
            return table
        if not self._table_columns(table, cached=locked):
            raise UnknownModelError(f"model {model!r} has no log tables; call ensure_model first")
        return table

    def arrow_schema(self, model: str, schema: ModelSchema) -> pa.Schema:
        """The Arrow schema of a validated inference batch for this model.

        Column order and types match the table; timestamps are ``timestamp("us", tz="UTC")``.
        ``received_at`` is not part of it: the store stamps each append with its own time
        (a batch may still carry its own ``received_at``).
        """
        _check_model(model)
        cols = _inference_columns(schema)
        return pa.schema(
            [
                pa.field(c, _DUCK_TO_ARROW[t], nullable=c not in _NOT_NULL)
                for c, t in cols.items()
                if c != "received_at"
            ]
        )

    def ensure_model(self, model: str, schema: ModelSchema) -> None:
        """Create the model's tables, or add nullable columns for new features/scores.

        A column whose type would change raises :class:`SchemaChangeError` naming the column,
        the stored type and the new type; nothing is changed then. Columns that the new schema
        drops stay in the tables (old rows keep their values).
        """
        _check_model(model)
        wanted = {
            tables.inferences(model): (_inference_columns(schema), _NOT_NULL),
            tables.labels(model): (_label_columns(schema), {"request_id", "received_at"}),
            tables.references(model): (
                _reference_columns(schema),
                {"reference_name", "reference_version"},
            ),
        }
        with self._wlock:
            self._check_open()
            plan: list[str] = []
            errors: list[str] = []
            current: dict[str, dict[str, str]] = {}
            for table, (cols, not_null) in wanted.items():
                have = self._table_columns(table, cached=False)
                current[table] = have
                if not have:
                    plan.append(_create_sql(table, cols, not_null))
                    continue
                lower = {c.lower(): (c, t) for c, t in have.items()}
                for col, typ in cols.items():
                    if col.lower() not in lower:
                        plan.append(
                            f"ALTER TABLE {quote(table)} ADD COLUMN {quote(col)} {_DUCK_DDL.get(typ, typ)}"
                        )
                        continue
                    _, old_type = lower[col.lower()]
                    if old_type != typ:
                        errors.append(
                            f"column {col!r} of {table} would change type from "
                            f"{_DUCK_DDL.get(old_type, old_type)} to {_DUCK_DDL.get(typ, typ)}"
                        )
            if errors:
                raise SchemaChangeError(
                    f"schema change refused for model {model!r}: " + "; ".join(errors)
                )
            if plan:
                with self._transaction():
                    for sql in plan:
                        self._run(sql)
                current = {t: self._table_columns(t, cached=False) for t in wanted}
            # read under the write lock, after any change: readers may use them (without this,
            # every read in a fresh process asked information_schema, 2-30 ms each)
            self._columns.update(current)

    def models(self) -> list[str]:
        """Models that have log tables, sorted."""
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_name LIKE 'inferences\\_\\_%' ESCAPE '\\' ORDER BY table_name"
            ).fetchall()
        found = (tables.model_of(str(r[0])) for r in rows)
        return [m for m in found if m]

    # --- idempotent append machinery ------------------------------------------------------
    def _conform(self, table: str, batch: pa.Table, required: set[str]) -> pa.Table:
        """Cast ``batch`` to the table's column types; refuse unknown or missing columns."""
        if not isinstance(batch, pa.Table):
            raise LogStoreError(f"expected a pyarrow.Table, got {type(batch).__name__}")
        cols = self._table_columns(table)
        by_lower = {c.lower(): c for c in cols}
        arrays: list[pa.ChunkedArray] = []
        names: list[str] = []
        for name, arr in zip(batch.column_names, batch.columns, strict=True):
            col = by_lower.get(name.lower())
            if col is None:
                raise LogStoreError(
                    f"column {name!r} is not a column of {table}; expected some of {list(cols)}"
                )
            target = _DUCK_TO_ARROW[cols[col]]
            if arr.type != target:
                try:
                    arr = arr.cast(target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise LogStoreError(
                        f"column {name!r} of type {arr.type} cannot be stored as {target}: {exc}"
                    ) from exc
            arrays.append(arr)
            names.append(col)
        missing = [c for c in required if c not in names]
        if missing:
            raise LogStoreError(f"batch for {table} lacks required column(s) {sorted(missing)}")
        for c in required:
            if arrays[names.index(c)].null_count:
                raise LogStoreError(f"column {c!r} of {table} has null values; it is required")
        return pa.Table.from_arrays(arrays, names=names)

    def _index(self, kt: _KeyedTable) -> _KeyIndex:
        """The key index of a table, built by one scan on first use (caller holds the lock)."""
        idx = self._indexes.get(kt.table)
        if idx is None:
            res = self._con.execute(f"SELECT {kt.hash_sql()} AS h FROM {quote(kt.table)}")
            h = res.fetchnumpy()["h"]
            idx = _KeyIndex(np.asarray(h, dtype=np.uint64))  # 8 bytes per stored key
            self._indexes[kt.table] = idx
        return idx

    def _stored_keys(
        self, kt: _KeyedTable, cand: pa.Table, batch: pa.Table
    ) -> set[tuple[str, str]]:
        """Exactly which of the candidate ``(t, k)`` keys (tenant '' for none) are stored."""
        found: set[tuple[str, str]] = set()
        key, tenant, table = quote(kt.key), quote(kt.tenant), quote(kt.table)
        match = (
            f"SELECT DISTINCT coalesce(s.{tenant}, '') AS t, s.{key} AS k FROM {table} AS s "
            f"JOIN __dw_cand AS c ON s.{key} = c.k AND coalesce(s.{tenant}, '') = c.t"
        )
        self._con.register("__dw_cand", cand)
        try:
            if kt.ts is not None and kt.ts in batch.column_names:
                bounds = pc.min_max(batch[kt.ts])
                lo, hi = bounds["min"], bounds["max"]
                if lo.is_valid:
                    # A retry normally carries the same ts: zone maps make this a small scan.
                    rows = self._run(
                        f"{match} WHERE s.{quote(kt.ts)} BETWEEN ? AND ?",
                        [lo.as_py(), hi.as_py()],
                    )
                    found.update((r[0], r[1]) for r in rows)
            if len(found) < cand.num_rows:
                # Unconfirmed candidates: a retry with another ts, or a hash collision.
                pairs = zip(cand["t"].to_pylist(), cand["k"].to_pylist(), strict=True)
                rest = [p for p in pairs if p not in found]
                self._con.register(
                    "__dw_cand",
                    pa.table(
                        {
                            "t": pa.array([t for t, _ in rest], pa.string()),
                            "k": pa.array([k for _, k in rest], pa.string()),
                        }
                    ),
                )
                found.update((r[0], r[1]) for r in self._run(match))
        finally:
            self._con.unregister("__dw_cand")
        return found

    # Below this many rows the keys go to DuckDB as two list parameters: scanning a registered
    # Arrow table has a fixed cost of about 1.5 ms of CPU, most of a small group's hashing;
    # lists cost per row, so large batches keep the scan (same hashes: test_logstore).
    SMALL_KEY_BATCH = 200
    _LIST_HASH_SQL = (
        "SELECT list_transform(range(1, len(CAST($1 AS VARCHAR[])) + 1), "
        "lambda i: hash(CAST($1 AS VARCHAR[])[i], CAST($2 AS VARCHAR[])[i]))"
    )

    # Up to this many rows the hashes are computed in Python (``storage.key_hash``: ~2 us a
    # key, ~0.3 us from 32 keys on, by numpy, against a DuckDB statement's ~0.7-1.5 ms and
    # an Arrow scan's ~1.1 ms up to ~2,000 keys), when it matches this DuckDB's hash().
    PY_KEY_BATCH = 2048

    def _key_hashes(self, pairs: pa.Table) -> npt.NDArray[Any]:
        """DuckDB's ``hash(t, k)`` of each row of ``pairs`` (columns t, k), in row order: the
        hash the key index holds for stored rows. Caller holds the write lock."""
        n = pairs.num_rows
        if n <= self.PY_KEY_BATCH and self._py_hash_ok():
            return key_hash.hash_pairs(pairs["t"].to_pylist(), pairs["k"].to_pylist())
        if n <= self.SMALL_KEY_BATCH:
            params = [pairs["t"].to_pylist(), pairs["k"].to_pylist()]
            (row,) = self._con.execute(self._LIST_HASH_SQL, params).fetchall()
            return np.asarray(row[0], dtype=np.uint64)
        self._con.register(
            "__dw_keys", pairs.append_column("__i", pa.array(np.arange(n, dtype=np.int64)))
        )
        try:
            got = self._con.execute("SELECT __i, hash(t, k) AS h FROM __dw_keys").fetchnumpy()
        finally:
            self._con.unregister("__dw_keys")
        h = np.empty(n, dtype=np.uint64)
        h[np.asarray(got["__i"])] = np.asarray(got["h"], dtype=np.uint64)
        return h

    def _py_hash_ok(self) -> bool:
        """Whether ``storage.key_hash`` equals this DuckDB's ``hash()`` (checked once per
        store, one query; caller holds the write lock). If a DuckDB release changes its hash,
        the store keeps asking DuckDB, so the index and a batch's keys never disagree."""
        if self._py_hash is None:
            self._py_hash = key_hash.matches_duckdb(self._con)
            if not self._py_hash:
                log.warning("DuckDB's hash() differs from storage.key_hash; hashing keys in SQL")
        return self._py_hash

    def _new_rows(
        self, kt: _KeyedTable, batch: pa.Table
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Which rows of ``batch`` to insert (their (tenant, key) is new; the first occurrence
        inside the batch wins), and the sorted hashes of those rows' keys. Caller holds the
        write lock; reads only."""
        n = batch.num_rows
        keys = batch[kt.key].combine_chunks()
        if kt.tenant in batch.column_names:
            tenants = pc.fill_null(batch[kt.tenant].combine_chunks(), "")
        else:  # labels sent without a tenant: the NULL tenant's scope
            tenants = pa.array([""] * n, pa.string())
        pairs = pa.table({"t": tenants, "k": keys})
        h = self._key_hashes(pairs)
        # Any order of equal hashes will do (they are settled on the strings below): numpy's
        # default sort takes 1.6 ms per 100k hashes here, the stable one 8.2 ms.
        order = np.argsort(h)
        hs = h[order]

        # First occurrence of each key inside the batch. Distinct hashes imply distinct keys;
        # equal hashes (in-batch repeats, or a collision) are settled on the strings themselves.
        keep = np.ones(n, dtype=bool)
        if n > 1 and bool((hs[1:] == hs[:-1]).any()):
            seen: set[tuple[str, str]] = set()
            for i, pair in enumerate(zip(tenants.to_pylist(), keys.to_pylist(), strict=True)):
                if pair in seen:
                    keep[i] = False
                else:
                    seen.add(pair)

        idx = self._index(kt)
        maybe = np.zeros(n, dtype=bool)
        maybe[order] = idx.contains_sorted(hs)
        cand = np.flatnonzero(keep & maybe)
        if cand.size:
            cand_pairs = pairs.take(pa.array(cand))
            stored = self._stored_keys(kt, cand_pairs, batch)
            if stored:
                cand_list = zip(
                    cand_pairs["t"].to_pylist(), cand_pairs["k"].to_pylist(), strict=True
                )
                for i, pair in zip(cand, cand_list, strict=True):
                    if pair in stored:
                        keep[i] = False
        return keep, hs[keep[order]]

    def _insert(self, kt: _KeyedTable, new: pa.Table) -> None:
        """INSERT ``new`` into the keyed table, stamping ``received_at`` with the store's clock
        unless the rows carry their own. One statement: outside an explicit transaction it is
        its own (all rows or none, in the WAL when it returns), which saves the BEGIN and
        COMMIT round trips of a small append."""
        stamped = "received_at" in new.column_names
        if new.num_rows == 1:
            self._insert_row(kt, new, stamped)
            return
        stamp = "" if stamped else ", ?::TIMESTAMPTZ AS received_at"
        # DuckDB reads the Arrow table through a replacement scan of this frame's local of
        # that name (no catalog entry; so executed here, not through _run): con.register and
        # unregister are each a catalog change on the write connection, ~0.8 ms of a 220-row
        # group commit's ~2.4 ms (issue 17)
        dw_new_rows = new  # noqa: F841 - read by name by the statement below
        sql = f"INSERT INTO {quote(kt.table)} BY NAME SELECT *{stamp} FROM dw_new_rows"
        try:
            cur = self._con.execute(sql) if stamped else self._con.execute(sql, [self.now()])
            inserted = cur.fetchall()[0][0]
        except duckdb.Error as exc:
            raise LogStoreError(f"log store write failed: {exc}") from exc
        if inserted != new.num_rows:  # pragma: no cover - would mean DuckDB dropped rows
            raise LogStoreError(
                f"inserted {inserted} rows into {kt.table}, expected {new.num_rows}"
            )

    def _insert_all(self, inserts: list[tuple[_KeyedTable, pa.Table]]) -> None:
        """INSERT each ``(table, rows)`` atomically: one statement alone (its own transaction,
        which saves BEGIN and COMMIT), several in one transaction. With a mirror attached, the
        rows are stamped here (so the copy holds the stored ``received_at``) and the mirror
        records them in the same transaction, then copies them after COMMIT."""
        if self._mirror is None:
            if len(inserts) == 1:
                self._insert(*inserts[0])
            elif inserts:
                with self._transaction():
                    for kt, new in inserts:
                        self._insert(kt, new)
            self._count_rows(inserts)
            return
        if not inserts:
            return
        stamp = pa.scalar(self.now(), _UTC)
        full: list[tuple[_KeyedTable, pa.Table]] = []
        for kt, new in inserts:
            if "received_at" not in new.column_names:
                new = new.append_column("received_at", pa.repeat(stamp, new.num_rows))
            full.append((kt, _full_width(new, self.arrow_table_schema(kt.table))))
        with self._transaction():
            for kt, new in full:
                self._insert(kt, new)
            token = self._mirror.record(self._con, [(kt.table, kt.key, new) for kt, new in full])
        self._count_rows(full)
        try:
            self._mirror.committed(token)
        except Exception:  # pragma: no cover - a mirror must not raise; the rows are stored
            log.exception("the commit mirror failed after COMMIT; its outbox keeps the rows")

    def _insert_row(self, kt: _KeyedTable, new: pa.Table, stamped: bool) -> None:
        """``_insert`` of one row (a lone writer's): ``INSERT ... VALUES`` with the values as
        parameters, ~0.3 ms of CPU less than a scan of a one-row Arrow table. Uncast: the
        INSERT casts each value to its column's type, as the scan does (the batch already
        has the table's types; test_logstore compares the two paths)."""
        names = [quote(c) for c in new.column_names]
        params: list[Any] = [col[0].as_py() for col in new.columns]
        if not stamped:
            names.append("received_at")
            params.append(self.now())
        marks = ", ".join(f"${i}" for i in range(1, len(params) + 1))
        sql = f"INSERT INTO {quote(kt.table)} ({', '.join(names)}) VALUES ({marks})"
        try:
            inserted = self._run(sql, params)[0][0]
        except duckdb.Error as exc:
            raise LogStoreError(f"log store write failed: {exc}") from exc
        if inserted != 1:  # pragma: no cover - would mean DuckDB dropped the row
            raise LogStoreError(f"inserted {inserted} rows into {kt.table}, expected 1")

    def _append_keyed(self, kt: _KeyedTable, batch: pa.Table) -> AppendResult:
        """Insert the rows of ``batch`` whose (tenant, key) is new (first occurrence wins),
        atomically, in a transaction of its own."""
        n = batch.num_rows
        if n == 0:
            return AppendResult(0, 0)
        keep, new_hashes = self._new_rows(kt, batch)
        accepted = int(keep.sum())
        if accepted == 0:
            return AppendResult(0, n)
        new = batch if accepted == n else batch.filter(pa.array(keep))
        self._insert_all([(kt, new)])
        # Only after COMMIT: a failed transaction must not leave its keys in the index.
        self._index(kt).add_sorted(new_hashes)
        self._committed(new.nbytes)
        self._appends += 1
        self._commits += 1
        return AppendResult(accepted, n - accepted)

    # --- group commit (see group_commit) -------------------------------------------------
    def _flush(self) -> None:
        """Commit every queued append in one transaction (caller holds the write lock).

        Appends are planned in queue order against one growing set of keys per table, so a key
        sent twice in one group is stored once, by the request queued first, exactly as if the
        requests had committed one after another. When the shared transaction fails, each
        append is retried in a transaction of its own, so one bad batch fails only its caller.
        """
        with self._queue_lock:
            group, self._queue = self._queue, []
        if not group:
            return
        try:
            self._flush_group(group)
        finally:
            for p in group:  # e.g. KeyboardInterrupt: each caller learns it was not committed
                if not p.done:
                    p.finish(error=LogStoreError("the append was not committed; send it again"))

    def _flush_group(self, group: list[_Pending]) -> None:
        ready: list[_Pending] = []
        for p in group:
            try:
                p.batch = self._conform(p.kt.table, p.batch, p.required)
                ready.append(p)
            except Exception as exc:  # handed to the caller
                p.finish(error=exc)
        if len(ready) == 1:
            self._flush_alone(ready[0])
            return
        try:
            plans = self._plan_group(ready)
            inserts = [(kt, new) for kt, new, _, _ in plans if new.num_rows]
            self._insert_all(inserts)
        except Exception:  # retried one by one below
            for p in ready:
                self._flush_alone(p)
            return
        for kt, new, new_hashes, _ in plans:  # after COMMIT, as in _append_keyed
            self._index(kt).add_sorted(new_hashes)
            self._committed(new.nbytes)
        stored = 0
        for _, _, _, results in plans:
            for p, result in results:
                p.finish(result=result)
                stored += result.accepted > 0
        self._appends += stored
        self._commits += bool(inserts)

    def _flush_alone(self, p: _Pending) -> None:
        try:
            p.finish(result=self._append_keyed(p.kt, p.batch))
        except Exception as exc:  # handed to the caller
            p.finish(error=exc)

    def _plan_group(
        self, group: list[_Pending]
    ) -> list[tuple[_KeyedTable, pa.Table, npt.NDArray[Any], list[tuple[_Pending, AppendResult]]]]:
        """Per table: the group's rows to insert as one table, their key hashes, and each
        append's result."""
        by_table: dict[str, list[_Pending]] = {}
        for p in group:
            by_table.setdefault(p.kt.table, []).append(p)
        stamp = self.now()
        plans = []
        for items in by_table.values():
            kt = items[0].kt
            batches = [p.batch for p in items]
            if any("received_at" in b.column_names for b in batches):
                # one INSERT for all: rows without their own receipt time get the group's
                batches = [
                    b
                    if "received_at" in b.column_names
                    else b.append_column(
                        "received_at", pa.array([stamp] * b.num_rows, pa.timestamp("us", "UTC"))
                    )
                    for b in batches
                ]
            combined = pa.concat_tables(batches, promote_options="default")
            keep, new_hashes = self._new_rows(kt, combined)
            results = []
            start = 0
            for p in items:
                n = p.batch.num_rows
                accepted = int(keep[start : start + n].sum())
                results.append((p, AppendResult(accepted, n - accepted)))
                start += n
            new = combined if bool(keep.all()) else combined.filter(pa.array(keep))
            plans.append((kt, new, new_hashes, results))
        return plans

    # --- writes (each call is one transaction) -----------------------------------------
    def _table(self, model: str, prefix: str) -> str:
        self._check_open()
        table = tables.model_table(prefix, _check_model(model))
        if table in self._columns:  # tables are never dropped: a cached table exists
            return table
        with self._wlock:
            self._check_open()
            return self._require(model, prefix, locked=True)

    def _append(self, kt: _KeyedTable, required: set[str], batch: pa.Table) -> AppendResult:
        """One append: the one-item case of :meth:`_append_all`, its error raised."""
        (out,) = self._append_all([(kt, required, batch)])
        if isinstance(out, BaseException):
            raise out
        return out

    def append_inferences(self, model: str, batch: pa.Table) -> AppendResult:
        """Append validated rows (columns as ``arrow_schema``); rows whose (tenant_id,
        request_id) is already stored (or repeated inside the batch) count as duplicates and are
        not stored again.

        Missing nullable columns are stored as NULL; a column the table lacks is refused.
        Durable on return (committed to the WAL).
        """
        return self._append(*self._target("inferences", model), batch)

    def append_labels(self, model: str, batch: pa.Table) -> AppendResult:
        """Columns: request_id (string), label (typed per task), ts (timestamp[us, UTC], nullable),
        tenant_id (nullable). Idempotent by (tenant_id, request_id), first label wins; labels
        may precede their inference row."""
        return self._append(*self._target("labels", model), batch)

    def append_events(self, batch: pa.Table) -> AppendResult:
        """Columns: event_id (string), tenant_id, ts (timestamp[us, UTC]), name, value (double,
        nullable), request_id (nullable), model (nullable). Idempotent by (tenant_id, event_id)."""
        return self._append(*self._target("events", None), batch)

    def append(self, kind: str, model: str | None, batch: pa.Table) -> AppendResult:
        """``append_inferences``, ``append_labels`` or ``append_events`` by ``kind``
        (``"inferences"``, ``"labels"``, ``"events"``; ``model`` is None for events)."""
        return self._append(*self._target(kind, model), batch)

    def append_many(
        self, items: Sequence[tuple[str, str | None, pa.Table]]
    ) -> list[AppendResult | Exception]:
        """Several ``append(kind, model, batch)`` at once, each with its own outcome (its
        result, or the error ``append`` would raise), in the order given.

        With group commit they join the queue together and commit in as few transactions as
        ``_flush`` makes (usually one, shared with appends queued meanwhile), planned in the
        order given: a caller that already holds many requests (``monitor.api.lean_ingest``)
        pays for one commit and one wake-up instead of one per request. Without it, each is
        its own transaction, in order. Every stored batch is durable on return."""
        planned: list[tuple[_KeyedTable, set[str], pa.Table] | Exception] = []
        for kind, model, batch in items:
            try:
                kt, required = self._target(kind, model)
            except Exception as exc:  # this item's error, as append would raise it
                planned.append(exc)
            else:
                planned.append((kt, required, batch))
        return [
            o if isinstance(o, (AppendResult, Exception)) else LogStoreError(str(o))
            for o in self._append_all(planned)
        ]

    def _append_all(
        self, planned: Sequence[tuple[_KeyedTable, set[str], pa.Table] | Exception]
    ) -> list[AppendResult | BaseException]:
        """Each planned append's outcome, in order (an ``Exception`` given stays its outcome).

        With group commit the batches join the queue together and whoever holds the write lock
        next commits everything queued by then (``_flush``: usually one transaction); without
        it, each is its own transaction. Every stored batch is durable on return."""
        out: list[AppendResult | BaseException | None] = [None] * len(planned)
        pending: list[tuple[int, _Pending]] = []
        for i, item in enumerate(planned):
            if isinstance(item, Exception):
                out[i] = item
                continue
            kt, required, batch = item
            try:
                if not isinstance(batch, pa.Table):
                    raise LogStoreError(f"expected a pyarrow.Table, got {type(batch).__name__}")
                if batch.num_rows == 0:
                    self._conform(kt.table, batch, required)
                    out[i] = AppendResult(0, 0)
                    continue
            except Exception as exc:  # this item's error, as append would raise it
                out[i] = exc
                continue
            pending.append((i, _Pending(kt, batch, required)))
        if self._group_commit and pending:
            with self._queue_lock:
                self._queue.extend(p for _, p in pending)
            with self._wlock:
                if not all(p.done for _, p in pending):
                    try:
                        self._check_open()
                    except LogStoreError as exc:
                        with self._queue_lock:  # not committed: out of the queue
                            queued = {id(p) for _, p in pending}
                            self._queue = [q for q in self._queue if id(q) not in queued]
                        for _, p in pending:
                            p.finish(error=exc)
                    else:
                        self._flush()
        else:
            for _, p in pending:
                try:
                    with self._wlock:
                        self._check_open()
                        p.finish(
                            result=self._append_keyed(
                                p.kt, self._conform(p.kt.table, p.batch, p.required)
                            )
                        )
                except Exception as exc:
                    p.finish(error=exc)
        for i, p in pending:
            if p.error is not None:
                out[i] = p.error
            elif p.result is None:  # pragma: no cover - the flush was interrupted
                out[i] = LogStoreError("the append was not committed; send it again")
            else:
                out[i] = p.result
        return [o if o is not None else LogStoreError("not appended") for o in out]

    def _target(self, kind: str, model: str | None) -> tuple[_KeyedTable, set[str]]:
        """The keyed table and required columns of an append of ``kind``."""
        if kind == "inferences":
            return (
                _KeyedTable(self._table(_model_of(model), "inferences"), "request_id", "ts"),
                {"request_id", "ts", "tenant_id"},
            )
        if kind == "labels":
            return (
                _KeyedTable(self._table(_model_of(model), "labels"), "request_id", None),
                {"request_id", "label"},
            )
        if kind == "events":
            return (
                _KeyedTable(tables.EVENTS, "event_id", "ts"),
                {"event_id", "tenant_id", "ts", "name"},
            )
        raise LogStoreError(f"unknown append kind {kind!r}")

    def put_reference(self, model: str, name: str, batch: pa.Table) -> int:
        """Store a new version of the named reference dataset; returns the version (1, 2, ...).

        ``batch`` holds any subset of the inference columns (features, prediction, scores,
        ``ts``...); the uploaded column names are remembered and ``read_reference`` returns
        exactly those.
        """
        if not isinstance(name, str) or not _REFERENCE_NAME_RE.match(name):
            raise LogStoreError(
                f"invalid reference name {name!r}: must match {_REFERENCE_NAME_RE.pattern}"
            )
        with self._wlock:
            self._check_open()
            table = self._require(model, "references", locked=True)
            if any(c in _REFERENCE_META for c in batch.column_names):
                raise LogStoreError(f"columns {list(_REFERENCE_META)} are set by the store")
            batch = self._conform(table, batch, set())
            if batch.num_columns == 0:
                raise LogStoreError("a reference dataset needs at least one column")
            version = int(
                self._run(
                    f"SELECT coalesce(max(version), 0) + 1 FROM {tables.REFERENCE_SETS} "
                    "WHERE model = ? AND name = ?",
                    [model, name],
                )[0][0]
            )
            # preserve_insertion_order is off: keep the upload order in a column instead.
            ordered = batch.append_column(
                "reference_row", pa.array(np.arange(batch.num_rows, dtype=np.int64))
            )
            self._con.register("__dw_ref", ordered)
            try:
                with self._transaction():
                    self._run(
                        f"INSERT INTO {quote(table)} BY NAME SELECT ? AS reference_name, "
                        "?::INTEGER AS reference_version, * FROM __dw_ref",
                        [name, version],
                    )
                    self._run(
                        f"INSERT INTO {tables.REFERENCE_SETS} VALUES (?, ?, ?, ?, ?, ?::TIMESTAMPTZ)",
                        [model, name, version, batch.num_rows, batch.column_names, self.now()],
                    )
            finally:
                self._con.unregister("__dw_ref")
            self._committed(ordered.nbytes)
            return version

    def quarantine(self, rows: Sequence[QuarantineRow]) -> None:
        """Store rejected rows with their reasons (one insert for the whole sequence).

        A row already quarantined with the same kind, model and raw text (a retried batch) is
        not stored again, so retries are idempotent here too.
        """
        if not rows:
            return
        data = pa.table(
            {
                "batch_id": pa.array([r.batch_id for r in rows], pa.string()),
                "kind": pa.array([r.kind for r in rows], pa.string()),
                "model": pa.array([r.model for r in rows], pa.string()),
                "tenant_id": pa.array([r.tenant_id for r in rows], pa.string()),
                "row_index": pa.array([r.row_index for r in rows], pa.int32()),
                "field": pa.array([r.field for r in rows], pa.string()),
                "reason": pa.array([r.reason for r in rows], pa.string()),
                "raw": pa.array(
                    [r.raw if isinstance(r.raw, str) else json.dumps(r.raw) for r in rows],
                    pa.string(),
                ),
            }
        )
        with self._wlock:
            self._check_open()
            self._con.register("__dw_q", data)
            try:
                with self._transaction():
                    self._run(
                        f"INSERT INTO {tables.QUARANTINE} BY NAME SELECT nextval('quarantine_id_seq') AS id, "
                        "?::TIMESTAMPTZ AS received_at, n.* FROM __dw_q AS n "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {tables.QUARANTINE} AS q WHERE q.kind = n.kind "
                        "AND q.model IS NOT DISTINCT FROM n.model AND q.raw = n.raw)",
                        [self.now()],
                    )
            finally:
                self._con.unregister("__dw_q")

    # --- reads ---------------------------------------------------------------------------
    def _read(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self._cursor() as cur:
            rel = cur.sql(sql, params=list(params) if params else None)
            return rel.to_arrow_table()

    def count_inferences(self, model: str, tenant_id: str | None = None) -> int:
        """Stored inference rows of ``model``, of one tenant when given (from memory: see
        :meth:`tenant_counts`)."""
        counts = self.tenant_counts(model)
        return counts.get(tenant_id, 0) if tenant_id is not None else sum(counts.values())

    def tenant_counts(self, model: str) -> dict[str, int]:
        """Tenant -> stored inference rows of ``model``, for every tenant with rows: exactly
        ``SELECT tenant_id, count(*) ... GROUP BY tenant_id``, without the scan.

        The first call per table in a process runs that query on the write connection under
        the write lock (so no commit falls between the scan and the counting that follows);
        from then on every append adds its stored rows after its COMMIT, still under the write
        lock and before the append returns, so a read that starts after an acknowledged append
        counts its rows. Rows of inference tables are only ever added, by appends (nothing
        deletes or updates them). The dashboard's read (``GET /models/{model}``) asked DuckDB
        for ``count(*)`` and ``DISTINCT tenant_id`` at every call: full scans of a growing
        table, each a few GIL hand-offs that wait behind the ingest threads (see
        docs/architecture.md, "the dashboard read while ingesting")."""
        self._check_open()
        table = self._require(model)
        counts = self._cached_counts(table)
        if counts is not None:
            return counts
        with self._wlock:
            self._check_open()
            if table not in self._counts:
                rows = self._run(
                    f"SELECT tenant_id, count(*) FROM {quote(table)} GROUP BY tenant_id"
                )
                with self._counts_lock:
                    self._counts[table] = {str(t): int(n) for t, n in rows}
        return self._cached_counts(table) or {}

    def cached_tenant_counts(self, model: str) -> dict[str, int] | None:
        """:meth:`tenant_counts` when it is in memory already (None when not): never waits
        for the write lock nor reads the database, so an event loop may call it."""
        if self._closed:
            return None
        return self._cached_counts(tables.model_table("inferences", _check_model(model)))

    def _cached_counts(self, table: str) -> dict[str, int] | None:
        with self._counts_lock:
            counts = self._counts.get(table)
            return dict(counts) if counts is not None else None

    def _count_rows(self, inserts: Sequence[tuple[_KeyedTable, pa.Table]]) -> None:
        """After the COMMIT of ``inserts`` (caller holds the write lock): add their rows to the
        tenant counts of the tables whose counts are in memory."""
        for kt, new in inserts:
            if kt.table not in self._counts or not new.num_rows:
                continue
            found = pc.value_counts(new[kt.tenant]).to_pylist()
            with self._counts_lock:
                counts = self._counts[kt.table]
                for item in found:
                    counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]

    def received_per_hour(
        self, start: datetime, end: datetime, model: str | None = None
    ) -> dict[datetime, datetime]:
        """Hour (of ``ts``, in ``[start, end)``) -> the latest ``received_at`` of its rows:
        business events when ``model`` is None, else the model's inference rows and labels
        (a label's hour is its inference row's). What tells a KPI window got late data."""
        if model is None:
            names = ["events"]
        else:
            try:
                names = [self._require(model), self._require(model, "labels")]
            except UnknownModelError:
                return {}
        out: dict[datetime, datetime] = {}
        with self._cursor() as cur:
            for i, table in enumerate(names):
                if i == 1:  # labels: at the hour of the inference row they label
                    sql = (
                        f"SELECT date_trunc('hour', i.ts) AS h, max(l.received_at) "
                        f"FROM {quote(names[0])} i JOIN {quote(table)} l "
                        "ON l.request_id = i.request_id WHERE i.ts >= ? AND i.ts < ? GROUP BY h"
                    )
                else:
                    sql = (
                        f"SELECT date_trunc('hour', ts) AS h, max(received_at) "
                        f"FROM {quote(table)} WHERE ts >= ? AND ts < ? GROUP BY h"
                    )
                for h, r in cur.execute(sql, [_aware(start), _aware(end)]).fetchall():
                    h, r = _aware(h), _aware(r)
                    out[h] = max(out.get(h, r), r)
        return out

    def rows_per_window(self, model: str, step: timedelta, *, labelled: bool = False) -> list[int]:
        """Inference rows in each tumbling UTC window of ``step`` (from the epoch) that holds
        any, oldest first; ``labelled``: only rows that have a label. ``[]`` for a model with
        no log tables yet."""
        try:
            inf = self._require(model)
            lab = self._require(model, "labels") if labelled else None
        except UnknownModelError:
            return []
        step_us = int(step.total_seconds() * 1_000_000)
        if step_us <= 0:
            raise ValueError(f"step={step!r} must be positive")
        join = where = ""
        if lab:
            lj = label_join(lab)
            join, where = lj.joins, f" WHERE {lj.label} IS NOT NULL"
        with self._cursor() as cur:
            rows = cur.execute(
                f"SELECT epoch_us(i.ts) // {step_us} AS w, count(*) FROM {quote(inf)} i{join}"
                f"{where} GROUP BY w ORDER BY w"
            ).fetchall()
        return [int(n) for _, n in rows]

    def read_inferences(
        self,
        model: str,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant_id: str | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Inference rows with ``start <= ts < end``, ordered by ``ts`` then ``request_id``."""
        table = self._require(model)
        have = self._table_columns(table, cached=False)
        if columns is None:
            select = "*"
        else:
            unknown = [c for c in columns if c not in have]
            if unknown:
                raise LogStoreError(f"unknown column(s) {unknown} of model {model!r}: {list(have)}")
            select = ", ".join(quote(_check_column(c)) for c in columns)
        where, params = _where(start, end, tenant_id)
        sql = f"SELECT {select} FROM {quote(table)}{where} ORDER BY ts, request_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._read(sql, params)

    def read_labels(self, model: str) -> pa.Table:
        table = self._require(model, "labels")
        return self._read(f"SELECT * FROM {quote(table)} ORDER BY received_at, request_id")

    def read_joined(self, model: str, tenant_id: str | None = None) -> pa.Table:
        """Inference rows left-joined with their labels (column ``label``, NULL when none yet).

        The join is by ``request_id`` and tenant at read time (:func:`label_join`), so the
        order in which a label and its inference row arrived does not matter.
        """
        inf = self._require(model)
        lj = label_join(self._require(model, "labels"))
        where, params = _where(None, None, tenant_id, alias="i.")
        return self._read(
            f"SELECT i.*, {lj.label} AS label FROM {quote(inf)} AS i{lj.joins}{where} "
            "ORDER BY i.ts, i.request_id",
            params,
        )

    def read_events(
        self,
        tenant_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        name: str | None = None,
    ) -> pa.Table:
        """Business events, optionally of one tenant / name and ``start <= ts < end``."""
        where, params = _where(start, end, tenant_id)
        if name is not None:
            where += (" AND" if where else " WHERE") + " name = ?"
            params.append(name)
        return self._read(f"SELECT * FROM {tables.EVENTS}{where} ORDER BY ts, event_id", params)

    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        """(name, version, rows) for every stored reference version."""
        _check_model(model)
        with self._cursor() as cur:
            rows = cur.execute(
                f"SELECT name, version, rows FROM {tables.REFERENCE_SETS} WHERE model = ? "
                "ORDER BY name, version",
                [model],
            ).fetchall()
        return [(str(n), int(v), int(r)) for n, v, r in rows]

    def read_reference(self, model: str, name: str, version: int | None = None) -> pa.Table:
        """The latest version unless ``version`` is given; KeyError names what exists."""
        table = self._require(model, "references")
        with self._cursor() as cur:
            sets = cur.execute(
                f"SELECT name, version, columns FROM {tables.REFERENCE_SETS} WHERE model = ? "
                "ORDER BY name, version",
                [model],
            ).fetchall()
        versions = {int(v): list(c) for n, v, c in sets if n == name}
        if not versions or (version is not None and version not in versions):
            have = ", ".join(f"{n} v{v}" for n, v, _ in sets) or "none"
            what = f"reference {name!r}" + (f" version {version}" if version is not None else "")
            raise KeyError(f"{what} of model {model!r} not found; stored: {have}")
        v = max(versions) if version is None else version
        have_cols = self._table_columns(table, cached=False)
        cols = ", ".join(quote(c) for c in versions[v] if c in have_cols)
        return self._read(
            f"SELECT {cols} FROM {quote(table)} WHERE reference_name = ? "
            "AND reference_version = ? ORDER BY reference_row",
            [name, v],
        )

    def read_quarantine(
        self,
        model: str | None = None,
        limit: int = 1000,
        tenant_id: str | None = None,
        kind: str | None = None,
    ) -> pa.Table:
        """Quarantined rows, oldest first, optionally of one model, one tenant and one kind
        (``inference``, ``label``, ``event``, ``reference``)."""
        conds, params = [], []
        if model is not None:
            conds.append("model = ?")
            params.append(model)
        if kind is not None:
            conds.append("kind = ?")
            params.append(kind)
        if tenant_id is not None:
            conds.append("tenant_id = ?")
            params.append(tenant_id)
        where = " WHERE " + " AND ".join(conds) if conds else ""
        return self._read(
            f"SELECT * FROM {tables.QUARANTINE}{where} ORDER BY id LIMIT {int(limit)}", params
        )

    def tenants_seen(self, model: str) -> list[str]:
        """The tenants with inference rows of ``model``, sorted (from memory: see
        :meth:`tenant_counts`)."""
        return sorted(self.tenant_counts(model))

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run a read query on a read cursor. For the storage package's query modules (e.g.
        ``storage.kpi_sql``), which build SQL from typed values with bound parameters only."""
        try:
            return self._read(sql, params)
        except duckdb.Error as exc:
            raise LogStoreError(f"log store query failed: {exc}") from exc

    def query_batches(
        self, sql: str, params: Sequence[Any] | None = None, batch_rows: int = 131_072
    ) -> Iterator[pa.RecordBatch]:
        """Run a read query and stream its result as Arrow batches of at most ``batch_rows``
        rows (memory stays bounded for any result size). The read cursor stays open until the
        iterator is exhausted or closed. Same rules as :meth:`query_arrow`."""
        with self._cursor() as cur:
            try:
                rel = cur.sql(sql, params=list(params) if params else None)
                reader = rel.to_arrow_reader(batch_rows)
                yield from reader
            except duckdb.Error as exc:
                raise LogStoreError(f"log store query failed: {exc}") from exc

    def table_columns(self, model: str, prefix: str = "inferences") -> dict[str, str]:
        """Column -> DuckDB type of a model's ``inferences``/``labels`` table (the whitelist
        query builders check identifiers against)."""
        return dict(self._table_columns(self._require(model, prefix), cached=False))

    def key_index_bytes(self) -> int:
        """Memory held by the in-memory idempotency indexes (8 bytes per stored key)."""
        with self._wlock:
            return sum(i.nbytes for i in self._indexes.values())


def _full_width(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """``batch`` with every column of ``schema``, in its order and types (absent ones NULL)."""
    cols = []
    for field in schema:
        if field.name in batch.column_names:
            col = batch.column(field.name)
            cols.append(col if col.type == field.type else col.cast(field.type))
        else:
            cols.append(pa.nulls(batch.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _where(
    start: datetime | None, end: datetime | None, tenant_id: str | None, alias: str = ""
) -> tuple[str, list[Any]]:
    conds: list[str] = []
    params: list[Any] = []
    if start is not None:
        conds.append(f"{alias}ts >= ?")
        params.append(_aware(start))
    if end is not None:
        conds.append(f"{alias}ts < ?")
        params.append(_aware(end))
    if tenant_id is not None:
        conds.append(f"{alias}tenant_id = ?")
        params.append(tenant_id)
    return (" WHERE " + " AND ".join(conds) if conds else ""), params


def _aware(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (every stored timestamp is UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$", re.IGNORECASE)


def _size(value: str) -> str:
    """Validate a DuckDB size setting before it is pasted into SET (no parameters there)."""
    if not _SIZE_RE.match(str(value).strip()):
        raise LogStoreError(f"invalid size {value!r}: e.g. '512MB', '1GB'")
    return str(value).strip()


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


def _size_bytes(value: str) -> int:
    """A size setting (see :func:`_size`) in bytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", _size(value))
    unit = m.group(2).upper() if m else ""
    if m is None or unit not in _UNITS:
        raise LogStoreError(f"invalid size {value!r}: e.g. '512MB', '1GB'")
    return int(float(m.group(1)) * _UNITS[unit])
