"""Crash and concurrency: acknowledged rows are never lost, never stored twice, never halved."""

from __future__ import annotations

import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from storage.logstore import LogStore
from storage.metadata import MetadataStore
from tests.api.conftest import CHURN, client, make_keys, make_settings
from tests.support import (
    PATIENCE_S,
    accepts,
    free_port,
    live_server,
    server_process,
    shared_tls,
)

T0 = datetime(2026, 5, 1, tzinfo=UTC)
BATCH = 200


def batch_rows(tag: str, n: int = BATCH) -> list[dict]:
    return [
        {
            "request_id": f"{tag}-{i}",
            "ts": (T0 + timedelta(seconds=i)).isoformat(),
            "tenant_id": "acme",
            "age": float(i),
            "plan": "pro",
            "prediction": i % 2,
            "score": 0.5,
        }
        for i in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("writers", "rows", "front"),
    [
        pytest.param(8, BATCH, False, id="8x200"),
        # many small writers: their requests share group commits (the server's default)
        pytest.param(48, 5, False, id="48x5-group-commit"),
        # the same through the ingest front's port (validated in the front's process)
        pytest.param(48, 5, True, id="48x5-ingest-front"),
    ],
)
def test_sigkill_during_concurrent_ingest_loses_no_acknowledged_row(
    tmp_path: Path, writers: int, rows: int, front: bool
) -> None:
    """SIGKILL while concurrent writers are being acknowledged: after the WAL replays, every
    acknowledged batch is stored whole, no batch is stored in part and no row twice. With
    the ingest front, its requests in flight are never acknowledged and it stops."""
    data = tmp_path / "data"
    data.mkdir()
    meta = MetadataStore(f"sqlite:///{data / 'metadata.sqlite'}")
    meta.upgrade()
    _, key = meta.create_api_key("crash", "admin")
    meta.dispose()
    port = free_port()
    env = {"DRIFTWATCH_DATA_DIR": str(data), "DRIFTWATCH_RATE_LIMIT_BURST": "100000"}
    ingest_port = free_port() if front else port
    if front:
        env["DRIFTWATCH_INGEST_PORT"] = str(ingest_port)
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {key}"}

    with server_process(env, port) as proc:
        url = f"http://127.0.0.1:{port}/api/v1"
        assert httpx.post(f"{url}/models", json=CHURN, headers=headers).status_code == 201

        def worker(w: int) -> None:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{ingest_port}/api/v1",
                headers=headers,
                timeout=PATIENCE_S,
                verify=shared_tls(),
            ) as c:
                b = 0
                while not stop.is_set():
                    tag = f"w{w}b{b}"
                    b += 1
                    try:
                        r = c.post("/models/churn/inferences", json=batch_rows(tag, rows))
                    except httpx.TransportError:
                        return  # the server died mid-request: not acknowledged
                    if r.status_code == 200 and r.json()["accepted"] == rows:
                        with lock:
                            acked.add(tag)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + PATIENCE_S
        while len(acked) < 60:  # then kill: how fast they come depends on the machine
            assert time.monotonic() < deadline, f"only {len(acked)} batches acknowledged"
            time.sleep(0.05)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        proc.send_signal(signal.SIGKILL)  # in the middle of in-flight requests
        proc.wait(timeout=PATIENCE_S)
        if front:  # the front's link reads end-of-file: it answers 503 and stops
            deadline = time.monotonic() + PATIENCE_S
            while accepts(ingest_port):
                assert time.monotonic() < deadline, "the ingest front outlived the server"
                time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(timeout=PATIENCE_S)

    counted = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("driftwatch_ingest_")
    }
    if writers > 8:  # many small writers shared commits
        assert (
            counted["driftwatch_ingest_appends_total"] > counted["driftwatch_ingest_commits_total"]
        )
    # the acknowledgements under test came through the lean path's writer thread (JSON
    # bodies of a cached key: every request after the key's first)
    assert counted["driftwatch_ingest_lean_requests_total"] >= 60 - writers
    if front:  # validated in the front's process
        assert counted["driftwatch_ingest_front_requests_total"] >= 60 - writers
    with LogStore(data / "driftwatch.duckdb") as store:  # replays the WAL
        ids = (
            store.read_inferences("churn", columns=["request_id"]).column("request_id").to_pylist()
        )
    assert len(ids) == len(set(ids)), "a row was stored twice"
    per_batch: dict[str, int] = {}
    for rid in ids:
        tag = rid.rsplit("-", 1)[0]
        per_batch[tag] = per_batch.get(tag, 0) + 1
    assert all(n == rows for n in per_batch.values()), "a half batch was stored"
    assert acked <= set(per_batch), (
        f"lost acknowledged batches: {sorted(acked - set(per_batch))[:5]}"
    )
    # and the server starts again on the same files
    with server_process(env, port):
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/models/churn", headers=headers)
        assert r.json()["rows"] == len(ids)


REQUESTS = 12  # per client: 8 x 12 overlapping posts of 50-300 rows


def test_eight_concurrent_clients_store_each_row_exactly_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_burst=100_000)
    universe = 6_000  # clients draw overlapping ids, so many rows are sent several times
    accepted = [0] * 8
    acked: list[set[str]] = [set() for _ in range(8)]
    with live_server(settings) as live:
        keys = make_keys(live)
        with client(live, keys.engineer) as eng:
            assert eng.post("/models", json=CHURN).status_code == 201
        all_rows = batch_rows("u", universe)

        def worker(w: int) -> None:
            rng = random.Random(w)
            with client(live, keys.engineer) as c:
                for _ in range(REQUESTS):  # a count, not a time: as many rows on any machine
                    start = rng.randrange(0, universe - 300)
                    part = all_rows[start : start + rng.randrange(50, 300)]
                    r = c.post("/models/churn/inferences", json=part)
                    assert r.status_code == 200, r.text
                    accepted[w] += r.json()["accepted"]
                    acked[w].update(x["request_id"] for x in part)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = live.services.logstore.read_inferences("churn", columns=["request_id"])
        stored = ids.column("request_id").to_pylist()
    assert len(stored) == len(set(stored))
    assert set().union(*acked) == set(stored)
    assert sum(accepted) == len(stored)
    assert sum(accepted) > 1000
