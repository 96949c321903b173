"""Hourly profiles from a Parquet lake: which date partitions changed, and the DuckDB engine
that profiles them (the Spark engine is :mod:`storage.spark_engine`).

The lake layout is :mod:`storage.lake`'s (version 1, written by ``driftwatch lake export`` or by
the serving fleet): a model's inference rows under
``<lake>/model=<name>/date=<YYYY-MM-DD>/*.parquet`` with the columns and types of its
DuckDB table. A file holds only rows whose ``ts`` falls on its partition's date: a row elsewhere
is an error that names the partition, never silently moved or dropped. Files whose names start
with ``_`` or ``.`` are ignored (Spark's ``_SUCCESS``, temporary files). A lake whose
``_driftwatch_lake.json`` names another layout version is refused.

Incremental: a run lists the files (path, size, mtime) of every date partition and compares
them with the manifest of files that the stored profiles were computed from; a date whose files
changed in any way (a file added, removed, rewritten), whose profiles were computed under an
older spec, or that was never profiled is recomputed whole, and its 24 hours are replaced at
once. Late rows therefore arrive as a new file in their date's partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from storage.lake import LAYOUT_FILE, LAYOUT_VERSION
from storage.lake import LakeError as _LayoutError
from storage.profile_kernel import PROFILE_SCHEMA, ProfileAccumulator, ProfileSpec
from storage.row_kernel import LABEL_SCHEMA, SAMPLE_BASE

__all__ = [
    "LAKE_LAYOUT_VERSION",
    "DayRows",
    "LakeError",
    "LakeFile",
    "changed_dates",
    "check_day",
    "check_partition",
    "duckdb_lake_dates",
    "duckdb_profile_dates",
    "label_files_for",
    "list_partitions",
    "spark_base_path",
]

LAKE_LAYOUT_VERSION = LAYOUT_VERSION
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
BATCH_ROWS = 1 << 17


class LakeError(_LayoutError, ValueError):
    """A lake that does not follow the layout (the message names the path and the problem)."""


@dataclass(frozen=True, order=True)
class LakeFile:
    """One Parquet file of a date partition as listed: path (as the filesystem names it),
    size in bytes, modification time in nanoseconds."""

    path: str
    size: int
    mtime_ns: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LakeFile:
        return cls(str(data["path"]), int(data["size"]), int(data["mtime_ns"]))


def filesystem(lake: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path of a lake URI (a local path, ``file://``, or any scheme
    pyarrow's filesystems read, such as ``s3://``)."""
    if "://" not in lake:
        import os

        return pafs.LocalFileSystem(), os.path.abspath(lake)
    scheme, rest = lake.split("://", 1)
    # Hadoop's names for S3 (what Spark is given) are S3 to pyarrow
    fs, root = pafs.FileSystem.from_uri(f"s3://{rest}" if scheme in ("s3a", "s3n") else lake)
    return fs, root.rstrip("/")


def spark_base_path(lake: str) -> str | None:
    """The lake root as Spark's readers name it, when the listing's paths are not (object
    stores list bucket-relative paths): ``s3://`` and ``s3a://`` become ``s3a://`` (Hadoop's
    S3 connector), other schemes (``gs://``, ``hdfs://``, ``abfss://``) stay; None for a local
    path or ``file://``, whose listed paths Spark reads as they are."""
    if "://" not in lake or lake.startswith("file://"):
        return None
    scheme, rest = lake.split("://", 1)
    return f"s3a://{rest}" if scheme in ("s3", "s3a", "s3n") else lake


