"""Log store under stress: SIGKILL right after acknowledgements, and concurrent writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from storage.logstore import LogStore
from storage.types import FeatureSpec, ModelSchema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ModelSchema(
    task="regression",
    features=(FeatureSpec("x", "numeric"), FeatureSpec("c", "categorical")),
)
T0 = datetime(2026, 3, 1, tzinfo=UTC)

# The child appends batch after batch and prints "ACK <i>" once append_inferences returned;
# the parent SIGKILLs it a few acknowledgements in, most likely mid-append.
CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    import pyarrow as pa
    from storage.logstore import LogStore
    from storage.types import FeatureSpec, ModelSchema

    path, threshold, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    schema = ModelSchema("regression", (FeatureSpec("x", "numeric"), FeatureSpec("c", "categorical")))
    if threshold.startswith("bg:"):  # the server's setting: checkpoints on a background thread
        store = LogStore(path, background_checkpoint=threshold[3:])
    else:
        store = LogStore(path, checkpoint_threshold=None if threshold == "default" else threshold)
    store.ensure_model("m", schema)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    i = 0
    while True:
        batch = pa.table({
            "request_id": [f"b{i}-{j}" for j in range(n)],
            "ts": pa.array([t0 + timedelta(seconds=i)] * n, pa.timestamp("us", "UTC")),
            "tenant_id": ["acme"] * n,
            "x": [float(j) for j in range(n)],
            "c": ["k"] * n,
            "prediction": [1.0] * n,
        })
        res = store.append_inferences("m", batch)
        assert res.accepted == n
        print(f"ACK {i}", flush=True)
        i += 1
    """
)


# threshold: inline checkpoints / WAL-only commits / background checkpoints (the server's);
# delay: kill right after the ACK / likely inside an append
@pytest.mark.parametrize(
    ("threshold", "delay"),
    [("default", 0.0), ("default", 0.04), ("1GB", 0.0), ("1GB", 0.04), ("bg:1MB", 0.0)],
)
def test_sigkill_loses_no_acknowledged_row_and_leaves_no_half_batch(
    tmp_path: Path, threshold: str, delay: float
) -> None:
    path = tmp_path / "crash.duckdb"
    n = 20_000
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), threshold, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(int(line.split()[1]))
            if len(acked) == 6:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert len(acked) == 6, err
    assert proc.returncode == -signal.SIGKILL

    with LogStore(path) as store:  # replays the WAL
        ids = store.read_inferences("m", columns=["request_id"])["request_id"].to_pylist()
    per_batch = Counter(rid.split("-")[0] for rid in ids)
    assert len(ids) == len(set(ids))
    for i in acked:
        assert per_batch[f"b{i}"] == n, f"acknowledged batch {i} lost rows"
    assert all(count == n for count in per_batch.values()), "a half batch was stored"


def test_concurrent_overlapping_appends_store_each_row_once(tmp_path: Path) -> None:
    """8 threads append overlapping batches (and 2 read) at once; every id is stored once."""
    pool = [f"req-{i:06d}" for i in range(6_000)]
    store = LogStore(tmp_path / "concurrent.duckdb")
    store.ensure_model("m", SCHEMA)
    accepted = [0] * 8
    sent: set[str] = set()
    sent_lock = threading.Lock()
    errors: list[BaseException] = []
    stop = threading.Event()
    barrier = threading.Barrier(10)

    def writer(k: int) -> None:
        rng = np.random.default_rng(k)
        try:
            barrier.wait()
            for _ in range(12):
                pick = rng.choice(len(pool), size=800, replace=True)  # in-batch repeats too
                ids = [pool[i] for i in pick]
                batch = pa.table(
                    {
                        "request_id": ids,
                        # The same id always carries the same row, whichever thread sends it.
                        "ts": pa.array(
                            [T0 + timedelta(seconds=int(i)) for i in pick],
                            pa.timestamp("us", "UTC"),
                        ),
                        "tenant_id": ["acme"] * len(ids),
                        "x": [float(i) for i in pick],
                        "prediction": [0.5] * len(ids),
                    }
                )
                res = store.append_inferences("m", batch)
                assert res.accepted + res.duplicates == len(ids)
                accepted[k] += res.accepted
                with sent_lock:
                    sent.update(ids)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            barrier.wait()
            last = 0
            while not stop.is_set():
                now = store.count_inferences("m")
                assert now >= last  # committed rows never disappear
                last = now
                store.read_inferences("m", limit=50)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads + readers:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not errors, errors

    ids = store.read_inferences("m", columns=["request_id", "x"]).to_pylist()
    assert len(ids) == len({r["request_id"] for r in ids}), "a row was stored twice"
    assert {r["request_id"] for r in ids} == sent
    assert sum(accepted) == len(ids) == store.count_inferences("m")
    assert all(r["x"] == float(r["request_id"].split("-")[1]) for r in ids)
    store.close()
    with LogStore(tmp_path / "concurrent.duckdb") as again:  # and the file reopens intact
        assert again.count_inferences("m") == len(ids)
