"""The Parquet lake layout (version 1) and the export of the embedded store into it.

A lake is a folder (or, for engines that read object storage, a bucket prefix) holding the logs
as Hive-partitioned Parquet files, so that an engine other than the embedded DuckDB (DuckDB over
``read_parquet(..., hive_partitioning=true)``, Spark) can compute the same hourly profiles::

    <lake>/_driftwatch_lake.json                       the layout version (this module's LAYOUT)
    <lake>/model=<name>/date=<YYYY-MM-DD>/<file>.parquet          inference rows
    <lake>/labels/model=<name>/date=<YYYY-MM-DD>/<file>.parquet   labels
    <lake>/events/date=<YYYY-MM-DD>/<file>.parquet                business events

Inference rows sit at the root's ``model=`` folders: the profile engines that read a lake
(``storage.lake_profiles``, ``storage.spark_engine``) list ``<lake>/model=<name>/``.

* ``model`` and ``date`` live in the path only (Hive style); a file holds exactly the columns of
  the model's DuckDB table with the same types (``storage.logstore``: ``ts`` and
  ``received_at`` as ``timestamp[us, tz=UTC]``, numeric features ``double``, categorical ``string``,
  boolean ``bool``, the prediction as the task's type, scores ``double``).
* ``date`` is the UTC date of ``ts`` for inferences and events, and of ``received_at`` for labels
  (a label's own ``ts`` may be NULL; by arrival date, "labels received since" reads few days).
* Events are a tenant's, not a model's (their ``model`` column is optional): partitioned by date
  only.
* A model's schema may grow (new features are new nullable columns): older files lack the new
  columns. Readers union files by column name (``union_by_name=true`` in DuckDB,
  ``unionByName``/``mergeSchema`` in Spark) and read a missing column as NULL.
* Files whose names start with ``_`` or ``.`` are not data (readers skip them).

Who writes which files: :func:`export` owns the files named ``export.parquet`` and replaces one
whole per (kind, model, date) each run; the ingest API's lake copy (``storage.lake_mirror``)
owns ``ingest-<batch>.parquet``, one per committed batch and date. ``export`` leaves out the rows
a partition's ``ingest-*`` files already hold, so the two together hold each row once. Other
writers use other names.

Promises of :func:`export`: it is **idempotent** (a re-run writes the same rows; a partition's
file is replaced, never appended to, so rows are never doubled) and a partition is **all or
nothing** (written to a temporary name, fsynced, then renamed over the old file: a reader sees
the old file or the new one, never half of one; an interrupted export leaves at most a ``.tmp``
file, which readers skip and the next run replaces). It reads committed rows only; rows that
arrive during an export are in the next run's files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage import tables
from storage.logstore import LogStore
from storage.tables import quote

__all__ = [
    "EXPORT_FILE",
    "INGEST_PREFIX",
    "KINDS",
    "LAYOUT",
    "LAYOUT_FILE",
    "LAYOUT_VERSION",
    "LakeError",
    "Partition",
    "ensure_layout",
    "export",
    "kind_root",
    "partitions",
    "pending_batches",
    "read_lake",
    "write_partition",
    "write_table_atomic",
]

LAYOUT_VERSION = 1
LAYOUT_FILE = "_driftwatch_lake.json"
EXPORT_FILE = "export.parquet"
INGEST_PREFIX = "ingest-"
"""Files ``ingest-<batch>.parquet``: written by the ingest API's lake copy (storage.lake_mirror)."""
KEY_COLUMN = {"inferences": "request_id", "labels": "request_id", "events": "event_id"}
KINDS = ("inferences", "labels", "events")
_DATE_COLUMN = {"inferences": "ts", "labels": "received_at", "events": "ts"}
_ORDER = {
    "inferences": "ts, request_id",
    "labels": "received_at, request_id",
    "events": "ts, event_id",
}
LAYOUT: dict[str, Any] = {
    "layout_version": LAYOUT_VERSION,
    "format": "parquet",
    "partitioning": "hive",
    "kinds": {
        "inferences": {"path": "", "partitions": ["model", "date"], "date_of": "ts"},
        "labels": {"path": "labels", "partitions": ["model", "date"], "date_of": "received_at"},
        "events": {"path": "events", "partitions": ["date"], "date_of": "ts"},
    },
    "timezone": "UTC",
}


class LakeError(Exception):
    """A lake that cannot be written or read as this version's layout (message says why)."""


@dataclass(frozen=True)
class Partition:
    """One (kind, model, date) of the lake and its rows in the store."""

    kind: str
    model: str | None
    day: date
    rows: int

    def folder(self, root: Path) -> Path:
        base = kind_root(root, self.kind)
        if self.model is not None:
            base = base / f"model={self.model}"
        return base / f"date={self.day.isoformat()}"


