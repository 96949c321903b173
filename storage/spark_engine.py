"""The Apache Spark profile engine: the profile kernel run by ``DataFrame.mapInArrow`` over a
Parquet lake (see :mod:`storage.lake_profiles` for the layout and the incremental manifest).

How a run goes: Spark reads the changed dates' files (only the columns profiled); every task
streams its Arrow batches through :class:`storage.profile_kernel.ProfileAccumulator` and emits
partial profile rows of the groups it saw; the partials are repartitioned by hour and each
partition merges its hours with :func:`storage.profile_kernel.merge_profiles`; the driver
collects the merged rows (their volume grows with hours x segments x columns, not rows) and
splits them by date. Nothing is binned in Spark SQL: Spark has no ``searchsorted``, its
Bucketizer is ``[a, b)`` where our bins are ``(a, b]``, and its ``isnan(NULL)`` is false.

pyspark is an optional extra (``pip install 'driftwatch[spark]'``) and is imported only here,
inside the functions that need it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from storage.arrow_ipc import from_stream, to_stream
from storage.lake_profiles import DayRows, LakeFile, check_partition, selected_columns
from storage.profile_kernel import (
    PROFILE_SCHEMA,
    ProfileAccumulator,
    ProfileSpec,
    merge_profiles,
)
from storage.row_kernel import LABEL_SCHEMA, SAMPLE_BASE, merge_labels, merge_samples

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = [
    "MissingSparkError",
    "session",
    "spark_lake_dates",
    "spark_path",
    "spark_profile_dates",
]

# Spark carries the hour as epoch hours (LongType): no session time zone can shift it.
_SPARK_SCHEMA_DDL = (
    "hour long, tenant_id string, model_version string, column_name string, bins_key string, "
    "count long, missing long, n_finite long, min double, max double, sum double, "
    "sum_sq double, counts array<long>, categories array<string>"
)
_US_PER_HOUR = 3_600_000_000


class MissingSparkError(ImportError):
    """pyspark is not installed."""


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:  # the exact command, as Alibi Detect does
        raise MissingSparkError(
            "the Spark engine needs pyspark: pip install 'driftwatch[spark]' "
            "(and Java 17 or newer on PATH)"
        ) from exc
    return pyspark


def session(
    master: str = "local[*]", app_name: str = "driftwatch-profile", **conf: str
) -> SparkSession:
    """A Spark session for profiling: session time zone UTC, Arrow batches of 64k rows, and the
    Python workers on this interpreter when running locally. On a cluster (``spark-submit``)
    the master and resources come from the submit command."""
    _pyspark()
    from pyspark.sql import SparkSession

    local = master.startswith("local")
    if local:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        # a local session talks to itself over loopback only (not the host's interface)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "65536")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if local:
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    if master:
        builder = builder.master(master)
    for k, v in conf.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def _to_spark(rows: pa.Table) -> pa.RecordBatch:
    hour = pc.divide(rows.column("hour").cast(pa.int64()), _US_PER_HOUR)
    out = rows.set_column(0, pa.field("hour", pa.int64()), hour)
    return (
        out.combine_chunks().to_batches()[0]
        if out.num_rows
        else pa.RecordBatch.from_pylist([], out.schema)
    )


def _from_spark(table: pa.Table) -> pa.Table:
    hour = pc.multiply(table.column("hour").cast(pa.int64()), _US_PER_HOUR).cast(
        PROFILE_SCHEMA.field("hour").type
    )
    return table.set_column(0, PROFILE_SCHEMA.field("hour"), hour).cast(PROFILE_SCHEMA)


def spark_path(path: str, base_path: str | None) -> str:
    """A listed file's path as Spark reads it. An object store lists bucket-relative paths
    (``bucket/lake/model=m/date=d/f.parquet``); ``base_path`` is the lake root as Spark names
    it (``s3a://bucket/lake``, see ``storage.lake_profiles.spark_base_path``), and the path
    is rebuilt under it. Local paths and paths with a scheme are read as they are."""
    if base_path is None or "://" in path:
        return path
    root = base_path.split("://", 1)[1].strip("/")
    rel = path.strip("/")
    if root and rel.startswith(root + "/"):
        return f"{base_path.rstrip('/')}/{rel[len(root) + 1 :]}"
    return path


def spark_profile_dates(
    spark: SparkSession,
    dates: dict[date, list[LakeFile]],
    spec: ProfileSpec,
    *,
    base_path: str | None = None,
) -> Iterator[tuple[date, pa.Table]]:
    """Profile rows of each date from its files, computed by Spark (see the module docstring).
    A date with no files yields no rows (its hours become empty). ``base_path`` is the lake
    root as Spark names it (``s3a://...``), when the listed paths are not directly readable
    by Spark (the listing gives bucket-relative paths for object stores)."""
    with_files = {d: fs for d, fs in dates.items() if fs}
    for d in dates:
        if d not in with_files:
            yield d, PROFILE_SCHEMA.empty_table()
    if not with_files:
        return
    paths = [f.path for fs in with_files.values() for f in fs]
    paths = [spark_path(p, base_path) for p in paths]
    # the model's folder as Spark's basePath: the date=... folders become the ``date`` column
    base = paths[0].rsplit("/date=", 1)[0]
    df = spark.read.option("basePath", base).parquet(*paths)
    cols = selected_columns(df.columns, spec)
    spec_json = spec.to_json()

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from storage.profile_kernel import ProfileSpec as _Spec

        acc = ProfileAccumulator(_Spec.from_json(spec_json), cols)
        for batch in batches:
            check_partition(batch)
            acc.add(batch)
        rows = acc.rows()
        if rows.num_rows:
            yield _to_spark(rows)

    def merged(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts = [_from_spark(pa.Table.from_batches([b])) for b in batches if b.num_rows]
        if parts:
            yield _to_spark(merge_profiles(parts))

    out = (
        df.select(*cols)
        .mapInArrow(partials, _SPARK_SCHEMA_DDL)
        .repartition("hour")
        .mapInArrow(merged, _SPARK_SCHEMA_DDL)
    )
    table = _from_spark(out.toArrow())
    days = pc.cast(pc.floor_temporal(table.column("hour"), unit="day"), pa.date32())
    for d in sorted(with_files):
        yield d, table.filter(pc.equal(days, pa.scalar(d, pa.date32())))


# Format-2 specs (storage.row_kernel): every task emits its partial profiles, samples and label
# aggregates hour by hour as Arrow IPC blobs (one Spark schema for three tables); the blobs are
# repartitioned by (kind, hour) and each partition merges its hours with the kernel's merges.
_BLOB_DDL = "kind string, hour long, payload binary"
_KINDS = ("profiles", "samples", "labels")


def _by_hour(kind: str, table: pa.Table) -> Iterator[tuple[str, int, bytes]]:
    if table.num_rows == 0:
        return
    hours = pc.divide(table.column("hour").cast(pa.int64()), _US_PER_HOUR)
    for h in pc.unique(hours).to_pylist():
        yield kind, int(h), to_stream(table.filter(pc.equal(hours, h)))


def _blobs(items: list[tuple[str, int, bytes]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array([i[0] for i in items], pa.string()),
            pa.array([i[1] for i in items], pa.int64()),
            pa.array([i[2] for i in items], pa.binary()),
        ],
        names=["kind", "hour", "payload"],
    )


def _merge_kind(kind: str, parts: list[pa.Table], k: int) -> pa.Table:
    if kind == "profiles":
        return merge_profiles(parts)
    if kind == "samples":
        return merge_samples(parts, k)
    return merge_labels(parts)


def _labels_df(spark: SparkSession, paths: list[str]) -> Any:
    """The model's labels, one per (tenant, request_id): the first received wins (ties: the
    smaller label text), as storage.lake_profiles' DuckDB join and the embedded store."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = spark.read.option("mergeSchema", "true").parquet(*paths)
    df = df.select("tenant_id", "request_id", "label", "received_at").where(
        F.col("request_id").isNotNull() & F.col("label").isNotNull()
    )
    first = Window.partitionBy("tenant_id", "request_id").orderBy(
        "received_at", F.col("label").cast("string")
    )
    return df.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")


def spark_lake_dates(
    spark: SparkSession,
    dates: dict[date, list[LakeFile]],
    spec: ProfileSpec,
    *,
    labels: dict[date, list[LakeFile]] | None = None,
    base_path: str | None = None,
) -> Iterator[tuple[date, DayRows]]:
    """:class:`storage.lake_profiles.DayRows` of each date, computed by Spark: for a format-1
    spec the profiles as :func:`spark_profile_dates`; for a format-2 spec also the samples and
    the label aggregates (the label files ``labels[day]`` joined to the day's rows), all in one
    scan. A date with no files yields empty tables."""
    if spec.format == 1:
        for d, rows in spark_profile_dates(spark, dates, spec, base_path=base_path):
            yield d, DayRows(rows, SAMPLE_BASE.empty_table(), LABEL_SCHEMA.empty_table())
        return
    from pyspark.sql import functions as F

    with_files = {d: fs for d, fs in dates.items() if fs}
    for d in dates:
        if d not in with_files:
            yield d, DayRows.empty()
    if not with_files:
        return

    paths = [spark_path(f.path, base_path) for fs in with_files.values() for f in fs]
    base = paths[0].rsplit("/date=", 1)[0]
    df = spark.read.option("basePath", base).option("mergeSchema", "true").parquet(*paths)
    cols = selected_columns(df.columns, spec)
    df = df.select(*cols)
    if spec.labels is not None:
        lpaths = sorted(
            {spark_path(f.path, base_path) for d in with_files for f in (labels or {}).get(d, [])}
        )
        if lpaths:
            lab = _labels_df(spark, lpaths)
            lt = lab.alias("lt")
            lu = lab.where(F.col("tenant_id").isNull()).alias("lu")
            i = df.alias("i")
            df = (
                i.join(
                    lt,
                    (F.col("lt.request_id") == F.col("i.request_id"))
                    & (F.col("lt.tenant_id") == F.col("i.tenant_id")),
                    "left",
                )
                .join(lu, F.col("lu.request_id") == F.col("i.request_id"), "left")
                .select(
                    *[F.col(f"i.{c}").alias(c) for c in cols],
                    F.coalesce(F.col("lt.label"), F.col("lu.label")).alias("label"),
                    F.coalesce(F.col("lt.received_at"), F.col("lu.received_at")).alias(
                        "label_received_at"
                    ),
                )
            )
        else:
            df = df.withColumn("label", F.lit(None).cast("string")).withColumn(
                "label_received_at", F.lit(None).cast("timestamp")
            )
    spec_json = spec.to_json()
    k = spec.sample_k

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from storage.profile_kernel import ProfileSpec as _Spec

        acc: ProfileAccumulator | None = None
        for batch in batches:
            if acc is None:
                acc = ProfileAccumulator(_Spec.from_json(spec_json), batch.schema.names)
            check_partition(batch)
            acc.add(batch)
        if acc is None:
            return
        items = [
            *_by_hour("profiles", acc.rows()),
            *_by_hour("samples", acc.samples()),
            *_by_hour("labels", acc.label_rows()),
        ]
        if items:
            yield _blobs(items)

    def merged(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts: dict[tuple[str, int], list[pa.Table]] = {}
        for b in batches:
            for kind, hour, blob in zip(
                b.column(0).to_pylist(),
                b.column(1).to_pylist(),
                b.column(2).to_pylist(),
                strict=True,
            ):
                parts.setdefault((kind, hour), []).append(from_stream(blob))
        items = [
            (kind, hour, to_stream(_merge_kind(kind, tables, k)))
            for (kind, hour), tables in sorted(parts.items())
        ]
        if items:
            yield _blobs(items)

    out = (
        df.mapInArrow(partials, _BLOB_DDL)
        .repartition("kind", "hour")
        .mapInArrow(merged, _BLOB_DDL)
        .toArrow()
    )
    got: dict[str, list[pa.Table]] = {kind: [] for kind in _KINDS}
    for kind, blob in zip(
        out.column("kind").to_pylist(), out.column("payload").to_pylist(), strict=True
    ):
        got[kind].append(from_stream(blob))
    profiles = merge_profiles(got["profiles"])
    samples = merge_samples(got["samples"], k) if got["samples"] else SAMPLE_BASE.empty_table()
    label_rows = merge_labels(got["labels"])
    for d in sorted(with_files):
        day = pa.scalar(d, pa.date32())

        def on(table: pa.Table, day: pa.Scalar = day) -> pa.Table:
            if table.num_rows == 0:
                return table
            days = pc.cast(pc.floor_temporal(table.column("hour"), unit="day"), pa.date32())
            return table.filter(pc.equal(days, day))

        yield d, DayRows(on(profiles), on(samples), on(label_rows))
