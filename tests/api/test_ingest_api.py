"""Every ingest endpoint through the real HTTP server: success, idempotency and each error."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import CHURN, Keys, client, make_keys, make_settings
from tests.support import Live, in_process

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def rows(n: int, start: int = 0, tenant: str = "acme", **over: object) -> list[dict]:
    out = []
    for i in range(start, start + n):
        row = {
            "request_id": f"r{i}",
            "ts": (T0 + timedelta(minutes=i)).isoformat(),
            "tenant_id": tenant,
            "model_version": "v1",
            "age": 20.0 + i % 50,
            "plan": ["free", "pro"][i % 2],
            "mobile": i % 3 == 0,
            "note": f"n{i}",
            "prediction": i % 2,
            "score": (i % 10) / 10,
        }
        row.update(over)
        out.append(row)
    return out


def as_table(data: list[dict]) -> pa.Table:
    t = pa.Table.from_pylist(data)
    return t.set_column(
        t.schema.get_field_index("ts"),
        "ts",
        pa.array([datetime.fromisoformat(r["ts"]) for r in data], pa.timestamp("us", tz="UTC")),
    )


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


# ----------------------------------------------------------------------------- models
def test_register_list_get_model(live: Live, eng: httpx.Client, churn: dict) -> None:
    assert churn["name"] == "churn" and churn["task"] == "binary"
    assert [m["name"] for m in eng.get("/models").json()] == ["churn"]
    detail = eng.get("/models/churn").json()
    assert detail["rows"] == 0 and detail["schema"]["features"][1]["segment"] is True
    again = eng.post("/models", json=CHURN)
    assert again.status_code == 409 and "exists" in again.json()["error"]["message"]


def test_unknown_model_is_404(eng: httpx.Client) -> None:
    for method, path in [
        ("GET", "/models/nope"),
        ("POST", "/models/nope/inferences"),
        ("POST", "/models/nope/labels"),
        ("GET", "/models/nope/quarantine"),
        ("PUT", "/models/nope/references/base"),
    ]:
        r = eng.request(method, path, content=b"[]", headers={"Content-Type": "application/json"})
        assert r.status_code == 404, (method, path, r.text)
        assert "nope" in r.json()["error"]["message"]


def test_bad_model_definition_names_the_field(eng: httpx.Client) -> None:
    bad = {**CHURN, "features": [{"name": "ts", "kind": "numeric"}]}
    r = eng.post("/models", json=bad)
    assert r.status_code == 422
    assert "reserved" in r.text and r.json()["error"]["errors"][0]["loc"][:2] == [
        "body",
        "features",
    ]
    r = eng.post("/models", json={**CHURN, "features": [{"name": "x", "kind": "float"}]})
    assert r.status_code == 422 and "kind" in r.text


def test_schema_evolution_adds_column_and_refuses_type_change(
    live: Live, eng: httpx.Client, churn: dict
) -> None:
    grown = {**CHURN, "features": [*CHURN["features"], {"name": "visits", "kind": "numeric"}]}
    r = eng.put("/models/churn", json=grown)
    assert r.status_code == 200, r.text
    r = eng.post("/models/churn/inferences", json=rows(2, visits=3))
    assert r.json()["accepted"] == 2
    changed = {
        **grown,
        "features": [{"name": "age", "kind": "categorical"}, *grown["features"][1:]],
    }
    r = eng.put("/models/churn", json=changed)
    assert r.status_code == 409 and "age" in r.json()["error"]["message"]


# ----------------------------------------------------------------------------- inferences
def test_json_ingest_and_idempotent_retry(live: Live, eng: httpx.Client, churn: dict) -> None:
    batch = rows(100)
    first = eng.post("/models/churn/inferences", json=batch).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (100, 0, 0)
    retry = eng.post("/models/churn/inferences", json=batch).json()
    assert (retry["accepted"], retry["duplicates"]) == (0, 100)
    overlap = eng.post("/models/churn/inferences", json=rows(100, start=50)).json()
    assert (overlap["accepted"], overlap["duplicates"]) == (50, 50)
    assert live.services.logstore.count_inferences("churn") == 150


@pytest.mark.parametrize("fmt", ["ndjson", "parquet", "arrow", "csv"])
def test_every_body_format(live: Live, eng: httpx.Client, churn: dict, fmt: str) -> None:
    data = rows(50)
    table = as_table(data)
    if fmt == "ndjson":
        body, ctype = b"\n".join(orjson.dumps(r) for r in data), "application/x-ndjson"
    elif fmt == "parquet":
        body, ctype = parquet_bytes(table), "application/vnd.apache.parquet"
    elif fmt == "arrow":
        body, ctype = arrow_bytes(table), "application/vnd.apache.arrow.stream"
    else:
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        body, ctype = buf.getvalue(), "text/csv"
    r = eng.post("/models/churn/inferences", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 50 and r.json()["rejected"] == 0
    stored = live.services.logstore.read_inferences("churn").sort_by("request_id")
    assert stored.num_rows == 50
    first = {r["request_id"]: r for r in stored.to_pylist()}["r3"]
    assert first["age"] == 23.0 and first["plan"] == "pro" and first["mobile"] is True
    assert first["ts"] == T0 + timedelta(minutes=3)


def test_invalid_rows_are_quarantined_valid_rows_kept(
    live: Live, eng: httpx.Client, churn: dict
) -> None:
    data = rows(10)
    data[2]["age"] = "old"
    data[4]["score"] = 1.7
    data[6]["prediction"] = 3
    del data[8]["request_id"]
    r = eng.post("/models/churn/inferences", json=data)
    assert r.status_code == 200
    body = r.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (10, 6, 4)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (2, "age"),
        (4, "score"),
        (6, "prediction"),
        (8, "request_id"),
    ]
    assert "expected a number" in body["errors"][0]["reason"]
    q = eng.get("/models/churn/quarantine").json()
    assert sorted(x["row_index"] for x in q) == [2, 4, 6, 8]
    raw = {x["row_index"]: orjson.loads(x["raw"]) for x in q}
    assert raw[2]["age"] == "old" and raw[4]["score"] == 1.7  # exactly as sent
    assert live.services.logstore.count_inferences("churn") == 6


def test_ndjson_broken_line_is_quarantined(live: Live, eng: httpx.Client, churn: dict) -> None:
    lines = [orjson.dumps(r) for r in rows(3)]
    lines.insert(1, b'{"request_id": "broken", ')
    r = eng.post(
        "/models/churn/inferences",
        content=b"\n".join(lines),
        headers={"Content-Type": "application/x-ndjson"},
    )
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert body["errors"][0]["row"] == 1 and "invalid JSON" in body["errors"][0]["reason"]


def test_malformed_body_400_and_unknown_column_422(eng: httpx.Client, churn: dict) -> None:
    r = eng.post(
        "/models/churn/inferences", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = eng.post("/models/churn/inferences", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type" in r.json()["error"]["message"]
    r = eng.post(
        "/models/churn/inferences",
        content=b"PAR1garbage",
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 400
    r = eng.post("/models/churn/inferences", json=rows(2, colour="red"))
    assert r.status_code == 422
    assert r.json()["error"]["errors"] == [{"loc": ["body", "colour"], "msg": "unknown column"}]


def test_body_over_limit_is_413(tmp_path, metadata_url) -> None:
    settings = make_settings(tmp_path, metadata_url, max_body_bytes=4096)
    with in_process(settings) as live:
        keys = make_keys(live)
        with client(live, keys.engineer) as eng:
            eng.post("/models", json=CHURN)
            r = eng.post("/models/churn/inferences", json=rows(100))
            assert r.status_code == 413
            assert live.services.logstore.count_inferences("churn") == 0
            # chunked upload without Content-Length is cut off too
            body = orjson.dumps(rows(100))
            r = eng.post(
                "/models/churn/inferences",
                content=iter([body[:3000], body[3000:]]),
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code == 413


def test_rate_limit_answers_429_with_retry_after(tmp_path, metadata_url) -> None:
    # one token a minute after the burst: the five requests below never wait long enough
    # for a new one, however slow the machine
    settings = make_settings(tmp_path, metadata_url, rate_limit_per_minute=1, rate_limit_burst=3)
    with in_process(settings) as live:
        keys = make_keys(live)
        with client(live, keys.viewer) as viewer:
            codes = [viewer.get("/models").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            r = viewer.get("/models")
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        with client(live, keys.admin) as admin:  # another key has its own bucket
            assert admin.get("/models").status_code == 200


# ----------------------------------------------------------------------------- labels, events, references
def test_labels_before_and_after_inferences_join(
    live: Live, eng: httpx.Client, churn: dict
) -> None:
    early = eng.post("/models/churn/labels", json=[{"request_id": "r1", "label": 1}]).json()
    assert early["accepted"] == 1
    eng.post("/models/churn/inferences", json=rows(3))
    late = eng.post(
        "/models/churn/labels", json=[{"request_id": "r2", "label": 0, "ts": T0.isoformat()}]
    ).json()
    assert late["accepted"] == 1
    dup = eng.post("/models/churn/labels", json=[{"request_id": "r2", "label": 1}]).json()
    assert dup["duplicates"] == 1
    bad = eng.post("/models/churn/labels", json=[{"request_id": "r0", "label": 7}]).json()
    assert bad["rejected"] == 1 and bad["errors"][0]["field"] == "label"
    joined = {
        r["request_id"]: r["label"] for r in live.services.logstore.read_joined("churn").to_pylist()
    }
    assert joined == {"r0": None, "r1": 1, "r2": 0}


def test_events_idempotent_and_validated(live: Live, eng: httpx.Client) -> None:
    events = [
        {"tenant_id": "acme", "ts": T0.isoformat(), "name": "conversion", "value": 1.0},
        {
            "tenant_id": "acme",
            "ts": T0.isoformat(),
            "name": "revenue",
            "value": 19.5,
            "request_id": "r1",
        },
        {"event_id": "e-3", "tenant_id": "globex", "ts": T0.isoformat(), "name": "session"},
    ]
    first = eng.post("/events", json=events).json()
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    again = eng.post("/events", json=events).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    bad = eng.post("/events", json=[{"tenant_id": "acme", "name": "x", "value": "lots"}]).json()
    assert bad["rejected"] == 1 and {e["field"] for e in bad["errors"]} <= {"ts", "value"}
    assert live.services.logstore.read_events().num_rows == 3
    tenants = {t["tenant_id"] for t in eng.get("/tenants").json()}
    assert tenants == {"acme", "globex"}


def test_reference_upload_versions(live: Live, eng: httpx.Client, churn: dict) -> None:
    table = as_table(rows(40)).drop_columns(["request_id", "ts", "tenant_id", "model_version"])
    table = table.append_column("label", pa.array([i % 2 for i in range(40)], pa.int32()))
    r = eng.put(
        "/models/churn/references/training",
        content=parquet_bytes(table),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"model": "churn", "name": "training", "version": 1, "rows": 40}
    buf = io.BytesIO()
    pacsv.write_csv(table.slice(0, 10), buf)
    r = eng.put(
        "/models/churn/references/training",
        content=buf.getvalue(),
        headers={"Content-Type": "text/csv"},
    )
    assert r.json()["version"] == 2 and r.json()["rows"] == 10
    listed = eng.get("/models/churn/references").json()
    assert [(x["name"], x["version"], x["rows"]) for x in listed] == [
        ("training", 1, 40),
        ("training", 2, 10),
    ]
    latest = live.services.logstore.read_reference("churn", "training")
    assert latest.num_rows == 10


def test_health_and_ready(live: Live) -> None:
    with client(live, None) as anon:
        assert anon.get("/health").json() == {"status": "ok"}
        ready = anon.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "metadata": True,
            "logstore": True,
        }
        with live.http(base="") as site:
            assert site.get("/docs").status_code == 200


# ----------------------------------------------------------------------------- tenants
def test_scoped_key_tenant_comes_from_key(live: Live, keys: Keys, churn: dict) -> None:
    with client(live, keys.acme) as acme:
        data = rows(5)
        for r in data:
            del r["tenant_id"]
        assert acme.post("/models/churn/inferences", json=data).json()["accepted"] == 5
        mixed = rows(5, start=10) + rows(1, start=20, tenant="globex")
        r = acme.post("/models/churn/inferences", json=mixed)
        assert r.status_code == 403 and "globex" in r.json()["error"]["message"]
        assert live.services.logstore.count_inferences("churn") == 5  # nothing of that batch
        r = acme.post("/events", json=[{"tenant_id": "globex", "ts": T0.isoformat(), "name": "x"}])
        assert r.status_code == 403
    with client(live, keys.globex) as globex:
        assert globex.get("/tenants/acme").status_code == 404
        assert globex.get("/models/churn").json()["rows"] == 0
        assert globex.get("/models/churn").json()["tenants"] == []
        assert [t["tenant_id"] for t in globex.get("/tenants").json()] == ["globex"]
    with client(live, keys.acme) as acme:
        assert acme.get("/tenants/acme").status_code == 200
        assert acme.get("/models/churn").json()["rows"] == 5


def test_model_rows_and_tenants_count_each_acknowledged_request(
    live: Live, keys: Keys, churn: dict
) -> None:
    """GET /models/{model} (the dashboard's read, answered from the counts kept in memory)
    counts every row as soon as its request is answered, never a duplicate, and a scoped key
    sees only its own tenant's rows and tenant."""

    def seen(c: httpx.Client) -> tuple[int, list[str]]:
        body = c.get("/models/churn").json()
        return body["rows"], body["tenants"]

    with (
        client(live, keys.viewer) as viewer,
        client(live, keys.acme) as acme,
        client(live, keys.globex) as globex,
    ):
        assert seen(viewer) == (0, [])
        assert acme.post("/models/churn/inferences", json=rows(5)).json()["accepted"] == 5
        assert seen(viewer) == (5, ["acme"]) and seen(acme) == (5, ["acme"])
        assert seen(globex) == (0, [])
        body = [{k: v for k, v in r.items() if k != "tenant_id"} for r in rows(3, start=3)]
        assert globex.post("/models/churn/inferences", json=body).json()["accepted"] == 3
        # a retry (duplicates) and a batch with one bad row (quarantined, not counted)
        assert acme.post("/models/churn/inferences", json=rows(5)).json()["duplicates"] == 5
        bad = rows(2, start=10) + rows(1, start=12, age="old")
        assert acme.post("/models/churn/inferences", json=bad).json()["accepted"] == 2
        assert seen(viewer) == (10, ["acme", "globex"])
        assert seen(acme) == (7, ["acme"]) and seen(globex) == (3, ["globex"])
        assert viewer.get("/models/nope").status_code == 404
    assert live.services.logstore.count_inferences("churn") == 10


def test_scoped_key_sees_only_its_quarantine(live: Live, keys: Keys, churn: dict) -> None:
    with client(live, keys.engineer) as eng:
        eng.post("/models/churn/inferences", json=rows(2, tenant="globex", age="bad"))
        eng.post("/models/churn/inferences", json=rows(1, start=5, tenant="acme", age="bad"))
    with client(live, keys.acme) as acme:
        q = acme.get("/models/churn/quarantine").json()
        assert [x["tenant_id"] for x in q] == ["acme"]


def test_scoped_label_cannot_label_another_tenants_row(live: Live, keys: Keys, churn: dict) -> None:
    with client(live, keys.engineer) as eng:
        eng.post(
            "/models/churn/inferences",
            json=rows(1, tenant="acme") + rows(1, start=1, tenant="globex"),
        )
    with client(live, keys.globex) as globex:
        # globex sends a label for acme's request r0 first: stored, but it never joins acme's row
        assert (
            globex.post("/models/churn/labels", json=[{"request_id": "r0", "label": 1}]).json()[
                "accepted"
            ]
            == 1
        )
        assert (
            globex.post("/models/churn/labels", json=[{"request_id": "r1", "label": 0}]).json()[
                "accepted"
            ]
            == 1
        )
    joined = {
        r["request_id"]: r["label"] for r in live.services.logstore.read_joined("churn").to_pylist()
    }
    assert joined == {"r0": None, "r1": 0}


def test_retried_bad_rows_are_quarantined_once(live: Live, eng: httpx.Client, churn: dict) -> None:
    data = rows(3, age="x")
    for _ in range(3):
        assert eng.post("/models/churn/inferences", json=data).json()["rejected"] == 3
    assert len(eng.get("/models/churn/quarantine").json()) == 3
