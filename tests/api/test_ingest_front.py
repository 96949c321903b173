"""The ingest front (``DRIFTWATCH_INGEST_PORT``, ``monitor.api.ingest_front``): its life with
``driftwatch serve``, what it passes on to the main port, and a schema changed under it.

Its answers to every kind of ingest request are compared with the routes' in
``tests/api/test_lean_ingest.py`` (``ingest-front``), as are revoked keys and many writers;
``tests/api/test_durability.py`` kills the server under writers on the front's port (and
sees the front stop).
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import psutil
import pyarrow as pa
import pytest

from monitor import ingest
from monitor.api.ingest_link import pack_tables, unpack_batch, unpack_tables
from monitor.ingest_prepare import BatchPreparer
from monitor.schemas import ModelIn
from monitor.settings import Settings
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.types import ModelInfo
from tests.api.conftest import CHURN
from tests.api.test_lean_ingest import lean_count, rows, server
from tests.support import PATIENCE_S, ROOT, accepts, free_port, shared_tls


def serve(data: Path, port: int, ingest_port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DRIFTWATCH_DATA_DIR": str(data),
        "DRIFTWATCH_HOST": "127.0.0.1",
        "DRIFTWATCH_PORT": str(port),
        "DRIFTWATCH_INGEST_PORT": str(ingest_port),
        "DRIFTWATCH_SCHEDULER_ENABLED": "false",
        "COLUMNS": "200",  # rich wraps the console's lines at 80 otherwise
    }
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int, str]]:
    """``driftwatch serve`` with an ingest port, as soon as it says "serving" (killed at the
    end): the process, its port, the ingest port and the line it said."""
    port, ingest_port = free_port(), free_port()
    proc = serve(tmp_path / "data", port, ingest_port)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "serving on" in line:
                break
        else:
            pytest.fail(f"serve exited without serving: {''.join(seen)[-2000:]}")
        yield proc, port, ingest_port, line
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=PATIENCE_S)


def test_serve_says_serving_once_both_ports_accept_and_stops_its_front(tmp_path: Path) -> None:
    """ "serving" is printed only once the ingest port accepts too (a client started on that
    line is not refused), it names the port, and SIGTERM stops both processes."""
    with serving(tmp_path) as (proc, port, ingest_port, line):
        # checked at once, as a client started on that line would
        assert accepts(ingest_port) and accepts(port)
        assert f"ingest also on port {ingest_port}" in line, line
        main = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)
        front = httpx.get(f"http://127.0.0.1:{ingest_port}/api/v1/health", timeout=30)
        assert front.status_code == main.status_code == 200
        assert front.json()["status"] == main.json()["status"]
        proc.send_signal(signal.SIGTERM)
        # uvicorn ends by raising the signal it caught again: -15 is a clean stop here
        assert proc.wait(timeout=PATIENCE_S) in (0, -signal.SIGTERM)
        assert proc.stdout is not None
        out = proc.stdout.read()
        assert "Traceback" not in out, out[-3000:]
        assert not accepts(ingest_port), "the ingest front outlived the server"


def test_a_front_that_dies_is_started_again(tmp_path: Path) -> None:
    """A front killed on its own (a crash, the OOM killer) is started again by the server,
    and ingest through its port works again."""
    with serving(tmp_path) as (proc, _, ingest_port, _):
        (front,) = psutil.Process(proc.pid).children()
        front.kill()
        front.wait(PATIENCE_S)
        deadline = time.monotonic() + PATIENCE_S
        while not accepts(ingest_port):
            assert time.monotonic() < deadline, "the front was not started again"
            time.sleep(0.1)
        (again,) = psutil.Process(proc.pid).children()
        assert again.pid != front.pid
        r = httpx.get(f"http://127.0.0.1:{ingest_port}/api/v1/health", timeout=30)
        assert r.status_code == 200


def test_a_taken_ingest_port_stops_serve_with_an_error_naming_it(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ingest_port = taken.getsockname()[1]
        proc = serve(tmp_path / "data", port, ingest_port)
        out, _ = proc.communicate(timeout=PATIENCE_S)
    assert proc.returncode == 1, out[-2000:]
    assert "DRIFTWATCH_INGEST_PORT" in out and str(ingest_port) in out, out[-2000:]
    assert "serving on" not in out
    assert not accepts(port), "the main port still accepts after serve failed"


def test_what_the_front_passes_on_gets_the_main_ports_answer(tmp_path: Path) -> None:
    """Reads, the dashboard and failed authentications go through the front to the main
    port: the same answers, and the audit log names the client, not the front."""
    with server(tmp_path, lean=True, front=True) as (live, keys):
        assert live.ingest_url is not None
        auth = {"Authorization": f"Bearer {keys.engineer}"}
        for path in ("/api/v1/models/churn", "/api/v1/models?limit=5", "/login"):
            main = httpx.get(f"{live.url}{path}", headers=auth, timeout=60)
            front = httpx.get(f"{live.ingest_url}{path}", headers=auth, timeout=60)
            assert front.status_code == main.status_code == 200, path
            if path == "/login":  # a new CSRF token each time
                assert b"<title>Log in" in front.content
                assert len(front.content) == len(main.content)
            else:
                assert front.content == main.content, path
            assert front.headers["content-type"] == main.headers["content-type"]
            assert front.headers["x-frame-options"] == "DENY"
            assert len(front.headers.get_list("date")) == 1
        # a client on another loopback address, with a bad key
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=60) as c:
            r = c.get(f"{live.ingest_url}/api/v1/models", headers={"X-API-Key": "dw_" + "z" * 43})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        failed = [e for e in live.services.metadata.list_audit(20) if e.action == "auth.failed"]
        assert failed[0].actor == "ip:127.0.0.2", failed[0]
        assert failed[0].detail["key_prefix"] == "z" * 8


def _post(c: httpx.Client, body: list[dict]) -> httpx.Response:
    return c.post(
        "/models/churn/inferences",
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
    )


def _answer(r: httpx.Response) -> tuple[int, dict]:
    data = r.json()
    data.pop("batch_id", None)
    return r.status_code, data


@pytest.mark.parametrize("change", ["field-added", "field-dropped"])
def test_a_schema_changed_after_the_front_admitted_the_key_is_validated_again(
    tmp_path: Path, change: str
) -> None:
    """The front validates against the model it was told of, kept 2 s. After a schema
    change, a batch it validated against the old schema (a field dropped since: valid
    then) or could not validate (a field added since) is validated by the server against
    the schema in force: the answer and what is stored are the main port's."""
    with server(tmp_path, lean=True, front=True) as (live, keys):
        auth = {"Authorization": f"Bearer {keys.engineer}"}
        with live.http(keys.engineer) as c:  # the key authenticates once through the routes
            assert c.get("/models/churn").status_code == 200
        front = httpx.Client(
            base_url=f"{live.ingest_url}/api/v1", headers=auth, timeout=60, verify=shared_tls()
        )
        with front, live.http(keys.engineer) as main:
            r = _post(front, rows("a", 2))
            assert r.status_code == 200 and r.json()["accepted"] == 2
            before = lean_count(live, "front")
            features = CHURN["features"]
            if change == "field-added":
                features = [*features, {"name": "extra", "kind": "numeric"}]
                extra: dict = {"extra": 7.5}
            else:
                features = [f for f in features if f["name"] != "note"]
                extra = {}
            with live.http(keys.admin) as admin:
                r = admin.put("/models/churn", json={**CHURN, "features": features})
                assert r.status_code == 200, r.text
            got = _answer(_post(front, rows("b", 3, **extra)))
            want = _answer(_post(main, rows("c", 3, **extra)))
        assert got == want
        assert lean_count(live, "front") - before == 1  # the front took it
        table = live.services.logstore.read_inferences("churn")
        ids = table["request_id"].to_pylist()
        assert ("b-0" in ids) == ("c-0" in ids)
        if change == "field-added":
            assert want[0] == 200 and want[1]["accepted"] == 3
            stored = dict(zip(ids, table["extra"].to_pylist(), strict=True))
            assert [stored[f"b-{i}"] for i in range(3)] == [7.5] * 3


