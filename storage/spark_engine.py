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

from storage.lake_profiles import LakeFile, check_partition, selected_columns
from storage.profile_kernel import (
    PROFILE_SCHEMA,
    ProfileAccumulator,
    ProfileSpec,
    merge_profiles,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

__all__ = ["MissingSparkError", "session", "spark_profile_dates"]

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
    if base_path is not None:
        paths = [
            p if "://" in p else f"{base_path.rstrip('/')}/{p.split('/model=', 1)[-1]}"
            for p in paths
        ]
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
