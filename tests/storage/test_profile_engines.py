"""Every profile engine computes the same hourly profile rows from the same logs.

Engines: DuckDB on the embedded store (the default build), DuckDB on a Parquet lake, Apache Spark
(``local[2]``) on the same lake, and the kernel on the whole table in one batch. The generated
lake holds what dialects disagree on: NaN, NULL, +-inf, -0.0, values exactly on bin edges,
integers on integer edges, NULL model versions, a categorical column with more values than any
top-K, booleans, several tenants and versions, and late rows arriving for an hour that was
already profiled. Rows must be identical: counts, missing, n_finite, min, max, histograms and
categories exactly; float sums within 1e-12 of their scale (the order of additions differs).

Cost: one Spark session per test session (~10 s to start on 2 cores), and a lake of a few
thousand rows; see the note at the end of docs/scale-out.md.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.profiles import ReferenceBins
from storage.lake_profiles import (
    LakeError,
    changed_dates,
    duckdb_profile_dates,
    list_partitions,
)
from storage.logstore import LogStore
from storage.profile_kernel import (
    PROFILE_SCHEMA,
    ProfileAccumulator,
    ProfileSpec,
    merge_profiles,
    profile_batch,
    sort_profiles,
)
from storage.profiles import ProfileStore
from storage.types import FeatureSpec, ModelSchema

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 3
TS = pa.timestamp("us", tz="UTC")
SCHEMA = ModelSchema(
    "binary",
    (
        FeatureSpec("x", "numeric"),
        FeatureSpec("k", "numeric"),
        FeatureSpec("plan", "categorical"),
        FeatureSpec("city", "categorical"),
        FeatureSpec("mobile", "boolean"),
    ),
    scores=("score",),
)


def logs(n: int, seed: int, start: datetime = T0, days: int = DAYS, prefix: str = "r") -> pa.Table:
    """Inference rows with the awkward values (see the module docstring)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.03] = np.nan
    x[:6] = [np.inf, -np.inf, -0.0, 0.0, np.nan, -1e12]
    k = rng.integers(0, 6, n).astype(float)  # on the integer edges of k's bins
    x_null = rng.random(n) < 0.02
    plan = rng.choice(np.array(["free", "pro", "team", "enterprise", None], dtype=object), n)
    city = np.array([f"c{int(v):03d}" for v in rng.zipf(1.3, n) % 400], dtype=object)
    city[rng.random(n) < 0.05] = None
    secs = rng.uniform(0, days * 86400, n)
    secs[:24] = np.arange(24) * 3600.0  # rows exactly on hour boundaries
    version = rng.choice(np.array(["v1", "v2", None], dtype=object), n)
    return pa.table(
        {
            "request_id": [f"{prefix}{seed}-{i}" for i in range(n)],
            "ts": pa.array([start + timedelta(seconds=float(s)) for s in secs], TS),
            "tenant_id": rng.choice(["acme", "globex", "initech", "umbrella"], n),
            "model_version": pa.array(version, pa.string()),
            "x": pa.array(x, pa.float64(), mask=x_null),
            "k": pa.array(np.where(rng.random(n) < 0.02, np.nan, k), pa.float64()),
            "plan": pa.array(plan, pa.string()),
            "city": pa.array(city, pa.string()),
            "mobile": pa.array(rng.random(n) < 0.3, mask=rng.random(n) < 0.01),
            "prediction": pa.array(rng.integers(0, 2, n), pa.int64()),
            "score": rng.random(n),
        }
    )


def spec_for(ref: pa.Table) -> ProfileSpec:
    x = ref.column("x").to_numpy(zero_copy_only=False)
    k = ref.column("k").to_numpy(zero_copy_only=False)
    bx = ReferenceBins.numeric(x).edges
    coarse = ReferenceBins.numeric(x, n_bins=7).edges
    bk = ReferenceBins.numeric(k).edges
    return ProfileSpec(
        {"x": (bx, coarse), "k": (bk,), "score": ((0.25, 0.5, 0.75),)},
        ("plan", "city", "mobile"),
    )


def write_lake(root, model: str, table: pa.Table, name: str) -> None:
    """Files of the lake layout: model=<name>/date=<YYYY-MM-DD>/<name>.parquet."""
    days = table.column("ts").cast(pa.date32()).to_pylist()
    by_day: dict[date, list[int]] = {}
    for i, d in enumerate(days):
        by_day.setdefault(d, []).append(i)
    for d, idx in by_day.items():
        folder = root / f"model={model}" / f"date={d.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.take(pa.array(idx)), folder / f"{name}.parquet")


