"""The lean JSON ingest path (``monitor.api.lean_ingest``) answers exactly as the routes do.

Two real servers on real DuckDB files, one with the lean path (the default) and one with
``ingest_lean_path=False``, get the same requests; every answer (status, body but the batch
id, headers) and what each stored must be the same, and the lean server's counter shows the
requests it took.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from monitor.api import lean_ingest
from storage.metadata import MetadataStore
from tests.api.conftest import CHURN, Keys, make_keys, make_settings
from tests.support import Live, free_port, live_server, shared_tls

NOW = datetime.now(UTC).replace(microsecond=0)


COMPARED_HEADERS = (
    "content-type",
    "content-length",
    "www-authenticate",
    "retry-after",
    "x-frame-options",
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
)


def rows(tag: str, n: int, tenant: str | None = "acme", **over: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        row: dict[str, Any] = {
            "request_id": f"{tag}-{i}",
            "ts": (NOW - timedelta(minutes=i)).isoformat(),
            "age": 20.0 + i,
            "plan": ("free", "pro")[i % 2],
            "mobile": bool(i % 2),
            "note": "ok",
            "prediction": i % 2,
            "score": 0.25,
            "model_version": "v1",
        }
        if tenant is not None:
            row["tenant_id"] = tenant
        row.update(over)
        out.append(row)
    return out


@contextmanager
def server(tmp_path: Path, lean: bool, front: bool = False) -> Iterator[tuple[Live, Keys]]:
    """A real server; with ``front``, its ingest front too (``Live.ingest_url``)."""
    settings = make_settings(
        tmp_path / ("lean" if lean else "routes"),
        ingest_lean_path=lean,
        ingest_port=free_port() if front else None,
        max_body_bytes=8192,
        scheduler_enabled=False,
        alert_worker=False,
    )
    with live_server(settings) as live:
        # the lean path takes a model the service has in memory, kept 2 s: for the test's
        # length, so which path a request takes does not depend on the machine's speed
        live.services.MODEL_CACHE_SECONDS = 3600.0  # type: ignore[misc]
        keys = make_keys(live)
        with live.http(keys.admin) as admin:
            assert admin.post("/models", json=CHURN).status_code == 201
        yield live, keys


def lean_count(live: Live, counter: str = "lean") -> int:
    text = httpx.get(f"{live.url}/api/v1/metrics", verify=shared_tls()).text
    for line in text.splitlines():
        if line.startswith(f"driftwatch_ingest_{counter}_requests_total "):
            return int(float(line.split()[1]))
    return 0


# (key name, method path, content type, body): every kind of answer an ingest route gives
def requests() -> list[tuple[str | None, str, str, bytes]]:
    js = "application/json"
    bad = rows("bad", 4)
    bad[0]["age"] = "NaN"
    bad[1]["ts"] = "1999-01-01T00:00:00+00:00"
    bad[2]["request_id"] = "x" * 1000
    del bad[3]["request_id"]
    return [
        ("engineer", "/models/churn/inferences", js, orjson.dumps(rows("a", 3))),
        ("engineer", "/models/churn/inferences", js, orjson.dumps(rows("a", 3))),  # retry
        ("engineer", "/models/churn/inferences", js, orjson.dumps(rows("b", 5, "globex"))),
        ("engineer", "/models/churn/inferences", js, orjson.dumps(bad)),
        ("engineer", "/models/churn/inferences", js, orjson.dumps(bad)),  # quarantined once
        (
            "engineer",
            "/models/churn/inferences",
            js + "; charset=utf-8",
            orjson.dumps(rows("c", 2)),
        ),
        (
            "engineer",
            "/models/churn/inferences",
            "application/x-ndjson",
            b"\n".join(orjson.dumps(r) for r in rows("d", 3)) + b"\n{broken\n",
        ),
        ("engineer", "/models/churn/inferences", js, orjson.dumps(rows("e", 1, extra=1))),
        ("engineer", "/models/churn/inferences", js, b"[{"),
        ("engineer", "/models/churn/inferences", js, b"{}"),
        ("engineer", "/models/churn/inferences", js, orjson.dumps(rows("f", 60))),  # > 8192 B
        ("engineer", "/models/nope/inferences", js, orjson.dumps(rows("g", 1))),
        ("acme", "/models/churn/inferences", js, orjson.dumps(rows("h", 2, None))),
        ("acme", "/models/churn/inferences", js, orjson.dumps(rows("i", 2, "globex"))),
        ("viewer", "/models/churn/inferences", js, orjson.dumps(rows("j", 1))),
        ("revoked", "/models/churn/inferences", js, orjson.dumps(rows("k", 1))),
        (None, "/models/churn/inferences", js, orjson.dumps(rows("l", 1))),
        (
            "engineer",
            "/models/churn/labels",
            js,
            orjson.dumps(
                [
                    {"request_id": "a-0", "label": 1, "tenant_id": "acme"},
                    {"request_id": "zz", "label": 7, "tenant_id": "acme"},
                ]
            ),
        ),
        (
            "engineer",
            "/events",
            js,
            orjson.dumps(
                [
                    {"tenant_id": "acme", "ts": NOW.isoformat(), "name": "conversion", "value": 1},
                    {"tenant_id": "acme", "ts": "yesterday", "name": "conversion"},
                ]
            ),
        ),
        ("engineer", "/events", js, orjson.dumps([{"tenant_id": "acme", "name": "x"}] * 2)),
    ]


def answer(
    live: Live, keys: Keys, key: str | None, path: str, ctype: str, body: bytes, *, front=False
) -> dict:
    """The answer to one request, on the main port (or the ingest front's, ``front``)."""
    headers = {"Content-Type": ctype}
    if key is not None:
        headers["Authorization"] = f"Bearer {getattr(keys, key)}"
    url = f"{live.ingest_url if front else live.url}/api/v1{path}"
    r = httpx.post(url, content=body, headers=headers, timeout=60, verify=shared_tls())
    data = r.json()
    if "batch_id" in data:
        data["batch_id"] = "<batch>"
    return {
        "status": r.status_code,
        "body": data,
        "headers": {h: r.headers.get(h) for h in COMPARED_HEADERS},
    }


def stored(live: Live) -> dict[str, Any]:
    store = live.services.logstore
    inferences = store.read_inferences("churn")
    return {
        "inferences": sorted(
            zip(
                inferences["tenant_id"].to_pylist(),
                inferences["request_id"].to_pylist(),
                inferences["age"].to_pylist(),
                strict=True,
            )
        ),
        "labels": sorted(store.read_labels("churn")["request_id"].to_pylist()),
        "events": store.read_events()["event_id"].to_pylist(),
        "quarantine": sorted(
            (r["row_index"], r["field"], r["reason"]) for r in store.read_quarantine().to_pylist()
        ),
    }


@pytest.mark.parametrize(
    "where", ["on-loop", "on-validator-thread", "ingest-front"], ids=lambda where: where
)
def test_lean_path_answers_and_stores_as_the_routes_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Each request alone: its body validated on the event loop, as a lone writer's is; with
    the loop's size limit at 0, on a validator thread, as under many writers; and sent to
    the ingest front's port (``DRIFTWATCH_INGEST_PORT``), validated in that process."""
    if where == "on-validator-thread":
        monkeypatch.setattr(lean_ingest, "LOOP_BODY_BYTES", 0)
    front = where == "ingest-front"
    with (
        server(tmp_path, lean=True, front=front) as (lean, lean_keys),
        server(tmp_path, lean=False) as (
            routes,
            route_keys,
        ),
    ):
        # warm: each key authenticates once through the routes (the lean path takes only
        # keys that did), and the model is looked up once
        for live, keys in ((lean, lean_keys), (routes, route_keys)):
            for name in ("engineer", "acme", "viewer"):
                with live.http(getattr(keys, name)) as c:
                    assert c.get("/models/churn").status_code == 200
        before = lean_count(lean)
        for key, path, ctype, body in requests():
            got = answer(lean, lean_keys, key, path, ctype, body, front=front)
            want = answer(routes, route_keys, key, path, ctype, body)
            assert got == want, (key, path, body[:200])
        assert stored(lean) == stored(routes)
        assert stored(lean)["inferences"], "nothing was stored"
        # the lean server took the requests of cached engineer keys to a known model
        # (not the viewer's, the revoked or missing key, the unknown model, the 8 kB body)
        assert lean_count(lean) - before == 15
        assert lean_count(routes) == 0
        # through the front, those 15 were read and validated there; the rest were passed
        # on to the main port (whose answers are compared above)
        assert lean_count(lean, "front") == (15 if front else 0)


FRONT = pytest.mark.parametrize("front", [False, True], ids=["main-port", "ingest-front"])


@FRONT
def test_key_revoked_by_another_process_is_refused_on_the_lean_path(
    tmp_path: Path, front: bool
) -> None:
    """A key this server has in memory, revoked through another connection to the metadata
    database (``driftwatch keys revoke`` on the data dir): the lean path takes the request
    on its memory check, and the routes' dependency on its thread refuses it, unstored. The
    ingest front, which keeps the server's admission of the key for 2 s, reads the body too,
    and the server's writer refuses it the same way."""
    with server(tmp_path, lean=True, front=front) as (live, keys):
        base = f"{live.ingest_url if front else live.url}/api/v1"
        auth = {"Authorization": f"Bearer {keys.engineer}"}
        with live.http(keys.engineer) as c:  # the key authenticates once through the routes
            assert c.get("/models/churn").status_code == 200
        with httpx.Client(base_url=base, headers=auth, timeout=60, verify=shared_tls()) as c:
            r = c.post("/models/churn/inferences", json=rows("a", 2))
            assert r.status_code == 200 and r.json()["accepted"] == 2
            before = lean_count(live)
            before_front = lean_count(live, "front")
            other = MetadataStore(live.settings.metadata_url)
            try:
                key = next(k for k in other.list_api_keys() if k.name == "engineer")
                other.revoke_api_key(str(key.id))
            finally:
                other.dispose()
            r = c.post("/models/churn/inferences", json=rows("b", 2))
        assert r.status_code == 401, r.text
        assert r.json()["error"]["message"] == "unknown, revoked or expired API key"
        assert r.headers["www-authenticate"] == "Bearer"
        assert lean_count(live) - before == 1  # answered by the lean path
        assert lean_count(live, "front") - before_front == (1 if front else 0)
        assert live.services.logstore.count_inferences("churn") == 2


@FRONT
def test_many_small_writers_on_the_lean_path_store_each_row_once(
    tmp_path: Path, front: bool
) -> None:
    """32 concurrent writers of 5-row batches (each also retried once): every row stored
    exactly once, every answer counts its rows, and the requests shared commits; on the
    main port, and through the ingest front."""
    writers, batches, n = 32, 6, 5
    with server(tmp_path, lean=True, front=front) as (live, keys):
        with live.http(keys.engineer) as c:
            assert c.get("/models/churn").status_code == 200
        before = lean_count(live)
        before_front = lean_count(live, "front")
        stats0 = live.services.logstore.commit_stats()
        failures: list[str] = []
        accepted = [0] * writers
        duplicates = [0] * writers

        def write(w: int) -> None:
            with httpx.Client(
                base_url=f"{live.ingest_url if front else live.url}/api/v1",
                headers={"Authorization": f"Bearer {keys.engineer}"},
                timeout=120,
                verify=shared_tls(),
            ) as http:
                for b in range(batches):
                    body = rows(f"w{w}-{b}", n, ("acme", "globex")[w % 2])
                    for _ in range(2):  # the second is a retry: all duplicates
                        r = http.post("/models/churn/inferences", json=body)
                        if r.status_code != 200:
                            failures.append(r.text)
                            return
                        accepted[w] += r.json()["accepted"]
                        duplicates[w] += r.json()["duplicates"]

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures[:3]
        assert accepted == [batches * n] * writers
        assert duplicates == [batches * n] * writers
        table = live.services.logstore.read_inferences("churn")
        keys_stored = list(
            zip(table["tenant_id"].to_pylist(), table["request_id"].to_pylist(), strict=True)
        )
        assert len(keys_stored) == len(set(keys_stored)) == writers * batches * n
        assert lean_count(live) - before == writers * batches * 2
        assert lean_count(live, "front") - before_front == (writers * batches * 2 if front else 0)
        stats = live.services.logstore.commit_stats()
        appends = stats["appends"] - stats0["appends"]
        commits = stats["commits"] - stats0["commits"]
        assert appends == writers * batches
        assert commits <= appends  # shared when requests overlapped (not asserted: timing)


def test_setting_off_sends_every_request_through_the_routes(tmp_path: Path) -> None:
    with server(tmp_path, lean=False) as (live, keys):
        with live.http(keys.engineer) as c:
            for tag in ("a", "b"):
                assert c.post("/models/churn/inferences", json=rows(tag, 2)).status_code == 200
        assert lean_count(live) == 0


def test_a_model_past_its_cache_time_stays_on_the_lean_path(tmp_path: Path) -> None:
    """The service keeps a model it read for 2 s. A request for a model read longer ago still
    takes the lean path (its writer reads the model again, as the route does) instead of
    falling through to the routes: under many writers that sent a burst of requests down the
    slower path every 2 s."""
    with server(tmp_path, lean=True) as (live, keys):
        with live.http(keys.engineer) as c:
            r = c.post("/models/churn/inferences", json=rows("a", 2))
            assert r.status_code == 200 and r.json()["accepted"] == 2
            live.services.MODEL_CACHE_SECONDS = 0.0  # type: ignore[misc]
            assert live.services.cached_model("churn") is None
            before = lean_count(live)
            r = c.post("/models/churn/inferences", json=rows("b", 3))
            assert r.status_code == 200 and r.json()["accepted"] == 3
            assert lean_count(live) - before == 1
        assert live.services.logstore.count_inferences("churn") == 5


def test_under_other_writers_a_body_is_validated_off_the_event_loop(tmp_path: Path) -> None:
    """A request that arrives while another lean request waits for the writer is validated on
    a validator thread, not on the event loop the dashboard's reads share; a lone request is
    validated on the loop (no thread hop). The writer is held inside its append (the real
    one, gated) so the first request is in flight for as long as the test needs; meanwhile a
    read is answered, and then both writes are stored and answered."""
    with server(tmp_path, lean=True) as (live, keys):
        services = live.services
        with live.http(keys.engineer) as c:
            assert c.get("/models/churn").status_code == 200
        threads_of: dict[str, str] = {}
        prepare = services.prepare_ingest

        def spy_prepare(kind: Any, info: Any, parsed: Any, scope: Any) -> Any:
            threads_of[parsed.parsed_rows().rows[0]["request_id"]] = threading.current_thread().name
            return prepare(kind, info, parsed, scope)

        entered, release = threading.Event(), threading.Event()
        append_many = services.logstore.append_many

        def gated_append_many(batches: Any) -> Any:
            entered.set()
            assert release.wait(60), "the test never released the writer"
            return append_many(batches)

        services.prepare_ingest = spy_prepare  # type: ignore[method-assign]
        services.logstore.append_many = gated_append_many  # type: ignore[method-assign]
        answers: dict[str, httpx.Response] = {}

        def post(tag: str) -> None:
            with live.http(keys.engineer) as http:
                answers[tag] = http.post("/models/churn/inferences", json=rows(tag, 3))

        first = threading.Thread(target=post, args=("first",))
        first.start()
        assert entered.wait(30), "the first request never reached the writer"
        second = threading.Thread(target=post, args=("second",))
        second.start()
        with live.http(keys.viewer) as v:
            read = v.get("/models/churn")  # answered while both writes wait
        assert read.status_code == 200, read.text
        release.set()
        first.join(60)
        second.join(60)
        assert [answers[t].status_code for t in ("first", "second")] == [200, 200]
        assert [answers[t].json()["accepted"] for t in ("first", "second")] == [3, 3]
        loop_thread = threads_of["first-0"]
        assert not loop_thread.startswith("lean-validate"), threads_of
        assert threads_of["second-0"].startswith("lean-validate_"), threads_of
        assert services.logstore.count_inferences("churn") == 6
