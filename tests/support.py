"""Test helpers: the API app in process (:func:`in_process`, the default for API, CLI and
client tests), a real uvicorn server on 127.0.0.1 in a thread (:func:`live_server`, only where
the network or the server itself is the point), and a subprocess server (crash tests)."""

from __future__ import annotations

import functools
import os
import re
import signal
import socket
import ssl
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
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from monitor.api import FrontProcess, create_app
from monitor.service import Clock, Services
from monitor.settings import Settings

# Statistical words no page or answer meant for the executive role may use
# (tests/dashboard/test_executive.py, tests/api/test_kpis_api.py).
JARGON = re.compile(
    r"\b(wasserstein|jensen|shannon|p[- ]?values?|psi|ks|kolmogorov|smirnov|chi[- ]?squared?|"
    r"chi2|drift_share|z[- ]?scores?|robust z|cusum|mad|median absolute|cbpe|auc|roc_auc|f1|"
    r"rmse|mae|mape|r2|sigma|standard deviations?|statistic|hypothesis|"
    r"feature_drift|prediction_drift|estimated_performance|data_quality|out_of_range)\b",
    re.IGNORECASE,
)

ROOT = Path(__file__).resolve().parents[1]
# How long a test waits for something to happen (a server to start or stop, a job, a delivery)
# before it fails: a bound on a hang, never on what a test asserts. The suite runs on busy 2-core
# machines (load 10-20, several pytest-xdist workers), where a second alone can become a minute.
PATIENCE_S = 120.0


@functools.cache
def shared_tls() -> ssl.SSLContext:
    """One verifying SSL context for the tests' httpx clients of real servers (http: unused),
    passed as ``verify=``: a client made without one loads the CA bundle into a new context,
    ~25-30 ms of CPU (``httpx.get`` makes a client per call)."""
    return ssl.create_default_context()


def accepts(port: int) -> bool:
    """Whether something on this machine accepts connections on ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


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
    """A running API: ``url`` is its base URL; ``transport`` is how to reach it (``None``: over
    the network, a real server; else the app in this process, see :func:`in_process`)."""

    url: str
    services: Services
    settings: Settings
    transport: httpx.BaseTransport | None = None
    app: Any = None  # the ASGI app when in process (e.g. for schemathesis' ASGI transport)
    # the ingest front's base URL when the settings give an ingest port (live_server)
    ingest_url: str | None = None

    def http(self, key: str | None = None, *, base: str = "/api/v1", **kw: Any) -> httpx.Client:
        """An HTTP client of ``url + base`` sending ``key`` as its bearer token."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kw.setdefault("timeout", 60)
        if self.transport is None:
            kw.setdefault("verify", shared_tls())
        return httpx.Client(
            base_url=f"{self.url}{base}", headers=headers, transport=self.transport, **kw
        )


class AppTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls an ASGI app in this process.

    ``httpx.ASGITransport`` is async only; this one runs it on the event loop of an anyio
    blocking portal (a helper thread), so sync clients — the tests' ``httpx.Client``, the
    Python client, the CLI's ``--url`` mode — reach the app without a socket. Bodies are read
    whole on both sides (the API neither streams requests nor answers in an endless stream).
    """

    def __init__(self, app: Any, portal: BlockingPortal) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()  # a sync (even one-shot generator) body, read here
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> tuple[int, httpx.Headers, bytes]:
            resp = await self._asgi.handle_async_request(inner)
            raw = b"".join([part async for part in resp.aiter_raw()])
            return resp.status_code, resp.headers, raw

        status, headers, raw = self._portal.call(call)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw))


IN_PROCESS_URL = "http://driftwatch.test"


def _after_ready(app: FastAPI) -> None:
    """What ``driftwatch serve`` starts in a thread once its port is open (building the
    dashboard), done here before the test starts, so no test's first page pays for it."""
    for work in app.state.after_ready:
        work()


@contextmanager
def in_process(
    settings: Settings, clock: Clock | None = None, *, worker: bool = False
) -> Iterator[Live]:
    """The API app (with the dashboard) in this process until the block ends: no server, no
    port, no scheduler, and no alert delivery worker unless ``worker`` (a test of webhook
    delivery); tests run monitors through the API or the services. The app's lifespan runs
    as under a server. Reach it with ``live.http(key)``, any httpx client given
    ``transport=live.transport``, or the CLI's ``--url`` with ``cli_common.TRANSPORT`` set to
    it (the ``tests/api`` fixture ``live`` does that)."""
    services = Services.open(settings, clock)
    try:
        app: FastAPI = create_app(settings, services, scheduler=False, worker=worker)
        with (
            start_blocking_portal() as portal,
            portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        ):
            _after_ready(app)
            yield Live(IN_PROCESS_URL, services, settings, AppTransport(app, portal), app)
    finally:
        services.close()


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
    deadline = time.monotonic() + PATIENCE_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    _after_ready(app)
    front = None
    try:
        ingest_url = None
        if settings.ingest_port is not None:  # the ingest front, as `driftwatch serve` starts it
            front = FrontProcess(app, settings)
            front.wait_accepting(PATIENCE_S)
            ingest_url = f"http://127.0.0.1:{settings.ingest_port}"
        yield Live(f"http://127.0.0.1:{port}", services, settings, ingest_url=ingest_url)
    finally:
        if front is not None:
            front.stop()
        server.should_exit = True
        thread.join(timeout=PATIENCE_S)
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
        if "DRIFTWATCH_INGEST_PORT" in env:  # and its ingest front (passes /ready on)
            wait_ready(f"http://127.0.0.1:{env['DRIFTWATCH_INGEST_PORT']}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=PATIENCE_S)
        if proc.stderr:
            proc.stderr.close()


def wait_ready(
    url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = PATIENCE_S
) -> None:
    deadline = time.monotonic() + timeout
    # one client for every poll, not ``httpx.get`` ten times a second (see shared_tls)
    with httpx.Client(timeout=1, verify=shared_tls()) as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
            try:
                if http.get(f"{url}/api/v1/ready").status_code == 200:
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
