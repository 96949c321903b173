"""Run a delivery worker (with the group planner) on a metadata database until killed.

Used by the crash test: ``python -m tests.alerts.worker_proc URL``.
"""

from __future__ import annotations

import sys
import time

from alerts.delivery import DeliveryWorker, RetryPolicy
from alerts.engine import AlertEngine
from alerts.ssrf import Allowlist
from storage.metadata import MetadataStore
from storage.metadata.alerting import AlertStore


def main(url: str) -> None:
    meta = MetadataStore(url)
    store = AlertStore(meta, "k")
    allow = Allowlist.parse(["127.0.0.1"])
    engine = AlertEngine(store, allowlist=allow)
    policy = RetryPolicy(scale=0.001, jitter=0, timeout=0.5)
    worker = DeliveryWorker(
        store,
        allowlist=allow,
        policy=policy,
        concurrency=2,
        lease_seconds=1.0,
        poll_seconds=0.05,
        before_claim=engine.flush_due,
    )
    worker.start()
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1])
