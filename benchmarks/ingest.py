"""Ingest throughput: 25-feature rows into the file-backed log store.

Measures, in one run:

* direct append of Arrow batches into ``LogStore`` (validated batches, the store's own path);
* Parquet bodies over HTTP to a ``driftwatch serve`` subprocess;
* JSON bodies over HTTP, from one client and from four at once;
* ``driftwatch ingest --url`` on a large CSV (default 1 GB), with the CLI's peak RSS for two
  file sizes (the memory must not grow with the file);
* the naive peer: DuckDB row-by-row inserts (``executemany``), which this design avoids.

Usage: ``python benchmarks/ingest.py [--rows 2000000] [--csv-gb 1.0] [--skip-csv]``.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import numpy as np
import orjson
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.schemas import FeatureIn, ModelIn  # noqa: E402
from storage.logstore import LogStore  # noqa: E402
from storage.metadata import MetadataStore  # noqa: E402
from tests.support import free_port, wait_ready  # noqa: E402

TARGETS = {"direct": 500_000, "parquet_http": 250_000, "json_http": 50_000}
MODEL = ModelIn(
    name="bench",
    task="binary",
    features=[FeatureIn(name=f"f{i}", kind="numeric") for i in range(20)]
    + [FeatureIn(name=f"c{i}", kind="categorical") for i in range(5)],
    scores=["score"],
)


def make_batch(n: int, offset: int, rng: np.random.Generator) -> pa.Table:
    cols: dict[str, object] = {
        "request_id": pa.array([f"r{offset + i}" for i in range(n)]),
        "ts": pa.array(
            np.datetime64("2026-01-01T00:00:00", "us") + np.arange(offset, offset + n) * 100_000,
            pa.timestamp("us", tz="UTC"),
        ),
        "tenant_id": pa.array(rng.choice(["acme", "globex", "initech"], n)),
        "model_version": pa.array(np.full(n, "v1")),
    }
    for i in range(20):
        cols[f"f{i}"] = rng.normal(size=n)
    for i, card in enumerate([3, 10, 50, 200, 1000]):
        cols[f"c{i}"] = pa.array(np.char.add("v", rng.integers(0, card, n).astype(str)))
    score = rng.random(n)
    cols["score"] = score
    cols["prediction"] = pa.array((score > 0.5).astype(np.int32))
    return pa.table(cols)


def rss_peak_of(proc: subprocess.Popen[bytes], stop: threading.Event, out: list[int]) -> None:
    peak = 0
    try:
        p = psutil.Process(proc.pid)
        while not stop.is_set() and proc.poll() is None:
            peak = max(peak, p.memory_info().rss)
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        pass
    out.append(peak)


def bench_direct(tmp: Path, rows: int, batch: int, name: str) -> tuple[float, float, int]:
    """Rows/s of the appends, and including the checkpoint DuckDB defers (large appends are
    written to the file uncompressed and compressed at the next checkpoint)."""
    rng = np.random.default_rng(1)
    batches = [make_batch(batch, i, rng) for i in range(0, rows, batch)]
    with LogStore(tmp / f"{name}.duckdb") as store:
        store.ensure_model("bench", MODEL.to_schema())
        t = time.perf_counter()
        for b in batches:
            store.append_inferences("bench", b)
        elapsed = time.perf_counter() - t
        store.checkpoint()
        with_checkpoint = time.perf_counter() - t
    return rows / elapsed, rows / with_checkpoint, psutil.Process().memory_info().rss


def bench_naive(tmp: Path, rows: int = 2000) -> float:
    rng = np.random.default_rng(2)
    data = make_batch(rows, 0, rng).to_pylist()
    con = duckdb.connect(str(tmp / "naive.duckdb"))
    cols = list(data[0])
    con.execute(
        "CREATE TABLE t ("
        + ", ".join(
            f'"{c}" VARCHAR'
            if c in ("request_id", "tenant_id", "model_version") or c.startswith("c")
            else f'"{c}" DOUBLE'
            if c != "ts"
            else '"ts" TIMESTAMPTZ'
            for c in cols
        )
        + ")"
    )
    placeholders = ", ".join("?" for _ in cols)
    t = time.perf_counter()
    for r in data:  # one INSERT per row, as an ORM-style loop would do
        con.execute(f"INSERT INTO t VALUES ({placeholders})", [r[c] for c in cols])
    elapsed = time.perf_counter() - t
    con.close()
    return rows / elapsed


class Server:
    def __init__(self, data: Path) -> None:
        meta = MetadataStore(f"sqlite:///{data / 'metadata.sqlite'}")
        data.mkdir(parents=True, exist_ok=True)
        meta.upgrade()
        _, self.key = meta.create_api_key("bench", "admin")
        meta.dispose()
        self.port = free_port()
        env = {
            **os.environ,
            "DRIFTWATCH_DATA_DIR": str(data),
            "DRIFTWATCH_PORT": str(self.port),
            "DRIFTWATCH_RATE_LIMIT_BURST": "1000000",
            "DRIFTWATCH_MAX_BODY_BYTES": str(512 << 20),
            "DRIFTWATCH_LOG_LEVEL": "warning",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "serve"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_ready(self.url, self.proc)
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=300,
        )
        assert self.http.post("/models", json=MODEL.model_dump()).status_code == 201

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_http(
    server: Server, rows: int, batch: int, fmt: str, offset: int, clients: int = 1
) -> float:
    rng = np.random.default_rng(3)
    bodies = []
    for i in range(offset, offset + rows, batch):
        table = make_batch(batch, i, rng)
        if fmt == "parquet":
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            bodies.append((buf.getvalue(), "application/vnd.apache.parquet"))
        else:
            data = table.to_pylist()
            for r in data:
                r["ts"] = r["ts"].isoformat()
            bodies.append((orjson.dumps(data), "application/json"))

    def send(part: list[tuple[bytes, str]]) -> None:
        with httpx.Client(base_url=server.http.base_url, headers=server.http.headers) as http:
            for body, ctype in part:
                r = http.post(
                    "/models/bench/inferences",
                    content=body,
                    headers={"Content-Type": ctype},
                    timeout=300,
                )
                assert r.status_code == 200 and r.json()["accepted"] == batch, r.text

    t = time.perf_counter()
    # each client sends its share one body after another (waits for each acknowledgement)
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [bodies[i::clients] for i in range(clients)]))
    return rows / (time.perf_counter() - t)


def write_csv(path: Path, target_bytes: int) -> int:
    rng = np.random.default_rng(4)
    rows = 0
    with path.open("wb") as fh:
        header = True
        while fh.tell() < target_bytes:
            table = make_batch(200_000, rows, rng)
            buf = io.BytesIO()
            pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=header))
            fh.write(buf.getvalue())
            header = False
            rows += table.num_rows
    return rows


def bench_cli(server: Server, csv: Path, rows: int) -> tuple[float, int]:
    env = {**os.environ, "DRIFTWATCH_URL": server.url, "DRIFTWATCH_API_KEY": server.key}
    t = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "ingest",
            "bench",
            str(csv),
            "-q",
            "--batch-rows",
            "100000",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=rss_peak_of, args=(proc, stop, peak))
    watcher.start()
    out, _ = proc.communicate()
    stop.set()
    watcher.join()
    elapsed = time.perf_counter() - t
    assert proc.returncode == 0, out
    return rows / elapsed, peak[0]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows for the direct append")
    ap.add_argument("--http-rows", type=int, default=1_000_000, help="rows for Parquet over HTTP")
    ap.add_argument("--json-rows", type=int, default=400_000, help="rows for JSON over HTTP")
    ap.add_argument("--csv-gb", type=float, default=1.0, help="size of the big CSV for the CLI")
    ap.add_argument("--skip-csv", action="store_true")
    args = ap.parse_args()

    results: list[tuple[str, float, str, int]] = []
    with tempfile.TemporaryDirectory(prefix="dw-bench-") as d:
        tmp = Path(d)
        naive = bench_naive(tmp)
        for batch in (100_000, 250_000):
            direct, with_checkpoint, rss = bench_direct(tmp, args.rows, batch, f"direct{batch}")
            results.append(
                (
                    f"direct append from Arrow, {batch // 1000}k/batch",
                    direct,
                    f"{with_checkpoint:,.0f} rows/s with the deferred checkpoint; "
                    f"process RSS {rss / 2**20:.0f} MiB",
                    TARGETS["direct"],
                )
            )
        server = Server(tmp / "server")
        try:
            pq_rate = bench_http(server, args.http_rows, 250_000, "parquet", 0)
            results.append(
                ("Parquet over HTTP", pq_rate, "250k-row bodies", TARGETS["parquet_http"])
            )
            js_rate = bench_http(server, args.json_rows, 20_000, "json", 10**8)
            results.append(
                ("JSON over HTTP, 1 client", js_rate, "20k-row bodies", TARGETS["json_http"])
            )
            js_rate = bench_http(server, args.json_rows, 20_000, "json", 2 * 10**8, clients=4)
            results.append(
                ("JSON over HTTP, 4 clients", js_rate, "20k-row bodies", TARGETS["json_http"])
            )
            if not args.skip_csv:
                small = tmp / "small.csv"
                n_small = write_csv(small, int(args.csv_gb * 2**30 / 4))
                _, peak_small = bench_cli(server, small, n_small)
                big = tmp / "big.csv"
                n_big = write_csv(big, int(args.csv_gb * 2**30))
                small.unlink()
                cli_rate, peak_big = bench_cli(server, big, n_big)
                results.append(
                    (
                        f"CLI --url on {big.stat().st_size / 2**30:.2f} GB CSV",
                        cli_rate,
                        f"peak RSS {peak_big / 2**20:.0f} MiB (vs {peak_small / 2**20:.0f} MiB on a 4x smaller file)",
                        0,
                    )
                )
        finally:
            server.close()
    results.append(("peer: DuckDB row-by-row INSERT", naive, "what an ORM loop does", 0))

    print(f"\n{'path':<40} {'rows/s':>12} {'target':>10} {'x target':>9} {'x naive':>9}  note")
    for name, rate, note, target in results:
        print(
            f"{name:<40} {rate:>12,.0f} {target or '-':>10} "
            f"{(rate / target if target else float('nan')):>9.2f} {rate / naive:>9.0f}  {note}"
        )


if __name__ == "__main__":
    main()
