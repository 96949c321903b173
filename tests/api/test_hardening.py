"""Smaller holes of issue 12 (item 8): passwords in ``driftwatch config``, security headers on
every answer, private files and data dir, failed authentications audited (bounded), the demo's
signing secret usable to verify its deliveries."""

from __future__ import annotations

import json
import stat
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from alerts.signing import new_signing_secret, sign
from monitor.api.auth import FailureAudit
from monitor.cli import app
from monitor.service import Services
from monitor.settings import Settings, mask_secrets
from tests.api.conftest import Keys, client
from tests.support import Live

SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://dw:hunter2@db/dw",
        "postgresql://:hunter2@db/dw",
        "POSTGRESQL+PSYCOPG://DW:hunter2@db/dw",
        "postgresql://dw@db/dw?password=hunter2&sslmode=require",
        "postgresql://dw@db/dw?sslmode=require&PASSWORD=hunter2",
        "postgresql://dw:hun:ter@2@db/dw".replace("hun:ter@2", "hunter2"),
    ],
)
def test_config_masks_the_database_password_in_every_url_form(url: str) -> None:
    assert "hunter2" not in mask_secrets(url)
    out = CliRunner().invoke(
        app, ["config"], env={"DRIFTWATCH_DATABASE_URL": url, "COLUMNS": "300"}
    )
    assert out.exit_code == 0 and "hunter2" not in out.output and "***" in out.output


def test_masking_keeps_urls_without_passwords() -> None:
    for url in ("postgresql://dw@db/dw", "sqlite:////tmp/x.db", "https://example.com/a?b=c"):
        assert mask_secrets(url) == url


HEADERS = {
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@SQLITE_ONLY
def test_security_headers_on_every_kind_of_answer(live: Live, keys: Keys) -> None:
    # the first dashboard answer builds the Dash app: allow for a busy machine
    with live.http(base="", timeout=120) as c:
        answers = {
            "health": c.get("/api/v1/health"),
            "401": c.get("/api/v1/models"),
            "404": c.get("/api/v1/nope"),
            "422": c.get(
                "/api/v1/audit?limit=0", headers={"Authorization": f"Bearer {keys.admin}"}
            ),
            "docs": c.get("/docs"),
            "openapi": c.get("/api/v1/openapi.json"),
            "metrics": c.get("/api/v1/metrics"),
            "login page": c.get("/login"),
            "dashboard redirect": c.get("/models/churn"),
            "asset": c.get("/assets/style.css"),
        }
    assert answers["401"].status_code == 401 and answers["422"].status_code == 422
    assert answers["dashboard redirect"].status_code in (302, 303)
    for name, r in answers.items():
        for header, value in HEADERS.items():
            assert r.headers.get(header) == value, (name, header, r.headers.get(header))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_stores_are_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", alert_worker=False, scheduler_enabled=False)
    services = Services.open(settings)
    try:
        from monitor.composition import of

        assert of(services).alerting is not None  # creates alert-secret.key
    finally:
        services.close()
    d = settings.data_dir
    assert _mode(d) == 0o700
    for name in ("metadata.sqlite", "driftwatch.duckdb", "alert-secret.key"):
        assert _mode(d / name) == 0o600, name


def test_files_an_older_version_left_readable_are_tightened(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    Services.open(settings).close()
    for name in ("metadata.sqlite", "driftwatch.duckdb"):
        (settings.data_dir / name).chmod(0o644)
    Services.open(settings).close()
    for name in ("metadata.sqlite", "driftwatch.duckdb"):
        assert _mode(settings.data_dir / name) == 0o600, name


@SQLITE_ONLY
def test_failed_authentications_are_audited_and_bounded(live: Live, keys: Keys) -> None:
    flood = 60
    now = [1000.0]  # the audit's bucket on a fixed clock: the bound is exact, whatever the load
    live.app.state.auth_failures = FailureAudit(clock=lambda: now[0])
    with live.http() as c:
        for i in range(flood):
            key = "dw_" + "x" * 43 if i % 2 else None
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            assert c.get("/models", headers=headers).status_code == 401
    now[0] += 1.2  # one token refills: the next failure is written with the count left out
    with live.http() as c:
        assert c.get("/models", headers={"X-API-Key": "dw_" + "y" * 43}).status_code == 401
    with client(live, keys.admin) as admin:
        entries = [
            e for e in admin.get("/audit?limit=10000").json() if e["action"] == "auth.failed"
        ]
    written = len(entries)
    suppressed = sum(e["detail"]["suppressed"] for e in entries)
    assert written + suppressed == flood + 1  # every failure is either written or counted
    assert written == 20 + 1  # the burst, then one after a second
    assert suppressed == flood - 20 and entries[0]["detail"]["suppressed"] == flood - 20
    last = entries[0]  # newest first
    assert last["detail"]["key_prefix"] == "y" * 8 and last["detail"]["client"] == "127.0.0.1"
    assert last["actor"] == "ip:127.0.0.1" and last["detail"]["path"] == "/api/v1/models"
    with live.http() as c:
        text = c.get("/metrics").text
    assert f"driftwatch_auth_failures_total {flood + 1}\n" in text


def test_demo_receiver_verifies_deliveries_with_the_written_secret(tmp_path: Path) -> None:
    from monitor.cli_demo import WEBHOOK_LOG, WEBHOOK_SECRET, _Receiver, write_secret

    secret = new_signing_secret()
    write_secret(tmp_path / WEBHOOK_SECRET, secret)
    assert _mode(tmp_path / WEBHOOK_SECRET) == 0o600
    handler = type(
        "R",
        (_Receiver,),
        {"log_path": tmp_path / WEBHOOK_LOG, "secret_path": tmp_path / WEBHOOK_SECRET},
    )
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    body = '{"status":"firing"}'
    from datetime import UTC, datetime

    try:
        good = sign("msg_1", body, [secret], datetime.now(UTC))
        bad = sign("msg_2", body, [new_signing_secret()], datetime.now(UTC))
        for headers in (good, bad):
            r = httpx.post(url, content=body, headers=headers)
            assert r.status_code == 204
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(x) for x in (tmp_path / WEBHOOK_LOG).read_text().splitlines()]
    assert [(e["webhook_id"], e["verified"]) for e in lines] == [("msg_1", True), ("msg_2", False)]


@SQLITE_ONLY
def test_405_lists_every_method_of_the_path_and_errors_are_documented(
    live: Live, keys: Keys
) -> None:
    with client(live, keys.admin) as admin:
        for path, allow in (
            ("/channels", "GET, POST"),
            ("/channels/hook", "DELETE, GET, PATCH"),
            ("/keys", "GET, POST"),
            ("/jobs/1", "DELETE, GET"),
        ):
            r = admin.request("OPTIONS", path)
            assert r.status_code == 405 and r.headers["allow"] == allow, (path, r.headers)
            assert r.json()["error"]["type"] == "MethodNotAllowed"
        doc = admin.get("/openapi.json").json()
    op = doc["paths"]["/api/v1/alerts/{alert_id}"]["get"]
    for code in ("401", "403", "404", "422", "429"):
        schema = op["responses"][code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}, code
    assert op["parameters"][0]["schema"]["maximum"] == 2**63 - 1
    kpi_body = doc["paths"]["/api/v1/kpis"]["post"]["requestBody"]["content"]["application/json"]
    assert kpi_body["schema"]["type"] == "object"
    at = next(
        p for p in doc["paths"]["/api/v1/kpis/summary"]["get"]["parameters"] if p["name"] == "at"
    )
    assert "date-time" in str(at["schema"])
    assert "HTTPValidationError" not in doc["components"]["schemas"]
