"""``driftwatch serve`` says "serving on ..." only once its port answers (issue 17): the line
used to come before the stores were opened, and a browser opened on it got a refused
connection for seconds. And it gets there without the work that is not needed to answer:
on a data dir at head no Alembic, and no Dash app until the port is open (the time itself is
``benchmarks/startup.py``'s: no test here depends on the machine's speed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support import ROOT, free_port


def test_serving_line_comes_when_the_port_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DRIFTWATCH_DATA_DIR": str(tmp_path / "data"),
        "DRIFTWATCH_PORT": str(port),
        "DRIFTWATCH_HOST": "127.0.0.1",
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            seen.append(line)
            if "serving on" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        assert "serving on" in "".join(seen), "".join(seen)
        assert f"http://127.0.0.1:{port}" in seen[-1]
        # no retry, no wait: the port accepts and the API answers at once
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=30)
        assert r.status_code == 200, r.text
        # the dashboard (its log-in page), built after the port opened, answers too
        r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=60)
        assert r.status_code == 200 and "<title>Log in · Driftwatch" in r.text, r.text[:500]
        # the scheduler, started once the port is open, does start: its job store (the
        # metadata database) gets the KPI job
        metadata = tmp_path / "data" / "metadata.sqlite"
        while "kpis" not in _scheduled_jobs(metadata):
            assert proc.poll() is None and time.monotonic() < deadline, "no scheduler job"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _scheduled_jobs(metadata: Path) -> list[str]:
    """Ids of the jobs in APScheduler's job store (none while there is no table yet)."""
    if not metadata.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{metadata}?mode=ro", uri=True)) as db:
        try:
            return [row[0] for row in db.execute("SELECT id FROM apscheduler_jobs")]
        except sqlite3.OperationalError:  # the table is created by the scheduler's start
            return []


# What ``driftwatch serve`` has imported when its app's start-up is done (the moment it opens
# the port): the CLI module, the app built from the settings, the lifespan run. Scheduler and
# delivery worker off, so no thread of ours imports anything meanwhile.
LOADED_AT_READY = """
import asyncio, json, sys
import monitor.cli
from monitor.api import create_app
from monitor.settings import load_settings

app = create_app(load_settings(data_dir=sys.argv[1]), scheduler=False, worker=False)


async def main():
    async with app.router.lifespan_context(app):
        print(json.dumps(sorted(sys.modules)))


asyncio.run(main())
"""
# packages a server does not need to open its port on an existing data dir: Alembic (~1 s of
# imports) when the database is at head, the dashboard's Dash/Flask/Plotly (~1 s) until the
# port is open
NOT_BEFORE_READY = ("alembic", "dash", "flask", "plotly", "pandas")


def _loaded_at_ready(data_dir: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", LOADED_AT_READY, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


def test_start_up_on_an_existing_data_dir_leaves_the_heavy_parts_for_later(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = _loaded_at_ready(data)  # a new data dir: the metadata database is migrated
    assert "alembic" in first  # the probe sees what start-up imports
    again = _loaded_at_ready(data)  # the same data dir, now at head
    assert not again & set(NOT_BEFORE_READY), sorted(again & set(NOT_BEFORE_READY))
    assert {"monitor", "fastapi", "sqlalchemy"} <= again


# As ``driftwatch serve`` builds its app: scheduler and delivery worker on (the settings'
# defaults), started by the after-ready work. The modules loaded when the port would open,
# then those loaded once that work has run (the control: the probe sees what it starts).
LOADED_BEFORE_AND_AFTER = """
import asyncio, json, sys
import monitor.cli
from monitor.api import create_app
from monitor.settings import load_settings

app = create_app(load_settings(data_dir=sys.argv[1]), start_after_ready=True)


async def main():
    async with app.router.lifespan_context(app):
        before = sorted(sys.modules)
        scheduler_before = app.state.components.scheduler
        for work in app.state.after_ready:
            work()
        print(json.dumps([before, sorted(sys.modules), scheduler_before is None,
                          app.state.components.scheduler is not None,
                          app.state.components.alerting.worker is not None]))


asyncio.run(main())
"""


def test_scheduler_and_worker_start_once_the_port_is_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _loaded_at_ready(data)  # migrated: the next start is one on an existing data dir
    out = subprocess.run(
        [sys.executable, "-c", LOADED_BEFORE_AND_AFTER, str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    before, after, idle_before, scheduler_after, worker_after = json.loads(
        out.stdout.splitlines()[-1]
    )
    tops_before = {name.split(".")[0] for name in before}
    tops_after = {name.split(".")[0] for name in after}
    # APScheduler and numba (the profile kernels the scheduler warms up) wait for the port
    deferred = {"apscheduler", "numba"}
    assert not tops_before & deferred, sorted(tops_before & deferred)
    assert idle_before
    # ... and come with the after-ready work, which starts the scheduler and the worker
    assert "apscheduler" in tops_after
    assert scheduler_after and worker_after


def test_a_server_stopped_before_ready_never_starts_its_scheduler(tmp_path: Path) -> None:
    from monitor.api import create_app
    from monitor.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", port=free_port())
    app = create_app(settings, start_after_ready=True)

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            pass

    # in a thread of its own: where Playwright's sync browser (a session fixture) is open, this
    # thread already has a running event loop and asyncio.run refuses to start another
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, start_and_stop()).result()
    for work in app.state.after_ready:  # the after-ready thread, late: the server has stopped
        work()
    assert app.state.components.scheduler is None
    assert app.state.components.alerting.worker is None
