"""Out-of-range ids, offsets, limits, times and ranges are 4xx answers naming the parameter,
never 500s (the probe of issue 12 found 500s on integers above 2**63-1, ``/audit?limit=0``,
a silence that already ended, ``DELETE /keys/%C2%B2`` and dates near year 1 or 9999)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from monitor.api import create_app
from monitor.service import Services
from tests.api.conftest import CHURN, Keys, client, make_settings
from tests.support import Live

BIG = str(2**63)
EARLY = "0001-01-01T00:00:00Z"
LATE = "9999-12-31T23:59:59Z"

# (method, path, json body or None) -> expected status
CASES: list[tuple[str, str, dict | None, int]] = [
    ("GET", f"/alerts/{BIG}", None, 422),
    ("POST", f"/alerts/{BIG}/ack", None, 422),
    ("GET", "/alerts/0", None, 422),
    ("DELETE", f"/silences/{BIG}", None, 422),
    ("GET", f"/deliveries/{BIG}", None, 422),
    ("POST", f"/deliveries/{BIG}/retry", None, 422),
    ("GET", f"/alerts?offset={BIG}", None, 422),
    ("GET", f"/runs?offset={BIG}", None, 422),
    ("GET", f"/results?offset={BIG}", None, 422),
    ("GET", f"/deliveries?notification_id={BIG}", None, 422),
    ("GET", "/audit?limit=0", None, 422),
    ("GET", "/audit?limit=-1", None, 422),
    ("GET", f"/audit?limit={BIG}", None, 422),
    ("DELETE", "/keys/%C2%B2", None, 404),
    ("DELETE", f"/keys/{BIG}", None, 404),
    ("GET", f"/results?start={EARLY}", None, 422),
    ("GET", f"/results?end={LATE}", None, 422),
    ("GET", f"/runs?start={EARLY}", None, 422),
    ("GET", "/results?start=12345", None, 422),  # a number is not a time
    ("GET", f"/kpis/summary?at={EARLY}", None, 422),
    ("GET", f"/kpis/summary?at={LATE}", None, 422),
    ("GET", "/tenants/acme/kpis/summary?at=0001-01-01T00:00:00", None, 422),
    ("GET", f"/tenants/acme/models/churn/related-kpis?since={LATE}", None, 422),
    ("POST", "/monitors/base/run", {"window_start": EARLY}, 422),
    ("POST", "/monitors/base/run", {"window_start": 1767225600}, 422),
    ("POST", "/monitors/base/backfill", {"start": EARLY, "end": "0001-01-02T00:00:00Z"}, 422),
    ("POST", "/monitors/base/backfill", {"start": "9999-12-30T00:00:00Z", "end": LATE}, 422),
    # ranges: reversed, and longer than the limits (max_range_days, max_backfill_days)
    ("POST", "/monitors/base/backfill", {"start": "2026-01-02", "end": "2026-01-01"}, 422),
    ("POST", "/monitors/base/backfill", {"start": "1970-01-01", "end": "2199-01-01"}, 422),
    ("POST", "/kpis/conversion/compute?start=1971-01-01&end=2100-01-01", None, 422),
    ("GET", "/results?start=2000-01-01&end=2026-01-01", None, 422),
    ("GET", "/kpis/conversion/results?start=2000-01-01&end=2026-01-01", None, 422),
    ("POST", "/rules/r1/backtest", {"from": "2000-01-01T00:00:00Z", "to": LATE}, 422),
    (
        "POST",
        "/rules/r1/backtest",
        {"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00Z"},
        422,
    ),
    # silences that already ended, keys already expired or scoped to no tenant
    (
        "POST",
        "/silences",
        {"matchers": [{"name": "a", "value": "b"}], "reason": "x", "ends_at": "2000-01-01T00:00Z"},
        422,
    ),
    (
        "POST",
        "/silences",
        {"matchers": [{"name": "a", "value": "b"}], "reason": "x", "ends_at": LATE},
        422,
    ),
    ("POST", "/keys", {"name": "k", "role": "viewer", "expires_at": "2000-01-01T00:00:00Z"}, 422),
    ("POST", "/keys", {"name": "k", "role": "viewer", "expires_at": EARLY}, 422),
    ("POST", "/keys", {"name": "k", "role": "viewer", "tenant_id": "nope"}, 422),
]


@pytest.fixture
def seeded(live: Live, keys: Keys) -> Live:
    with client(live, keys.admin) as admin:
        assert admin.post("/models", json=CHURN).status_code == 201
        admin.post("/monitors", json={"name": "base", "model": "churn", "kind": "performance"})
        admin.post("/kpis", json={"name": "conversion", "formula": "rate(conversion, session)"})
        admin.post("/rules", json={"name": "r1", "match": {"kind": "feature_drift"}})
    return live


@pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
def test_bad_parameters_are_4xx_naming_the_parameter(seeded: Live, keys: Keys) -> None:
    failures = []
    with client(seeded, keys.admin) as admin:  # one kept-alive connection for every case
        for method, path, body, expected in CASES:
            r = admin.request(method, path, json=body)
            if r.status_code != expected:
                failures.append((method, path, body, r.status_code, r.text[:200]))
            elif expected == 422:
                message = r.json()["error"]["message"]
                assert message, (method, path)
    assert failures == []


@pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
def test_valid_values_still_pass(seeded: Live, keys: Keys) -> None:
    with client(seeded, keys.admin) as admin:
        assert admin.get("/results?start=2026-01-01&end=2026-02-01").status_code == 200
        assert admin.get("/audit?limit=10000").status_code == 200
        r = admin.post("/tenants", json={"tenant_id": "newco"})
        assert r.status_code == 201 and r.json()["tenant_id"] == "newco"
        assert admin.post("/tenants", json={"tenant_id": "newco"}).status_code == 200
        r = admin.post(
            "/keys",
            json={
                "name": "k",
                "role": "viewer",
                "tenant_id": "newco",
                "expires_at": "2199-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 201, r.text
        r = admin.post(
            "/silences",
            json={
                "matchers": [{"name": "a", "value": "b"}],
                "reason": "x",
                "ends_at": "2199-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 201, r.text


def test_an_unexpected_error_is_a_json_500_and_the_connection_stays_usable(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, scheduler_enabled=False, alert_worker=False)
    services = Services.open(settings)
    app = create_app(settings, services)

    def boom() -> None:
        raise RuntimeError("a bug with a secret detail")

    app.add_api_route("/api/v1/boom", boom)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}/api/v1") as c:
            r = c.get("/boom")
            assert r.status_code == 500
            assert r.json() == {
                "error": {"type": "InternalError", "message": "internal server error"}
            }
            assert "secret detail" not in r.text
            assert c.get("/health").status_code == 200  # same connection, no reset
    finally:
        server.should_exit = True
        thread.join(15)
        services.close()


def test_cli_refuses_dates_out_of_bounds_and_long_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.delenv("DRIFTWATCH_URL", raising=False)
    data_dir = str(tmp_path / "data")
    runner = CliRunner()
    for args in (
        ["backfill", "--from", "0001-01-01", "--to", "0001-01-02"],
        ["backfill", "--from", "2026-01-02", "--to", "2026-01-01"],
        ["backfill", "--from", "1990-01-01", "--to", "2100-01-01"],
        ["kpis", "compute", "--from", "1990-01-01", "--to", "2100-01-01"],
        ["kpis", "compute", "--from", "2026-01-01", "--to", "9999-12-31"],
    ):
        r = runner.invoke(app, [*args, "--data-dir", data_dir])
        assert r.exit_code == 2, (args, r.output)
        text = " ".join(r.output.replace("│", " ").split())
        assert "supported range" in text or "after" in text or "limit is" in text, text
