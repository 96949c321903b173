"""Backfills and KPI computes run as cancellable background jobs with progress, bounded by
``max_backfill_days``; SIGTERM stops ``driftwatch serve`` during a long backfill (the job ends
cancelled or interrupted) and loses nothing committed (issue 12, item 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.service import Services
from monitor.settings import Settings
from storage.metadata.jobs import JobStore
from storage.metadata.monitoring import MonitoringStore
from tests.api.conftest import Keys, client
from tests.monitor.test_monitors_api import _rows, _send, _setup
from tests.support import Live, free_port, server_process, wait_job

SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
START = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOURLY = {
    "name": "hourly",
    "model": "shop",
    "kind": "feature_drift",
    "reference": "base",
    "window": "hour",
}
YEAR = {"start": "2025-03-02T00:00:00Z", "end": "2026-03-02T00:00:00Z"}  # 365 days, 8760 h


def runs_of(c: httpx.Client, monitor: str) -> int:
    return int(c.get("/runs", params={"monitor": monitor, "limit": 1}).json()["total"])


@SQLITE_ONLY
def test_backfill_is_a_job_with_progress(live: Live, keys: Keys) -> None:
    with client(live, keys.engineer) as c:
        _setup(c, 1)
        _send(c, "/models/shop/inferences", _rows(np.random.default_rng(1), START, 3, 100))
        daily = {"name": "daily", "model": "shop", "kind": "feature_drift", "reference": "base"}
        assert c.post("/monitors", json=daily).status_code == 201
        body = {"start": START.isoformat(), "end": (START + 3 * DAY).isoformat()}
        r = c.post("/monitors/daily/backfill", json=body)
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/api/v1/jobs/{job['id']}" == job["link"]
        assert job["kind"] == "backfill" and job["target"] == "daily" and job["total"] == 3
        job = wait_job(c, job)
        assert job["state"] == "done" and job["done"] == 3 and job["progress"] == 1.0
        assert job["result"] == {"windows": 3, "failed": 0}
        assert runs_of(c, "daily") == 3
        listed = c.get("/jobs").json()
        assert [j["id"] for j in listed] == [job["id"]]
        assert c.get("/jobs/999").status_code == 404
        assert c.post("/monitors/nope/backfill", json=body).status_code == 404
        assert c.get("/jobs").json() == listed  # nothing queued for an unknown monitor
    with client(live, keys.viewer) as viewer:
        assert viewer.get(f"/jobs/{job['id']}").status_code == 200
        assert viewer.delete(f"/jobs/{job['id']}").status_code == 403


@SQLITE_ONLY
def test_a_year_of_hourly_windows_is_cancelled_and_stops(live: Live, keys: Keys) -> None:
    with client(live, keys.engineer) as c:
        _setup(c, 2)
        assert c.post("/monitors", json=HOURLY).status_code == 201
        r = c.post("/monitors/hourly/backfill", json=YEAR)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["total"] == 8760
        r = c.delete(f"/jobs/{job['id']}")
        assert r.status_code == 200
        job = wait_job(c, r.json(), timeout=120)
        assert job["state"] == "cancelled" and job["done"] < job["total"]
        assert job["error"] == "cancelled"
        ran = runs_of(c, "hourly")
        time.sleep(1.0)
        assert runs_of(c, "hourly") == ran  # nothing runs after the job says it ended
        # cancelling a finished job changes nothing
        assert c.delete(f"/jobs/{job['id']}").json()["state"] == "cancelled"
    audit = [e.action for e in live.services.metadata.list_audit(limit=100)]
    assert "job.create" in audit and "job.cancel" in audit


@SQLITE_ONLY
def test_kpi_compute_over_a_range_is_a_cancellable_job(live: Live, keys: Keys) -> None:
    kpi = {"name": "hourly_rate", "formula": "rate(conversion, session)", "window": "hour"}
    with client(live, keys.engineer) as c:
        assert c.post("/kpis", json=kpi).status_code == 201
        r = c.post("/kpis/hourly_rate/compute", params=YEAR)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["kind"] == "kpi_compute" and job["total"] == 8760
        job = wait_job(c, c.delete(f"/jobs/{job['id']}").json(), timeout=120)
        assert job["state"] == "cancelled" and job["done"] < job["total"]
        short = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
        done = wait_job(c, c.post("/kpis/hourly_rate/compute", params=short).json())
        assert done["state"] == "done" and done["done"] == done["total"] == 24


@SQLITE_ONLY
def test_kpi_compute_without_a_range_is_bounded_too(live: Live, keys: Keys) -> None:
    """Without start and end, compute catches this KPI up since its last run, now; a
    catch-up longer than max_backfill_days is refused with the range to compute as jobs (the
    former route ran every KPI's whole catch-up in the request, however long)."""
    from monitor.composition import of

    kpi = {"name": "daily_rate", "formula": "rate(conversion, session)"}
    other = {"name": "other_rate", "formula": "rate(conversion, session)"}
    with client(live, keys.engineer) as c:
        assert c.post("/kpis", json=kpi).status_code == 201
        assert c.post("/kpis", json=other).status_code == 201
        svc = of(live.services).kpis
        now = svc.clock()
        # last computed two years ago: ~730 days are due
        long_ago = (now - timedelta(days=730)).replace(hour=0, minute=0, second=0, microsecond=0)
        svc.compute(long_ago, long_ago + DAY, ["daily_rate"])
        r = c.post("/kpis/daily_rate/compute")
        assert r.status_code == 422, r.text
        msg = r.json()["error"]["message"]
        assert "max_backfill_days (366)" in msg and (long_ago + DAY).date().isoformat() in msg
        # a recent last run: the due windows of this KPI only, computed now
        recent = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
        svc.compute(recent, recent + DAY, ["daily_rate"])
        r = c.post("/kpis/daily_rate/compute")
        assert r.status_code == 200, r.text
        assert r.json()["kpi"] == "daily_rate"
        # other_rate was not asked for: still never computed
        assert svc.results.last_window_end("kpi:other_rate") is None


def test_unfinished_jobs_are_interrupted_at_the_next_start(tmp_path: Path) -> None:
    services = Services.open(Settings(data_dir=tmp_path / "data"))
    try:
        store = JobStore(services.metadata)
        running = store.create("backfill", "m", {}, 10, "test")
        store.start(running.id)
        from monitor.composition import of

        runner = of(services).jobs  # a new process's first use
        rec = runner.get(running.id)
        assert rec.state == "interrupted" and "stopped" in (rec.error or "")
    finally:
        of(services).stop()
        services.close()


@SQLITE_ONLY
def test_cli_backfill_through_the_server_follows_the_job(live: Live, keys: Keys) -> None:
    with client(live, keys.engineer) as c:
        _setup(c, 3)
        daily = {"name": "daily", "model": "shop", "kind": "feature_drift", "reference": "base"}
        assert c.post("/monitors", json=daily).status_code == 201
    r = CliRunner().invoke(
        app,
        [
            "backfill",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-04",
            "-m",
            "daily",
            "--url",
            live.url,
            "--api-key",
            keys.engineer,
        ],
    )
    assert r.exit_code == 0, r.output
    with client(live, keys.viewer) as c:
        (job,) = c.get("/jobs").json()
        assert job["state"] == "done" and job["done"] == 3


STOP_WAIT = 90.0


def _after_windows(c: httpx.Client, job: dict[str, Any], done: int) -> dict[str, Any]:
    """The job as it is once it has committed ``done`` windows (or after 120 s)."""
    deadline = time.monotonic() + 120
    while True:
        seen: dict[str, Any] = c.get(f"/jobs/{job['id']}").json()
        if seen["done"] >= done or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait for the server to exit. The wait is generous (``STOP_WAIT``: a
    loaded machine slows a prompt shutdown too, so no wall-time bound on it); a server that
    hangs or ignores SIGTERM fails here, and the job's end state (cancelled or interrupted,
    not done) shows it stopped mid-job rather than finishing it."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        raise AssertionError(
            f"the server did not exit within {STOP_WAIT:.0f} s of SIGTERM"
        ) from None