def assert_same_profiles(got: pa.Table, want: pa.Table) -> None:
    """Identical profile rows; float sums within 1e-12 of their scale."""
    got, want = sort_profiles(got.cast(PROFILE_SCHEMA)), sort_profiles(want.cast(PROFILE_SCHEMA))
    assert got.num_rows == want.num_rows
    for name in ("hour", "tenant_id", "model_version", "column_name", "bins_key"):
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    for name in ("count", "missing", "n_finite", "min", "max", "counts", "categories"):
        g, w = got.column(name).to_pylist(), want.column(name).to_pylist()
        bad = [i for i, (a, b) in enumerate(zip(g, w, strict=True)) if a != b]
        assert not bad, (name, [(got.slice(i, 1).to_pylist(), w[i]) for i in bad[:3]])
    lo = np.abs(np.nan_to_num(want.column("min").to_numpy(zero_copy_only=False)))
    hi = np.abs(np.nan_to_num(want.column("max").to_numpy(zero_copy_only=False)))
    n = want.column("n_finite").to_numpy()
    top = np.maximum(lo, hi)
    for name, scale in (("sum", n * top), ("sum_sq", n * top * top)):
        g = got.column(name).to_numpy()
        w = want.column(name).to_numpy()
        for a, b, s in zip(g, w, scale, strict=True):
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12 * max(s, 1.0)), (name, a, b)


def native_rows(tables: list[pa.Table], spec: ProfileSpec) -> pa.Table:
    """The DuckDB engine on the embedded store: rows appended, the range ensured, late rows
    appended afterwards and ensured again (their hours dirty)."""
    ls = LogStore(":memory:")
    try:
        ls.ensure_model("churn", SCHEMA)
        ps = ProfileStore(ls, batch_rows=2048)
        ps.register("churn", spec)
        for t in tables:
            ls.append_inferences("churn", t)
            ps.ensure("churn", T0, T0 + timedelta(days=DAYS))
        return ps.profile_rows("churn", T0, T0 + timedelta(days=DAYS))
    finally:
        ls.close()


@pytest.fixture(scope="module")
def lake_data(tmp_path_factory) -> tuple[object, pa.Table, pa.Table, ProfileSpec]:
    root = tmp_path_factory.mktemp("lake")
    first = logs(6000, 1)
    late = logs(400, 2, start=T0 + timedelta(days=1), days=1, prefix="late")  # day 2 only
    write_lake(root, "churn", first, "part-0")
    return root, first, late, spec_for(logs(2000, 3))


def _lake_rows(root, spec: ProfileSpec, engine) -> pa.Table:
    parts = list_partitions(str(root), "churn")
    return pa.concat_tables([rows for _, rows in engine(parts, spec)])


def _incremental(root, late: pa.Table, spec: ProfileSpec, engine) -> tuple[list[date], pa.Table]:
    """Profile the lake, add the late file, recompute only the changed dates."""
    before = list_partitions(str(root), "churn")
    by_day = dict(engine(before, spec))
    manifest = {d: (spec.key, files) for d, files in before.items()}
    name = f"late-{id(engine)}"
    write_lake(root, "churn", late, name)
    try:
        after = list_partitions(str(root), "churn")
        todo = changed_dates(after, manifest, spec.key)
        by_day.update(engine({d: after[d] for d in todo}, spec))
    finally:
        for f in root.glob(f"model=churn/date=*/{name}.parquet"):
            f.unlink()
    return todo, pa.concat_tables(by_day.values())


def test_kernel_merge_of_partials_equals_one_pass(lake_data) -> None:
    _, first, _, spec = lake_data
    whole = profile_batch(first, spec)
    parts = [profile_batch(first.slice(i, 777), spec) for i in range(0, first.num_rows, 777)]
    assert sum(p.num_rows for p in parts) > whole.num_rows  # partials really overlap
    assert_same_profiles(merge_profiles(parts), whole)
    acc = ProfileAccumulator(spec)
    for batch in first.to_batches(max_chunksize=500):
        acc.add(batch)
    assert_same_profiles(acc.rows(), whole)


def test_native_duckdb_build_equals_the_kernel(lake_data) -> None:
    _, first, late, spec = lake_data
    want = profile_batch(pa.concat_tables([first, late]), spec)
    assert_same_profiles(native_rows([first, late], spec), want)


def test_duckdb_on_lake_equals_native_with_late_rows(lake_data) -> None:
    root, first, late, spec = lake_data
    assert_same_profiles(_lake_rows(root, spec, duckdb_profile_dates), native_rows([first], spec))
    todo, rows = _incremental(root, late, spec, duckdb_profile_dates)
    assert todo == [date(2026, 3, 2)]  # only the late rows' date is recomputed
    assert_same_profiles(rows, native_rows([first, late], spec))


def test_changed_dates_follow_files_and_spec(lake_data) -> None:
    root, _, _, spec = lake_data
    parts = list_partitions(str(root), "churn")
    manifest = {d: (spec.key, files) for d, files in parts.items()}
    assert changed_dates(parts, manifest, spec.key) == []
    assert changed_dates(parts, manifest, "other-spec") == sorted(parts)
    gone = dict(parts)
    day = sorted(gone)[0]
    del gone[day]
    assert changed_dates(gone, manifest, spec.key) == [day]  # its hours become empty