def list_partitions(lake: str, model: str) -> dict[date, list[LakeFile]]:
    """The Parquet files of each date partition of ``model`` (sorted by path)."""
    fs, root = filesystem(lake)
    layout = fs.get_file_info(f"{root}/{LAYOUT_FILE}")
    if layout.type == pafs.FileType.File:
        import json

        with fs.open_input_file(layout.path) as f:
            try:
                version = json.loads(f.read()).get("layout_version")
            except (ValueError, AttributeError) as exc:
                raise LakeError(
                    f"{layout.path}: not a Driftwatch lake layout file ({exc})"
                ) from exc
        if version != LAYOUT_VERSION:
            raise LakeError(
                f"{layout.path}: layout_version {version!r}, this Driftwatch reads version "
                f"{LAYOUT_VERSION}"
            )
    base = f"{root}/model={model}"
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        return {}
    out: dict[date, list[LakeFile]] = {}
    for f in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if f.type != pafs.FileType.File:
            continue
        rel = f.path[len(base) + 1 :].split("/")
        if rel[-1].startswith(("_", ".")) or any(p.startswith(("_", ".")) for p in rel[:-1]):
            continue
        m = _DATE_DIR.match(rel[0]) if len(rel) >= 2 else None
        if m is None:
            raise LakeError(
                f"lake file {f.path!r}: not under a date=<YYYY-MM-DD> partition of "
                f"model={model} (layout v{LAKE_LAYOUT_VERSION}: model=<name>/"
                "date=<YYYY-MM-DD>/*.parquet)"
            )
        try:
            day = date.fromisoformat(m.group(1))
        except ValueError as exc:
            raise LakeError(f"lake partition {rel[0]!r} of {f.path!r}: {exc}") from exc
        mtime = f.mtime_ns if f.mtime_ns is not None else 0
        out.setdefault(day, []).append(LakeFile(f.path, int(f.size or 0), int(mtime)))
    return {d: sorted(files) for d, files in sorted(out.items())}


def changed_dates(
    current: dict[date, list[LakeFile]],
    manifest: dict[date, tuple[str, list[LakeFile]]],
    spec_key: str,
) -> list[date]:
    """Dates to recompute: new, changed, removed (their hours become empty), or profiled under
    another spec than ``spec_key``. ``manifest`` maps a date to (spec key, files) as stored."""
    out = set()
    for d, files in current.items():
        have = manifest.get(d)
        if have is None or have[0] != spec_key or sorted(have[1]) != sorted(files):
            out.add(d)
    out.update(d for d in manifest if d not in current)
    return sorted(out)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def check_day(day: date, rows: pa.Table) -> None:
    """Raise :class:`LakeError` when profile rows hold hours outside ``day`` (rows filed under
    the wrong date partition)."""
    if rows.num_rows == 0:
        return
    start, end = day_bounds(day)
    hours = rows.column("hour")
    outside = pc.sum(
        pc.or_(
            pc.less(hours, pa.scalar(start, hours.type)),
            pc.greater_equal(hours, pa.scalar(end, hours.type)),
        )
    ).as_py()
    if outside:
        first = pc.min(hours).as_py()
        raise LakeError(
            f"lake partition date={day.isoformat()}: rows with ts outside that date (hours from "
            f"{first.isoformat()}); a file holds only its date's rows"
        )


def check_partition(batch: pa.RecordBatch) -> None:
    """Raise :class:`LakeError` when a row's ``ts`` is not on its file's ``date`` partition (the
    hive column read with the rows); a batch without the column passes."""
    names = batch.schema.names
    if "date" not in names or batch.num_rows == 0:
        return
    ts = batch.column(names.index("ts"))
    us = pc.cast(ts, pa.timestamp("us", tz=getattr(ts.type, "tz", None))).cast(pa.int64())
    days = pc.floor(pc.divide(us.cast(pa.float64()), 86_400_000_000.0)).cast(pa.int64())
    part = batch.column(names.index("date")).cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    bad = pc.not_equal(days, part)
    n_bad = pc.sum(bad).as_py()
    if n_bad:
        first = pc.filter(batch.column(names.index("date")), bad)[0].as_py()
        raise LakeError(
            f"lake partition date={first}: {n_bad} rows with ts on another date; a file holds "
            "only its date's rows"
        )


def selected_columns(names: Sequence[str], spec: ProfileSpec) -> list[str]:
    """The columns a profile run reads: ts, tenant_id, model_version, the spec's columns the
    files have (format 2: also request_id, the sampled columns and the prediction and scores
    the label aggregates need)."""
    have = set(names)
    needs = ["ts", "tenant_id"] + (["request_id"] if spec.format == 2 else [])
    for need in needs:
        if need not in have:
            raise LakeError(f"lake files lack the column {need!r} (have {sorted(have)})")
    cols = list(needs) + (["model_version"] if "model_version" in have else [])
    cols += [c for c in spec.numeric if spec.numeric[c] and c in have]
    cols += [c for c in spec.categorical if c in have and c not in cols]
    extra = list(spec.sample_columns)
    if spec.labels is not None:
        extra += [spec.labels.prediction, *spec.labels.scores]
    cols += [c for c in dict.fromkeys(extra) if c in have and c not in cols]
    if "date" in have:  # the hive partition column: checked against ts
        cols.append("date")
    return cols