@pytest.mark.slow
def test_sigterm_stops_the_server_during_a_long_backfill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    services = Services.open(settings)
    try:
        key = services.metadata.create_api_key("t", "engineer")[1]
    finally:
        services.close()
    port = free_port()
    env = {"DRIFTWATCH_DATA_DIR": str(data), "DRIFTWATCH_ALERT_WORKER": "false"}
    with server_process(env, port) as proc:
        base = f"http://127.0.0.1:{port}/api/v1"
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            _setup(c, 4)
            _send(c, "/models/shop/inferences", _rows(np.random.default_rng(4), START, 2, 50))
            assert c.post("/monitors", json=HOURLY).status_code == 201
            job = c.post("/monitors/hourly/backfill", json=YEAR).json()
            seen = _after_windows(c, job, 3)
            assert seen["state"] == "running" and seen["done"] >= 3, seen
        _stop(proc)
    services = Services.open(settings)
    try:
        final = JobStore(services.metadata).get(job["id"])
        assert final is not None and final.state in ("cancelled", "interrupted"), final
        runs, _ = MonitoringStore(services.metadata).list_runs(monitor="hourly", limit=10_000)
        ok = [r for r in runs if r.status == "ok"]
        assert len(ok) >= final.done >= seen["done"]  # every window reported done is stored
        rows = services.logstore.count_inferences("shop", None)
        assert rows == 2 * 3 * 50  # and the acknowledged rows are all there
    finally:
        services.close()


@pytest.mark.slow
def test_sigterm_stops_the_server_during_a_long_kpi_compute(tmp_path: Path) -> None:
    """The same for a KPI compute job over a year of hourly windows: the server stops, the job is cancelled or interrupted, and the windows it reported done are stored."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    services = Services.open(settings)
    try:
        key = services.metadata.create_api_key("t", "engineer")[1]
    finally:
        services.close()
    port = free_port()
    env = {"DRIFTWATCH_DATA_DIR": str(data), "DRIFTWATCH_ALERT_WORKER": "false"}
    kpi = {"name": "hourly_rate", "formula": "rate(conversion, session)", "window": "hour"}
    with server_process(env, port) as proc:
        base = f"http://127.0.0.1:{port}/api/v1"
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            assert c.post("/kpis", json=kpi).status_code == 201
            job = c.post("/kpis/hourly_rate/compute", params=YEAR).json()
            seen = _after_windows(c, job, 48)
            assert seen["state"] == "running" and seen["done"] >= 48, seen
        _stop(proc)
    services = Services.open(settings)
    try:
        final = JobStore(services.metadata).get(job["id"])
        assert final is not None and final.state in ("cancelled", "interrupted"), final
        assert final.done >= seen["done"]
        last = MonitoringStore(services.metadata).last_window_end("kpi:hourly_rate")
        first = datetime.fromisoformat(YEAR["start"])
        assert last is not None and last >= first + timedelta(hours=final.done)
    finally:
        services.close()