def test_a_key_unknown_to_the_server_is_passed_on_until_it_authenticates(
    tmp_path: Path,
) -> None:
    """A key the server has not authenticated yet: the front does not read its body (the
    routes answer it, and authenticate it), then takes the key's next requests itself."""
    with server(tmp_path, lean=True, front=True) as (live, _):
        meta = MetadataStore(live.settings.metadata_url)
        try:
            _, fresh = meta.create_api_key("fresh", "engineer")
        finally:
            meta.dispose()
        front = f"{live.ingest_url}/api/v1"
        auth = {"Authorization": f"Bearer {fresh}"}
        with httpx.Client(base_url=front, headers=auth, timeout=60, verify=shared_tls()) as c:
            before = lean_count(live, "front")
            r = c.post("/models/churn/inferences", json=rows("a", 2))
            assert r.status_code == 200 and r.json()["accepted"] == 2
            assert lean_count(live, "front") == before  # passed on: the routes' answer
            time.sleep(0.3)  # past the front's memory of the refusal (REFUSAL_SECONDS)
            r = c.post("/models/churn/inferences", json=rows("b", 2))
            assert r.status_code == 200 and r.json()["accepted"] == 2
            assert lean_count(live, "front") == before + 1
        assert live.services.logstore.count_inferences("churn") == 4