def test_rows_outside_their_date_partition_are_refused(tmp_path) -> None:
    t = logs(50, 4, days=1)
    folder = tmp_path / "model=churn" / "date=2026-03-05"
    folder.mkdir(parents=True)
    pq.write_table(t, folder / "wrong.parquet")
    spec = ProfileSpec({"x": ((0.0, 1.0),)}, ())
    with pytest.raises(LakeError, match="date=2026-03-05: 50 rows with ts on another date"):
        list(duckdb_profile_dates(list_partitions(str(tmp_path), "churn"), spec))


def test_a_lake_exported_by_lake_export_profiles_like_the_store(tmp_path) -> None:
    """``driftwatch lake export`` (storage.lake.export) writes what the engines read."""
    from storage.lake import export

    data = logs(1500, 5)
    spec = spec_for(logs(500, 6))
    ls = LogStore(":memory:")
    try:
        ls.ensure_model("churn", SCHEMA)
        ls.append_inferences("churn", data)
        export(ls, tmp_path, models=["churn"])
    finally:
        ls.close()
    parts = list_partitions(str(tmp_path), "churn")
    assert sorted(parts) == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    got = pa.concat_tables([rows for _, rows in duckdb_profile_dates(parts, spec)])
    assert_same_profiles(got, native_rows([data], spec))


def test_another_layout_version_is_refused(tmp_path) -> None:
    (tmp_path / "_driftwatch_lake.json").write_text('{"layout_version": 2}')
    with pytest.raises(LakeError, match="layout_version 2"):
        list_partitions(str(tmp_path), "churn")


def test_lake_layout_errors_name_the_file(tmp_path) -> None:
    (tmp_path / "model=churn" / "day=1").mkdir(parents=True)
    (tmp_path / "model=churn" / "day=1" / "a.parquet").write_bytes(b"")
    with pytest.raises(LakeError, match=r"a\.parquet.*date=<YYYY-MM-DD>"):
        list_partitions(str(tmp_path), "churn")


# -- Spark (the session-wide ``spark`` fixture is in tests/storage/conftest.py) -----------------
@pytest.mark.slow
@pytest.mark.timeout(900)  # the JVM's start: ~11 s on a quiet machine, minutes at load 15+
def test_spark_on_lake_equals_native_and_duckdb_with_late_rows(lake_data, spark) -> None:
    from storage.spark_engine import spark_profile_dates

    root, first, late, spec = lake_data

    def engine(dates, spec):
        return spark_profile_dates(spark, dates, spec)

    got = _lake_rows(root, spec, engine)
    assert_same_profiles(got, native_rows([first], spec))
    assert_same_profiles(got, _lake_rows(root, spec, duckdb_profile_dates))
    todo, rows = _incremental(root, late, spec, engine)
    assert todo == [date(2026, 3, 2)]
    assert_same_profiles(rows, native_rows([first, late], spec))


def test_spark_is_handed_paths_it_reads() -> None:
    from storage.lake_profiles import spark_base_path

    assert spark_base_path("/data/lake") is None
    assert spark_base_path("file:///data/lake") is None
    assert spark_base_path("s3://bucket/lake") == "s3a://bucket/lake"  # Hadoop's S3 connector
    assert spark_base_path("s3a://bucket/lake") == "s3a://bucket/lake"
    assert spark_base_path("gs://bucket/lake") == "gs://bucket/lake"


def test_a_bucket_relative_listing_is_read_under_the_lake_uri() -> None:
    pytest.importorskip("pyspark")
    from storage.spark_engine import spark_path

    base = "s3a://bucket/lake"
    assert spark_path("bucket/lake/model=m/date=2026-03-01/a.parquet", base) == (
        "s3a://bucket/lake/model=m/date=2026-03-01/a.parquet"
    )
    assert spark_path("bucket/lake/labels/model=m/date=2026-03-01/a.parquet", base) == (
        "s3a://bucket/lake/labels/model=m/date=2026-03-01/a.parquet"
    )
    assert spark_path("/data/lake/model=m/x.parquet", None) == "/data/lake/model=m/x.parquet"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_spark_reads_an_object_store_listing_through_the_base_path(lake_data, spark) -> None:
    """An object store lists bucket-relative paths (``bucket/lake/model=.../x.parquet``);
    Spark reads them under the lake's URI (here ``file://``, as ``s3a://`` on S3)."""
    from storage.lake_profiles import LakeFile
    from storage.spark_engine import spark_profile_dates

    root, first, _, spec = lake_data
    listed = {
        d: [LakeFile(f.path.lstrip("/"), f.size, f.mtime_ns) for f in files]
        for d, files in list_partitions(str(root), "churn").items()
        if not any("late-" in f.path for f in files)
    }
    got = spark_profile_dates(spark, listed, spec, base_path=f"file://{root}")
    assert_same_profiles(pa.concat_tables([r for _, r in got]), native_rows([first], spec))