def kind_root(root: str | Path, kind: str) -> Path:
    """The folder under which ``kind``'s partitions live (inferences: the lake's root)."""
    if kind not in KINDS:
        raise LakeError(f"unknown lake kind {kind!r}: expected one of {list(KINDS)}")
    return Path(root) / str(LAYOUT["kinds"][kind]["path"])


def ensure_layout(root: str | Path) -> Path:
    """Create ``root`` with its layout file, or check an existing lake is this layout version.

    Raises
    ------
    LakeError
        The folder holds a lake of another layout version, or an unreadable layout file.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LAYOUT_FILE
    if path.exists():
        try:
            found = json.loads(path.read_text())
            version = found["layout_version"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LakeError(f"{path}: not a Driftwatch lake layout file ({exc})") from exc
        if version != LAYOUT_VERSION:
            raise LakeError(
                f"{path}: layout_version {version!r}, this Driftwatch writes version "
                f"{LAYOUT_VERSION}; export into a new folder"
            )
        return root
    _atomic_write_bytes(path, (json.dumps(LAYOUT, indent=2, sort_keys=True) + "\n").encode())
    return root


def _source(logstore: LogStore, kind: str, model: str | None) -> str:
    if kind not in KINDS:
        raise LakeError(f"unknown lake kind {kind!r}: expected one of {list(KINDS)}")
    if kind == "events":
        return tables.EVENTS
    if model is None:
        raise LakeError(f"{kind} belong to a model: name it")
    return logstore.table(model, kind)


def partitions(logstore: LogStore, kind: str, model: str | None = None) -> list[Partition]:
    """The (UTC) dates of ``kind`` rows in the store, with their row counts, oldest first."""
    table = _source(logstore, kind, model)
    col = _DATE_COLUMN[kind]
    got = logstore.query_arrow(
        f"SELECT CAST({col} AS DATE) AS d, count(*) AS n FROM {quote(table)} GROUP BY d ORDER BY d"
    ).to_pylist()
    return [Partition(kind, None if kind == "events" else model, r["d"], int(r["n"])) for r in got]


def write_partition(
    logstore: LogStore,
    root: str | Path,
    part: Partition,
    *,
    batch_rows: int = 131_072,
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write one partition's rows from the store to ``<folder>/export.parquet`` (streamed in
    batches, replaced atomically); the rows written. ``on_rows`` hears each batch's size."""
    table = _source(logstore, part.kind, part.model)
    col = _DATE_COLUMN[part.kind]
    start = datetime.combine(part.day, time(0), tzinfo=UTC)
    folder = part.folder(Path(root))
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / EXPORT_FILE
    tmp = folder / f".{EXPORT_FILE}.{os.getpid()}.tmp"
    sql = (
        f"SELECT * FROM {quote(table)} WHERE {col} >= ? AND {col} < ? ORDER BY {_ORDER[part.kind]}"
    )
    mirrored = _mirrored_keys(folder, part.kind)
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in logstore.query_batches(sql, [start, start + timedelta(days=1)], batch_rows):
            if mirrored is not None:  # rows the ingest API's lake copy already wrote
                batch = batch.filter(pc.invert(pc.is_in(_row_keys(batch, part.kind), mirrored)))
                if not batch.num_rows:
                    continue
            if writer is None:
                writer = pq.ParquetWriter(tmp, batch.schema, compression="zstd")
            writer.write_batch(batch, row_group_size=batch_rows)
            written += batch.num_rows
            if on_rows is not None:
                on_rows(batch.num_rows)
        if writer is None:  # no rows left for this date: no file either
            final.unlink(missing_ok=True)
            return 0
        writer.close()
        writer = None
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync_dir(folder)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return written


def _row_keys(table: pa.Table | pa.RecordBatch, kind: str) -> pa.Array:
    """One string per row naming its idempotency key: tenant (empty for none), a unit
    separator, then the request or event id."""
    tenant = pc.fill_null(table.column("tenant_id"), "")
    return pc.binary_join_element_wise(tenant, table.column(KEY_COLUMN[kind]), "\x1f")


def _mirrored_keys(folder: Path, kind: str) -> pa.Array | None:
    """The keys of the rows in a partition's ``ingest-*`` files (None when there are none)."""
    files = sorted(folder.glob(f"{INGEST_PREFIX}*.parquet"))
    if not files:
        return None
    parts = [
        _row_keys(pq.read_table(f, columns=["tenant_id", KEY_COLUMN[kind]]), kind) for f in files
    ]
    return pa.concat_arrays(
        [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in parts]
    )