def test_batches_cross_the_link_in_one_table_per_schema_and_come_back_whole(
    tmp_path: Path,
) -> None:
    """``pack_tables`` / ``unpack_batch``: each batch gets its own rows back (two models'
    inference batches, events and a batch the front could not validate, in one message),
    the rows of all in one single-chunk table per schema, as an Arrow IPC stream."""
    now = datetime.now(UTC)
    infos = {
        name: ModelInfo(name, ModelIn(**{**CHURN, "name": name}).to_schema(), "", now, now)
        for name in ("churn", "other")
    }
    with LogStore(tmp_path / "x.duckdb") as store:
        preparer = BatchPreparer(Settings(), lambda: now, store.arrow_schema)
        jobs: list = []
        for i in range(12):
            info = infos[("churn", "other")[i % 2]]
            body = orjson.dumps(rows(f"r{i}", 1 + i))
            parsed = ingest.parse_body(body, "application/json")
            prepared = preparer.prepare("inferences", info, parsed, None)
            jobs.append((i, "inferences", info.name, "/p", [], None, body, None, prepared))
        body = orjson.dumps([{"tenant_id": "acme", "ts": now.isoformat(), "name": "x"}])
        prepared = preparer.prepare(
            "events", None, ingest.parse_body(body, "application/json"), None
        )
        jobs.append((12, "events", None, "/e", [], None, body, None, prepared))
    jobs.append((13, "inferences", "churn", "/p", [], None, b"[{", None, None))
    items, streams = pickle.loads(pickle.dumps(pack_tables(jobs)))
    assert all(isinstance(s, bytes) for s in streams)  # not pickled Arrow tables (slow)
    tables = unpack_tables(streams)
    # the two models have the same columns: one table for their batches, one for events
    assert [t.num_rows for t in tables] == [sum(range(1, 13)), 1]
    for job, item in zip(jobs, items, strict=True):
        if job[-1] is None:
            assert item[-1] is None
            continue
        back = unpack_batch(item[-1], tables)
        assert back.table.equals(job[-1].table), job[0]
        assert (back.batch_id, back.model, back.v.received, back.v.errors) == (
            job[-1].batch_id,
            job[-1].model,
            job[-1].v.received,
            job[-1].v.errors,
        )
        assert (back.kind, back.schema, back.tenant_scope, back.v.tenants) == (
            job[-1].kind,
            job[-1].schema,
            job[-1].tenant_scope,
            job[-1].v.tenants,
        )
        assert back.v.table.equals(back.table)
    # no batch carries a table of its own (none has labels, which travel pickled): Arrow
    # tables pickle slowly
    assert not any(
        isinstance(v, pa.Table) for item in items if item[-1] is not None for v in item[-1][0]
    )
    assert all(t.column(0).num_chunks == 1 for t in tables)
