"""The ``lake_dir`` setting through a real server: ``driftwatch serve`` SIGKILLed while writers
stream inferences, labels and events, then started again, leaves a lake whose rows equal the
DuckDB tables (nothing lost, nothing twice), and profiles computed from the lake equal the
embedded ones."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from storage.lake import pending_batches
from storage.lake_profiles import duckdb_profile_dates, list_partitions
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.profile_kernel import ProfileSpec
from storage.profiles import ProfileStore
from tests.api.conftest import CHURN
from tests.storage.test_lake_mirror import assert_lake_equals_store
from tests.storage.test_profile_engines import assert_same_profiles
from tests.support import free_port, server_process

T0 = datetime(2026, 5, 1, 22, tzinfo=UTC)


def inferences(tag: str, n: int) -> list[dict]:
    return [
        {
            "request_id": f"{tag}-{i}",
            "ts": (T0 + timedelta(minutes=7 * i)).isoformat(),
            "tenant_id": ("acme", "globex")[i % 2],
            "age": float(i % 90),
            "plan": ("free", "pro", "team")[i % 3],
            "mobile": i % 4 == 0,
            "prediction": i % 2,
            "score": (i % 10) / 10,
        }
        for i in range(n)
    ]


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_leaves_the_lake_equal_to_the_store(
    tmp_path: Path,
) -> None:
    data, lake = tmp_path / "data", tmp_path / "lake"
    data.mkdir()
    meta = MetadataStore(f"sqlite:///{data / 'metadata.sqlite'}")
    meta.upgrade()
    _, key = meta.create_api_key("crash", "admin")
    meta.dispose()
    port = free_port()
    env = {
        "DRIFTWATCH_DATA_DIR": str(data),
        "DRIFTWATCH_LAKE_DIR": str(lake),
        "DRIFTWATCH_RATE_LIMIT_BURST": "100000",
        "DRIFTWATCH_SCHEDULER_ENABLED": "false",
    }
    headers = {"Authorization": f"Bearer {key}"}
    url = f"http://127.0.0.1:{port}/api/v1"
    acked = [0]
    stop = threading.Event()

    with server_process(env, port) as proc:
        assert httpx.post(f"{url}/models", json=CHURN, headers=headers).status_code == 201

        def worker(w: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=10) as c:
                b = 0
                while not stop.is_set():
                    tag = f"w{w}b{b}"
                    b += 1
                    try:
                        body = inferences(tag, 40)
                        r = c.post("/models/churn/inferences", json=body)
                        if r.status_code == 200:
                            acked[0] += 1
                        c.post("/models/churn/inferences", json=body[:10])  # a retry
                        labels = [{"request_id": x["request_id"], "label": 1} for x in body[:5]]
                        c.post("/models/churn/labels", json=labels)
                        c.post(
                            "/events",
                            json=[
                                {
                                    "event_id": tag,
                                    "tenant_id": "acme",
                                    "ts": T0.isoformat(),
                                    "name": "conversion",
                                    "value": 1.0,
                                }
                            ],
                        )
                    except httpx.TransportError:
                        return  # the server died mid-request

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while acked[0] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # in the middle of in-flight requests
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert acked[0] >= 40

    with server_process(env, port):  # the start copies what the kill left in the outbox
        r = httpx.get(f"{url}/models/churn", headers=headers)
        assert r.status_code == 200
    with LogStore(data / "driftwatch.duckdb") as store:
        assert pending_batches(store) == 0  # the restarted server did the repair
        assert store.count_inferences("churn") >= 40 * 40
        assert assert_lake_equals_store(store, lake) > 1600
        spec = ProfileSpec({"age": ((10.0, 30.0, 60.0),), "score": ((0.25, 0.5),)}, ("plan",))
        ps = ProfileStore(store)
        ps.register("churn", spec)
        start, end = T0 - timedelta(hours=22), T0 + timedelta(days=3)
        ps.ensure("churn", start, end)
        want = ps.profile_rows("churn", start, end)
    parts = list_partitions(str(lake), "churn")
    got = [r for _, r in duckdb_profile_dates(parts, spec)]
    assert want.num_rows >= 40  # 5 hours x 2 tenants x (age, score, plan, the hour's count)
    assert_same_profiles(pa.concat_tables(got), want)