def write_table_atomic(path: Path, table: pa.Table) -> None:
    """Write ``table`` as the Parquet file ``path``: to a temporary name beside it, fsynced,
    renamed over ``path``, the folder fsynced. A reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def pending_batches(store: LogStore) -> int:
    """How many committed batches still wait in the outbox for their lake copy (0 when the
    mirror was never on)."""
    exists = store.query_arrow(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?",
        [tables.LAKE_OUTBOX],
    )["n"][0].as_py()
    if not exists:
        return 0
    got = store.query_arrow(f"SELECT count(DISTINCT batch) AS n FROM {tables.LAKE_OUTBOX}")
    return int(got["n"][0].as_py())


@dataclass(frozen=True)
class ExportSummary:
    """What one :func:`export` wrote: rows and files per kind."""

    rows: dict[str, int]
    files: dict[str, int]


def export(
    logstore: LogStore,
    root: str | Path,
    models: Sequence[str] = (),
    *,
    events: bool = False,
    on_plan: Callable[[list[Partition]], None] | None = None,
    on_rows: Callable[[Partition, int], None] | None = None,
) -> ExportSummary:
    """Write the inferences and labels of ``models`` (and, with ``events``, every business
    event) from the store into the lake at ``root``, one file per partition.

    ``on_plan`` hears every partition before anything is written (for a progress total),
    ``on_rows`` each written batch. Idempotent; see the module docstring for the promises.

    Raises
    ------
    LakeError
        A lake of another layout version at ``root``, or ingested batches still waiting for
        their lake copy (``storage.lake_mirror``).
    storage.logstore.UnknownModelError
        A model without log tables.
    """
    waiting = pending_batches(logstore)
    if waiting:
        # their rows are in the table but not yet in ingest-* files: exported now, they would
        # be in the lake twice once the copy catches up
        raise LakeError(
            f"{waiting} ingested batch(es) wait in the store for their lake copy "
            "(the lake_dir setting): run this with DRIFTWATCH_LAKE_DIR set to the server's lake, "
            "which copies them first"
        )
    ensure_layout(root)
    plan: list[Partition] = []
    for model in models:
        for kind in ("inferences", "labels"):
            plan.extend(partitions(logstore, kind, model))
    if events:
        plan.extend(partitions(logstore, "events"))
    if on_plan is not None:
        on_plan(plan)
    rows = dict.fromkeys(KINDS, 0)
    files = dict.fromkeys(KINDS, 0)
    for part in plan:

        def heard(n: int, part: Partition = part) -> None:
            if on_rows is not None:
                on_rows(part, n)

        n = write_partition(logstore, root, part, on_rows=heard)
        rows[part.kind] += n
        files[part.kind] += 1 if n else 0
    return ExportSummary(rows, files)


def read_lake(root: str | Path, kind: str, model: str | None = None) -> pa.Table:
    """Every row of ``kind`` (of one ``model``) in the lake, with the partition values as the
    columns ``model`` (not for events) and ``date``; files unified by column name."""
    # imported here: pyarrow.dataset imports pandas (~0.7 s), which a server's start-up need
    # not pay for a lake read it may never do (issue 17)
    import pyarrow.dataset as ds

    if kind not in KINDS:
        raise LakeError(f"unknown lake kind {kind!r}: expected one of {list(KINDS)}")
    base = kind_root(root, kind)
    if model is not None:
        base = base / f"model={model}"
    if not base.exists():
        return pa.table({})
    fields: list[pa.Field[Any]] = [pa.field("date", pa.date32())]
    if model is None and kind != "events":
        fields.insert(0, pa.field("model", pa.string()))
    part = ds.partitioning(pa.schema(fields), flavor="hive")
    # the root also holds labels/ and events/: inferences are the model=<name> folders only
    folders = sorted(base.glob("model=*")) if kind == "inferences" and model is None else [base]
    files = [str(p) for folder in folders for p in _data_files(folder)]
    if not files:
        return pa.table({})
    schemas = [pq.read_schema(f) for f in files]
    unified = pa.unify_schemas(schemas)
    for f in part.schema:
        unified = unified.append(f)
    return ds.dataset(
        files, schema=unified, format="parquet", partitioning=part, partition_base_dir=str(base)
    ).to_table()


def _data_files(base: Path) -> Iterator[Path]:
    for path in sorted(base.rglob("*.parquet")):
        if not any(p.startswith(("_", ".")) for p in path.relative_to(base).parts):
            yield path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder: the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
