"""SIGKILL a worker process while deliveries are pending; a restarted one delivers them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from alerts.engine import AlertEngine
from alerts.ssrf import Allowlist
from storage.metadata import MetadataStore
from storage.metadata.alerting import AlertStore
from tests.alerts.helpers import result
from tests.alerts.receiver import receiver
from tests.support import PATIENCE_S

ROOT = Path(__file__).resolve().parents[2]
N = 12


def start_worker(url: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.alerts.worker_proc", url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_sigkill_with_pending_deliveries_then_restart_delivers_all(metadata_url: str) -> None:
    meta = MetadataStore(metadata_url)
    meta.upgrade()
    store = AlertStore(meta, "k")
    engine = AlertEngine(store, allowlist=Allowlist.parse(["127.0.0.1"]))

    def slow(n: int, wid: str) -> tuple[int, dict[str, str]]:
        time.sleep(0.15)  # keep deliveries in flight when the kill comes
        return 200, {}

    with receiver(slow) as rx:
        _, secret = engine.create_channel("hook", "webhook", rx.url)
        rx.secrets.append(secret)
        engine.put_rule(
            {
                "name": "drift",
                "match": {"kind": "feature_drift"},
                "channels": ["hook"],
                "group_wait": "0s",
            }
        )
        engine.process([result(0, tenant=f"t{i}") for i in range(N)])
        expected = {d.webhook_id for d in store.list_deliveries()}
        assert len(expected) == N
        proc = start_worker(metadata_url)
        try:
            deadline = time.monotonic() + PATIENCE_S
            while len(rx.hits) < 2:
                assert time.monotonic() < deadline, "the worker delivered nothing"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        before = {h.webhook_id for h in rx.delivered()}
        assert 0 < len(before) < N, "the kill must leave deliveries pending"
        proc = start_worker(metadata_url)
        try:
            deadline = time.monotonic() + PATIENCE_S
            while {h.webhook_id for h in rx.delivered()} != expected:
                assert time.monotonic() < deadline, "pending deliveries were lost"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
    # every request that arrived whole is signed right (one cut short by the kill cannot be)
    assert all(h.verified for h in rx.hits if h.whole)
    # at least once: a request in flight at the kill may arrive twice, with the same id
    assert {h.webhook_id for h in rx.hits} == expected
    meta.dispose()
