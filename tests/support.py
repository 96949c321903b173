"""Test helpers: a real uvicorn server on 127.0.0.1 in a thread, and a subprocess server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from monitor.api import create_app
from monitor.service import Clock, Services
from monitor.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shifted_clock(start: datetime) -> Clock:
    """A clock that reads ``start`` now and runs on at real speed from there: a server on
    data built at a fixed ``now`` sees the same present whatever the calendar day."""
    offset = start - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@dataclass
class Live:
    url: str
    services: Services
    settings: Settings


@contextmanager
def live_server(settings: Settings, clock: Clock | None = None) -> Iterator[Live]:
    """Serve the API from this process on a free port until the block ends (``clock``: the
    process's clock, e.g. :func:`shifted_clock`)."""
    services = Services.open(settings, clock)
    app = create_app(settings, services)
    port = settings.port
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{port}", services, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        services.close()


@contextmanager
def server_process(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``driftwatch serve`` as a child process (for crash tests); killed at the end."""
    full_env = {**os.environ, **env, "DRIFTWATCH_PORT": str(port), "DRIFTWATCH_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()


def wait_ready(url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{url}/api/v1/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not ready after {timeout}s")


def wait_job(c: httpx.Client, job: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` (``c`` has the ``/api/v1`` base URL) until the job ends."""
    deadline = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job['id']} did not finish in {timeout} s: {job}")
        time.sleep(0.1)
        r = c.get(f"/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        job = r.json()
    return job


def duckdb_runner(meta: Any, ls: Any, **kw: Any) -> Any:
    """A monitor runner wired to the embedded DuckDB engine (what ``MonitorService`` builds)."""
    from monitor.runner import Runner
    from storage.log_reads import LogReads
    from storage.metadata.monitoring import MonitoringStore
    from storage.profiles import ProfileStore

    return Runner(meta, LogReads(ls), profiles=ProfileStore(ls), store=MonitoringStore(meta), **kw)
