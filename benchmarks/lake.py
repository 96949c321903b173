"""Benchmark: the same Parquet lake profiled by Apache Spark (``local[2]``) and by DuckDB on the
lake, both running the one profile kernel (storage/profile_kernel.py).

The lake: ``--rows`` inference rows (default 10,000,000) over 30 days, two files a day
(``model=bench/date=<day>/part-{0,1}.parquet``), 4 tenants, 3 model versions, 10 numeric columns
(NaN, NULL, +-inf, values on bin edges) each with its reference's 10 bins, 3 categorical
columns (cardinality 4, 50 and 1,000). Generated once per size under ``--dir`` and reused.

Measured in one run, each engine profiling every date (a full, not an incremental, run):

* ``duckdb``: DuckDB reads the files (``read_parquet``) and streams Arrow batches through the
  kernel, in this process; CPU = this process's user + system time;
* ``spark``: a ``local[2]`` session started first (start-up timed apart), then
  ``mapInArrow`` with the kernel, partials repartitioned by hour and merged; CPU = this
  process and every process under it (the JVM and its Python workers), read with psutil
  before the session stops.

Both outputs are compared (identical rows, sums within 1e-12 of scale). Goals on 2 cores:
Spark >= 200k rows/s, DuckDB on the lake >= 1M rows/s. The last line is a JSON object of the
figures. The machine may be shared: ``load`` is printed with the figures.

Usage::

    python benchmarks/lake.py                  # 10M rows
    python benchmarks/lake.py --rows 1000000   # a smaller lake
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.lake_profiles import duckdb_profile_dates, list_partitions
from storage.profile_kernel import ProfileSpec, sort_profiles

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
NUMERIC = [f"f{i}" for i in range(10)]
CATEGORICAL = {"plan": 4, "country": 50, "item": 1000}


def make_lake(root: Path, rows: int, seed: int = 7) -> Path:
    """The lake for ``rows`` rows (reused when present)."""
    lake = root / f"lake-{rows}"
    done = lake / "_complete"
    if done.exists():
        return lake
    rng = np.random.default_rng(seed)
    per_file = rows // (DAYS * 2)
    for d in range(DAYS):
        day = T0 + timedelta(days=d)
        folder = lake / "model=bench" / f"date={day.date().isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for part in range(2):
            n = per_file + (rows - per_file * DAYS * 2 if d == DAYS - 1 and part == 1 else 0)
            us = np.sort(rng.integers(0, 86_400_000_000, n)) + int(day.timestamp() * 1e6)
            cols: dict[str, Any] = {
                "request_id": pa.array(np.char.add(f"{d}-{part}-", np.arange(n).astype(str))),
                "ts": pa.array(us, pa.timestamp("us", tz="UTC")),
                "tenant_id": pa.array(rng.choice(["acme", "globex", "initech", "umbrella"], n)),
                "model_version": pa.array(
                    rng.choice(np.array(["v1", "v2", None], dtype=object), n), pa.string()
                ),
            }
            for i, c in enumerate(NUMERIC):
                x = rng.normal(i, 1 + i, n)
                x[rng.random(n) < 0.01] = np.nan
                x[rng.random(n) < 0.001] = np.inf
                x[: n // 100] = np.round(x[: n // 100])  # some on integer values
                cols[c] = pa.array(x, pa.float64(), mask=rng.random(n) < 0.01)
            for c, k in CATEGORICAL.items():
                codes = rng.zipf(1.5, n) % k
                names = np.array([f"{c}{j}" for j in range(k)], dtype=object)
                cols[c] = pa.DictionaryArray.from_arrays(
                    pa.array(codes.astype(np.int32)), pa.array(names, pa.string())
                ).cast(pa.string())
            pq.write_table(pa.table(cols), folder / f"part-{part}.parquet")
    done.write_text("ok")
    return lake


def bench_spec() -> ProfileSpec:
    numeric = {
        c: (tuple(float(e) for e in np.linspace(i - 3 * (1 + i), i + 3 * (1 + i), 9)),)
        for i, c in enumerate(NUMERIC)
    }
    return ProfileSpec(numeric, tuple(CATEGORICAL))


def _cpu_self() -> float:
    t = os.times()
    return t.user + t.system


def _cpu_tree() -> float:
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            c = p.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            pass
    return total


def run_duckdb(lake: Path, spec: ProfileSpec) -> tuple[pa.Table, dict[str, float]]:
    from storage import profile_kernels

    profile_kernels.warm_up()
    dates = list_partitions(str(lake), "bench")
    c0, t0 = _cpu_self(), time.perf_counter()
    out = pa.concat_tables([rows for _, rows in duckdb_profile_dates(dates, spec)])
    return out, {"seconds": time.perf_counter() - t0, "cpu_s": _cpu_self() - c0}


def run_spark(lake: Path, spec: ProfileSpec, master: str) -> tuple[pa.Table, dict[str, float]]:
    from storage.spark_engine import session, spark_profile_dates

    dates = list_partitions(str(lake), "bench")
    c0, t0 = _cpu_tree(), time.perf_counter()
    spark = session(master, "driftwatch-bench", **{"spark.sql.shuffle.partitions": "4"})
    spark.range(1).collect()
    start_s, start_cpu = time.perf_counter() - t0, _cpu_tree() - c0
    try:
        c1, t1 = _cpu_tree(), time.perf_counter()
        out = pa.concat_tables([rows for _, rows in spark_profile_dates(spark, dates, spec)])
        figures = {
            "seconds": time.perf_counter() - t1,
            "cpu_s": _cpu_tree() - c1,
            "startup_s": start_s,
            "startup_cpu_s": start_cpu,
        }
    finally:
        spark.stop()
    return out, figures


def same(a: pa.Table, b: pa.Table) -> bool:
    a, b = sort_profiles(a), sort_profiles(b)
    if a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        if name in ("sum", "sum_sq"):
            x, y = a.column(name).to_numpy(), b.column(name).to_numpy()
            scale = np.maximum(np.abs(x), 1.0)
            if not np.all((x == y) | (np.abs(x - y) <= 1e-12 * scale)):
                return False
        elif a.column(name).to_pylist() != b.column(name).to_pylist():
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path("data/bench-lake"))
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--skip-spark", action="store_true")
    args = ap.parse_args()
    t = time.perf_counter()
    lake = make_lake(args.dir, args.rows)
    print(
        f"lake: {lake} ({args.rows:,} rows, {DAYS} days, {DAYS * 2} files; "
        f"{time.perf_counter() - t:.1f} s to make or find)"
    )
    spec = bench_spec()
    figures: dict[str, Any] = {
        "benchmark": "lake",
        "rows": args.rows,
        "load_before": os.getloadavg()[0],
    }
    duck, fd = run_duckdb(lake, spec)
    figures["duckdb_lake"] = {**fd, "rows_per_s": args.rows / fd["seconds"]}
    print(
        f"duckdb on lake : {fd['seconds']:7.1f} s  {args.rows / fd['seconds']:>12,.0f} rows/s  "
        f"cpu {fd['cpu_s']:.1f} s  ({duck.num_rows:,} profile rows)"
    )
    if not args.skip_spark:
        spark, fs = run_spark(lake, spec, args.master)
        figures["spark"] = {**fs, "rows_per_s": args.rows / fs["seconds"], "master": args.master}
        print(f"spark start-up : {fs['startup_s']:7.1f} s  cpu {fs['startup_cpu_s']:.1f} s")
        print(
            f"spark {args.master:<9}: {fs['seconds']:7.1f} s  {args.rows / fs['seconds']:>12,.0f} rows/s  "
            f"cpu {fs['cpu_s']:.1f} s  ({spark.num_rows:,} profile rows)"
        )
        figures["identical"] = same(duck, spark)
        print(f"identical rows : {figures['identical']}")
    figures["load_after"] = os.getloadavg()[0]
    figures["goals"] = {"spark_rows_per_s": 200_000, "duckdb_lake_rows_per_s": 1_000_000}
    print(
        f"load average   : {figures['load_before']:.1f} before, {figures['load_after']:.1f} after"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
