"""Direct-append CPU by batch size: where a batch's cost goes in DuckDB (issue 17, item 4).

The rows of ``benchmarks/ingest.py``'s direct append (25 features, ``make_batch``) appended
through ``LogStore.append_inferences`` in batches of each size, then one ``CHECKPOINT``: the
CPU seconds (all threads) per 100k rows of the appends, of that deferred checkpoint, and of
both; the WAL left after the appends and the table's row groups before and after the
checkpoint. Sizes and variants are interleaved round by round, so a busy machine weighs on all
of them alike. Variants: ``store`` (the store as ``bench_direct`` opens it), ``duckdb`` (the
same batches by a bare ``INSERT`` into a table of the same columns: the store's own work is the
difference), ``novacuum`` (``store`` with DuckDB's ``max_vacuum_tasks = 0``: shows what the
deferred checkpoint spends on merging row groups).

Usage: ``python benchmarks/append_batches.py [--rows 2000000] [--rounds 2]
[--batches 100000,122880,245760,250000] [--variants store,duckdb,novacuum]``.
The last line is one JSON object of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_figures  # noqa: E402
from benchmarks.ingest import MODEL, make_batch  # noqa: E402
from storage.logstore import LogStore  # noqa: E402


def _row_groups(con: Any, table: str) -> int:
    sql = f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{table}')"
    return int(con.execute(sql).fetchone()[0])


def run_store(path: Path, batches: list[pa.Table], vacuum: bool) -> dict[str, float]:
    with LogStore(path) as store:
        store.ensure_model("bench", MODEL.to_schema())
        if not vacuum:
            with store.writer() as con:
                con.execute("SET max_vacuum_tasks = 0")
        table = store.table("bench")
        c = time.process_time()
        for b in batches:
            store.append_inferences("bench", b)
        appends = time.process_time() - c
        wal = Path(str(path) + ".wal")
        wal_mb = wal.stat().st_size / 2**20 if wal.exists() else 0.0
        with store.reader() as cur:
            before = _row_groups(cur, table)
        c = time.process_time()
        store.checkpoint()
        checkpoint = time.process_time() - c
        with store.reader() as cur:
            after = _row_groups(cur, table)
    return _figures(batches, appends, checkpoint, wal_mb, before, after)


def run_duckdb(path: Path, batches: list[pa.Table]) -> dict[str, float]:
    con = duckdb.connect(str(path))
    con.execute("SET preserve_insertion_order = false")  # as the store sets it
    con.register("b", batches[0])
    con.execute("CREATE TABLE t AS SELECT * FROM b LIMIT 0")
    con.unregister("b")
    c = time.process_time()
    for b in batches:
        con.register("b", b)
        con.execute("INSERT INTO t SELECT * FROM b").fetchall()
        con.unregister("b")
    appends = time.process_time() - c
    wal = Path(str(path) + ".wal")
    wal_mb = wal.stat().st_size / 2**20 if wal.exists() else 0.0
    before = _row_groups(con, "t")
    c = time.process_time()
    con.execute("CHECKPOINT")
    checkpoint = time.process_time() - c
    after = _row_groups(con, "t")
    con.close()
    return _figures(batches, appends, checkpoint, wal_mb, before, after)


def _figures(
    batches: list[pa.Table], appends: float, checkpoint: float, wal_mb: float, rg0: int, rg1: int
) -> dict[str, float]:
    per = 100_000 / sum(b.num_rows for b in batches)
    return {
        "appends_cpu_s_per_100k": appends * per,
        "checkpoint_cpu_s_per_100k": checkpoint * per,
        "total_cpu_s_per_100k": (appends + checkpoint) * per,
        "wal_mb_after_appends": wal_mb,
        "row_groups_before_checkpoint": rg0,
        "row_groups_after_checkpoint": rg1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batches", default="100000,122880,245760,250000")
    ap.add_argument("--variants", default="store,duckdb,novacuum")
    args = ap.parse_args()
    sizes = [int(x) for x in args.batches.split(",")]
    variants = args.variants.split(",")
    rng = np.random.default_rng(1)
    data = {n: [make_batch(n, i, rng) for i in range(0, args.rows, n)] for n in sizes}
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for n in sizes:
                for v in variants:
                    path = Path(tmp) / f"r{r}_{v}_{n}.duckdb"
                    if v == "duckdb":
                        f = run_duckdb(path, data[n])
                    else:
                        f = run_store(path, data[n], vacuum=v != "novacuum")
                    path.unlink()
                    key = f"{v}_{n}"
                    runs.setdefault(key, []).append(f)
                    print(
                        f"round {r + 1} {v:<9} {n:>7,}/batch: cpu s/100k rows "
                        f"appends {f['appends_cpu_s_per_100k']:.3f} + checkpoint "
                        f"{f['checkpoint_cpu_s_per_100k']:.3f} = {f['total_cpu_s_per_100k']:.3f}; "
                        f"WAL {f['wal_mb_after_appends']:.1f} MB; row groups "
                        f"{f['row_groups_before_checkpoint']} -> "
                        f"{f['row_groups_after_checkpoint']}",
                        flush=True,
                    )
    print_figures(
        {
            key: {k: round(statistics.median(f[k] for f in fs), 4) for k in fs[0]}
            for key, fs in runs.items()
        }
        | {"rows": args.rows, "rounds": args.rounds}
    )


if __name__ == "__main__":
    main()