@dataclass(frozen=True)
class DayRows:
    """What a lake engine computes for one date: the profile rows and, for a format-2 spec,
    the sample rows and the label aggregates (``storage.row_kernel``)."""

    profiles: pa.Table
    samples: pa.Table
    labels: pa.Table

    @classmethod
    def empty(cls) -> DayRows:
        return cls(
            PROFILE_SCHEMA.empty_table(), SAMPLE_BASE.empty_table(), LABEL_SCHEMA.empty_table()
        )


def label_files_for(day: date, labels: dict[date, list[LakeFile]], days: int) -> list[LakeFile]:
    """The label files that can hold labels of ``day``'s inferences: those received from the
    day before (clock skew) to ``days`` days after (labels received later are not joined in
    lake mode; docs/scale-out.md)."""
    lo, hi = day - timedelta(days=1), day + timedelta(days=days)
    return sorted(f for d, fs in labels.items() if lo <= d <= hi for f in fs)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_profile_dates(
    dates: dict[date, list[LakeFile]],
    spec: ProfileSpec,
    *,
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
) -> Iterator[tuple[date, pa.Table]]:
    """Profile rows of each date from its files: DuckDB reads them
    (``read_parquet(..., hive_partitioning=true)``) and streams Arrow batches through the kernel.
    A date with no files yields no rows (its hours become empty)."""
    for day, out in duckdb_lake_dates(dates, spec, batch_rows=batch_rows, threads=threads):
        yield day, out.profiles


# A label is unique per (tenant, request_id) and the NULL tenant is its own scope; a row takes
# its own tenant's label, else the untenanted one (storage.logstore.label_join). A lake file may
# repeat a label: the first received wins, as in the embedded store (ties: the smaller label
# text), so the join never duplicates a row.
_LABELS_SQL = (
    "SELECT DISTINCT ON (tenant_id, request_id) tenant_id, request_id, label, received_at "
    "FROM read_parquet(?, hive_partitioning = false, union_by_name = true) "
    "WHERE request_id IS NOT NULL AND label IS NOT NULL "
    "ORDER BY tenant_id, request_id, received_at, CAST(label AS VARCHAR)"
)


def duckdb_lake_dates(
    dates: dict[date, list[LakeFile]],
    spec: ProfileSpec,
    *,
    labels: dict[date, list[LakeFile]] | None = None,
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
) -> Iterator[tuple[date, DayRows]]:
    """:class:`DayRows` of each date from its files: DuckDB reads them (joined to the label
    files ``labels[day]`` when the spec asks for label aggregates) and streams Arrow batches
    through the kernel. A date with no files yields no rows (its hours become empty)."""
    con = duckdb.connect()
    try:
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        for day, files in dates.items():
            if not files:
                yield day, DayRows.empty()
                continue
            paths = [f.path for f in files]
            src = "read_parquet(?, hive_partitioning = true, union_by_name = true)"
            names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}", [paths]).fetchall()]
            cols = selected_columns(names, spec)
            select = ", ".join(f"i.{_quote(c)}" for c in cols)
            params: list[Any] = [paths]
            sql = f"SELECT {select} FROM {src} i"
            if spec.labels is not None:
                lpaths = [f.path for f in (labels or {}).get(day, [])]
                if lpaths:
                    sql = (
                        f"WITH lab AS ({_LABELS_SQL}) SELECT {select}, "
                        "coalesce(lt.label, lu.label) AS label, "
                        "coalesce(lt.received_at, lu.received_at) AS label_received_at "
                        f"FROM {src} i LEFT JOIN lab lt ON lt.request_id = i.request_id AND "
                        "lt.tenant_id = i.tenant_id LEFT JOIN lab lu ON lu.request_id = "
                        "i.request_id AND lu.tenant_id IS NULL"
                    )
                    params = [lpaths, paths]
                else:
                    sql = (
                        f"SELECT {select}, CAST(NULL AS VARCHAR) AS label, "
                        f"CAST(NULL AS TIMESTAMPTZ) AS label_received_at FROM {src} i"
                    )
            reader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
            acc = ProfileAccumulator(spec, cols)
            for batch in reader:
                check_partition(batch)
                acc.add(batch)
            rows = acc.rows()
            check_day(day, rows)
            yield day, DayRows(rows, acc.samples(), acc.label_rows())
    finally:
        con.close()
