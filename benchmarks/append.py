"""Direct-append rate of the log store: Arrow batches into a file-backed DuckDB store.

25-feature rows (20 numeric, 5 categorical), random 32-hex-digit request ids (like UUIDs, so
nothing about the keys' order helps), 3 tenants, binary prediction and one score.

Prints rows/s into an empty table, the time to reopen the store and build its idempotency
index, rows/s with millions of rows already stored, the cost of a fully duplicate retry, and
peak RSS (DuckDB caches table blocks up to its ``memory_limit``, 80 % of RAM by default, and
the pre-generated batches take about 25 MB per 100k rows). Run: ``.venv/bin/python benchmarks/append.py [--prefill 3000000] [--batch 100000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_figures, repeated
from storage.logstore import LogStore
from storage.types import FeatureSpec, ModelSchema

SCHEMA = ModelSchema(
    task="binary",
    features=tuple(FeatureSpec(f"num_{i}", "numeric") for i in range(20))
    + tuple(FeatureSpec(f"cat_{i}", "categorical") for i in range(5)),
    scores=("score",),
)
CATS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
TENANTS = np.array(["acme", "globex", "initech"])


def make_batch(rng: np.random.Generator, n: int, t0_us: int) -> pa.Table:
    """One validated batch, shaped as ``LogStore.arrow_schema`` says."""
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).tobytes().hex().encode()
    ids = np.frombuffer(raw, dtype="S32").astype(str)
    cols: dict[str, pa.Array] = {
        "request_id": pa.array(ids, pa.string()),
        "ts": pa.array(
            t0_us + np.sort(rng.integers(0, 3_600_000_000, n)), pa.timestamp("us", tz="UTC")
        ),
        "tenant_id": pa.array(TENANTS[rng.integers(0, 3, n)]),
        "model_version": pa.array(np.full(n, "v1")),
    }
    for i in range(20):
        cols[f"num_{i}"] = pa.array(rng.normal(size=n))
    for i in range(5):
        cols[f"cat_{i}"] = pa.array(CATS[rng.integers(0, len(CATS), n)])
    cols["prediction"] = pa.array(rng.integers(0, 2, n).astype(np.int32))
    cols["score"] = pa.array(rng.random(n))
    return pa.table(cols)


def timed_appends(store: LogStore, batches: list[pa.Table]) -> float:
    t = time.perf_counter()
    for b in batches:
        res = store.append_inferences("bench", b)
        assert res.accepted == b.num_rows, res
    return sum(b.num_rows for b in batches) / (time.perf_counter() - t)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefill", type=int, default=3_000_000, help="rows stored before timing")
    ap.add_argument("--batch", type=int, default=100_000, help="rows per append")
    ap.add_argument("--batches", type=int, default=10, help="timed appends per phase")
    ap.add_argument("--checkpoint-threshold", default=None, help="DuckDB WAL size (default 16MB)")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 1GB")
    ap.add_argument("--dir", default=None, help="where to put the file (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=1, help="run N times, print the medians")
    args = ap.parse_args()
    print_figures(repeated(lambda: _run(args), args.repeat), args.repeat)


def _run(args: argparse.Namespace) -> dict[str, float]:
    """One run on a fresh file; prints as it goes, returns the figures."""
    figures: dict[str, float] = {}

    rng = np.random.default_rng(7)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="dw-bench-"))
    path = workdir / "bench.duckdb"
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    hour = 3_600_000_000
    clock = [1_767_225_600_000_000]  # 2026-01-01 UTC in microseconds

    def batches(k: int, n: int) -> list[pa.Table]:
        out = []
        for _ in range(k):
            out.append(make_batch(rng, n, clock[0]))
            clock[0] += hour
        return out

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"file {path}; batch {args.batch:,} rows; 25 features (20 numeric, 5 categorical)")
    store = LogStore(
        path, checkpoint_threshold=args.checkpoint_threshold, memory_limit=args.memory_limit
    )
    store.ensure_model("bench", SCHEMA)
    rate = timed_appends(store, batches(args.batches, args.batch))
    print(f"empty table:          {rate:>12,.0f} rows/s")
    figures["empty_table_rows_per_s"] = round(rate)

    fill = max(0, args.prefill - store.count_inferences("bench"))
    t = time.perf_counter()
    while fill > 0:
        n = min(500_000, fill)
        timed_appends(store, batches(1, n))
        fill -= n
    print(f"prefill to {store.count_inferences('bench'):,} rows: {time.perf_counter() - t:.1f} s")
    store.close()

    first = batches(max(args.batches, 5), args.batch)
    t = time.perf_counter()
    store = LogStore(
        path, checkpoint_threshold=args.checkpoint_threshold, memory_limit=args.memory_limit
    )
    store.append_inferences("bench", first[0])  # builds the key index by one scan
    build = time.perf_counter() - t
    figures["reopen_index_first_append_s"] = round(build, 3)
    print(
        f"reopen + key index build + first append: {build:.2f} s "
        f"(index {store.key_index_bytes() / 2**20:.0f} MiB for "
        f"{store.count_inferences('bench'):,} keys)"
    )
    rate = timed_appends(store, first[1:] + batches(1, args.batch))  # ~batches appends
    print(f"with {store.count_inferences('bench'):,} rows stored: {rate:>12,.0f} rows/s")
    figures["prefilled_rows_per_s"] = round(rate)

    t = time.perf_counter()
    res = store.append_inferences("bench", first[3])
    assert res.accepted == 0 and res.duplicates == args.batch, res
    figures["retry_all_duplicates_s"] = round(time.perf_counter() - t, 3)
    print(f"retry of a stored batch (all duplicates): {figures['retry_all_duplicates_s']:.2f} s")
    shifted = first[4].set_column(1, "ts", pa.array(np.full(args.batch, 0), first[4]["ts"].type))
    t = time.perf_counter()
    res = store.append_inferences("bench", shifted)
    assert res.accepted == 0, res
    figures["retry_changed_ts_s"] = round(time.perf_counter() - t, 3)
    print(f"retry with changed ts (full key scan):   {figures['retry_changed_ts_s']:.2f} s")
    t = time.perf_counter()
    store.close()
    figures["close_checkpoint_s"] = round(time.perf_counter() - t, 3)
    print(f"close (final checkpoint): {figures['close_checkpoint_s']:.2f} s")
    print(f"peak RSS: {peak_rss_mb():,.0f} MiB; file {path.stat().st_size / 2**20:,.0f} MiB")
    figures["peak_rss_mib"] = round(peak_rss_mb())
    if args.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


if __name__ == "__main__":
    main()
