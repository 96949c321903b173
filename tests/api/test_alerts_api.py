"""Alerting through the API (in process, the delivery worker on): dead letters listed and retried, acknowledge, silences,
channels without secrets, rules and backtest, /metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import cli_common
from monitor.composition import of
from tests.alerts.helpers import result
from tests.alerts.receiver import receiver
from tests.api.conftest import Keys, client, make_keys, make_settings
from tests.support import PATIENCE_S, Live, in_process


@pytest.fixture
def live(tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    settings = make_settings(
        tmp_path,
        metadata_url,
        alert_allowed_hosts="127.0.0.1",
        alert_retry_scale=0.00001,  # the ~3-day schedule in ~3 s
        external_url="https://dw.example",
    )
    # in process with the delivery worker (webhooks go to a real receiver on 127.0.0.1)
    with in_process(settings, worker=True) as app:
        monkeypatch.setattr(cli_common, "TRANSPORT", app.transport)  # `--url` reaches the app
        yield app


@pytest.fixture
def keys(live: Live) -> Keys:
    return make_keys(live)


# API behaviour that does not depend on the database: SQLite only (keeps the suite short).
SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)


def wait_until(cond, timeout: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def rule(name: str = "drift", **more: object) -> dict:
    return {
        "name": name,
        "match": {"kind": "feature_drift"},
        "channels": ["hook"],
        "group_wait": "0s",
        **more,
    }


def test_dead_letters_are_listed_and_a_manual_retry_sends(live: Live, keys: Keys) -> None:
    up = {"on": False}
    with (
        receiver(lambda n, wid: (200, {}) if up["on"] else (503, {})) as rx,
        client(live, keys.admin) as admin,
    ):
        r = admin.post("/channels", json={"name": "hook", "kind": "webhook", "url": rx.url + "/in"})
        assert r.status_code == 201, r.text
        rx.secrets.append(r.json()["signing_secret"])
        assert admin.post("/rules", json=rule()).status_code == 201
        of(live.services).alerting.process([result(0, tenant="acme"), result(0, tenant="globex")])
        wait_until(lambda: len(admin.get("/dead-letters").json()) == 2)
        dead = admin.get("/dead-letters").json()
        assert all(d["attempts"] >= 2 and d["attempts"] == len(d["history"]) for d in dead)
        assert all(
            d["history"][-1]["outcome"] == "dead" and d["last_status_code"] == 503 for d in dead
        )
        up["on"] = True
        for d in dead:
            r = admin.post(f"/deliveries/{d['id']}/retry")
            assert r.status_code == 200 and r.json()["status"] == "pending"
        wait_until(lambda: len(rx.delivered()) == 2)
        assert {h.webhook_id for h in rx.delivered()} == {d["webhook_id"] for d in dead}
        assert all(h.verified for h in rx.hits)
        assert admin.get("/dead-letters").json() == []
        d = admin.get(f"/deliveries/{dead[0]['id']}").json()
        assert d["status"] == "delivered" and d["history"][-1]["status_code"] == 200
        assert admin.post(f"/deliveries/{dead[0]['id']}/retry").status_code == 409


def test_alert_listing_ack_and_tenant_scope(live: Live, keys: Keys) -> None:
    with client(live, keys.admin) as admin:
        admin.post("/rules", json=rule(channels=[]))
        of(live.services).alerting.process([result(0, tenant="acme"), result(0, tenant="globex")])
        alerts = admin.get("/alerts", params={"state": "firing"}).json()
        assert len(alerts) == 2 and alerts[0]["link"].startswith("https://dw.example/alerts/")
        acme_id = next(a["id"] for a in alerts if a["tenant_id"] == "acme")
    with client(live, keys.acme) as acme:
        mine = acme.get("/alerts").json()
        assert [a["tenant_id"] for a in mine] == ["acme"]
        globex_id = next(a["id"] for a in alerts if a["tenant_id"] == "globex")
        assert acme.get(f"/alerts/{globex_id}").status_code == 404
        assert acme.post(f"/alerts/{globex_id}/ack").status_code == 404
        r = acme.post(f"/alerts/{acme_id}/ack")
        assert r.status_code == 200 and r.json()["acknowledged_by"].startswith("key:")
        assert r.json()["acknowledged_at"] is not None


@SQLITE_ONLY
def test_silence_lists_what_it_mutes_and_expires(live: Live, keys: Keys) -> None:
    with client(live, keys.engineer) as eng:
        eng.post("/rules", json=rule(channels=[]))
        of(live.services).alerting.process([result(0, tenant="acme", column=c) for c in ("a", "b")])
        ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        r = eng.post(
            "/silences",
            json={
                "matchers": [{"name": "tenant", "value": "acme"}],
                "reason": "deploy",
                "ends_at": ends,
            },
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        (s,) = eng.get("/silences").json()
        assert s["created_by"].startswith("key:") and s["reason"] == "deploy"
        assert len(s["muting"]) == 2
        one = eng.get(f"/alerts/{s['muting'][0]['id']}").json()
        assert one["muted_by"] == f"silence:{sid}"
        assert eng.delete(f"/silences/{sid}").status_code == 200
        assert eng.get("/silences").json() == []
        assert len(eng.get("/silences", params={"expired": True}).json()) == 1
        bad = eng.post(
            "/silences",
            json={
                "matchers": [{"name": "x", "value": "(", "op": "=~"}],
                "reason": "r",
                "ends_at": ends,
            },
        )
        assert bad.status_code == 422 and "regex" in bad.text


@SQLITE_ONLY
def test_channels_never_return_secrets_and_refuse_unsafe_urls(live: Live, keys: Keys) -> None:
    with client(live, keys.admin) as admin:
        r = admin.post(
            "/channels",
            json={
                "name": "slack",
                "kind": "slack",
                "url": "http://127.0.0.1:9/services/T000/B000/XXXXSECRET",
            },
        )
        assert r.status_code == 201 and "signing_secret" not in r.json()
        assert "XXXXSECRET" not in r.text
        r = admin.post(
            "/channels",
            json={
                "name": "pd",
                "kind": "pagerduty",
                "url": "http://127.0.0.1:9/v2/enqueue",
                "routing_key": "ROUTINGKEY123",
            },
        )
        assert r.status_code == 201 and "ROUTINGKEY123" not in r.text
        listing = admin.get("/channels").text
        assert "XXXXSECRET" not in listing and "ROUTINGKEY123" not in listing
        for url in ("http://10.0.0.1/x", "https://169.254.169.254/latest", "http://example.com/x"):
            r = admin.post("/channels", json={"name": "bad", "kind": "webhook", "url": url})
            assert r.status_code == 422, url
        assert (
            admin.patch("/channels/slack", json={"url": "http://192.168.0.1/x"}).status_code == 422
        )
        assert admin.patch("/channels/slack", json={"enabled": False}).json()["enabled"] is False
        r = admin.post("/channels/pd/rotate-secret")
        assert r.status_code == 200 and r.json()["signing_secret"].startswith("whsec_")
        assert admin.delete("/channels/slack").status_code == 200
        assert admin.get("/channels/slack").status_code == 404


@SQLITE_ONLY
def test_channel_test_sends_a_sample(live: Live, keys: Keys) -> None:
    with receiver() as rx, client(live, keys.admin) as admin:
        r = admin.post("/channels", json={"name": "hook", "kind": "webhook", "url": rx.url})
        rx.secrets.append(r.json()["signing_secret"])
        (d,) = admin.post("/channels/hook/test").json()
        wait_until(lambda: len(rx.hits) == 1)
        assert rx.hits[0].verified and rx.hits[0].webhook_id == d["webhook_id"]
        assert rx.hits[0].body["version"] == "4"
        wait_until(lambda: admin.get(f"/deliveries/{d['id']}").json()["status"] == "delivered")


@SQLITE_ONLY
def test_rules_crud_validation_and_backtest(live: Live, keys: Keys) -> None:
    with client(live, keys.engineer) as eng:
        r = eng.post("/rules", json={"name": "r1", "severity": "page"})
        assert r.status_code == 422 and "severity" in r.text
        assert eng.post("/rules", json=rule("r1", **{"for": 2})).status_code == 201
        assert eng.get("/rules/r1").json()["spec"]["for"] == 2
        assert eng.put("/rules/r1", json=rule("r1", **{"for": 3})).json()["version"] == 2
        start = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
        end = datetime(2026, 1, 2, tzinfo=UTC).isoformat()
        r = eng.post("/rules/r1/backtest", json={"from": start, "to": end})
        assert r.status_code == 200, r.text
        assert r.json()["rule"] == "r1" and r.json()["fired"] == 0
        assert eng.post("/rules/nope/backtest", json={"from": start, "to": end}).status_code == 404
        assert eng.delete("/rules/r1").status_code == 200
        assert eng.get("/rules").json() == []


@SQLITE_ONLY
def test_metrics_endpoint(live: Live, keys: Keys) -> None:
    with client(live, keys.admin) as admin:
        admin.post("/rules", json=rule(channels=[]))
        of(live.services).alerting.process([result(0)])
    with live.http() as anon:
        text = anon.get("/metrics").text
    assert 'driftwatch_alerts{state="firing"} 1' in text
    assert "driftwatch_outbox_depth 0" in text
    assert 'driftwatch_deliveries{status="dead"} 0' in text
    assert "driftwatch_ingested_rows_total" in text and "driftwatch_rejected_rows_total" in text
    assert "# TYPE driftwatch_monitor_runs_total counter" in text


@SQLITE_ONLY
def test_cli_through_the_api(live: Live, keys: Keys, tmp_path: Path) -> None:
    import json as _json

    import yaml
    from typer.testing import CliRunner

    from monitor.cli import app

    runner = CliRunner()
    remote = ["--url", live.url, "--api-key", keys.admin]

    def cli(*args: str) -> str:
        r = runner.invoke(app, [*args, *remote])
        assert r.exit_code == 0, r.output
        return r.output

    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump({"rules": [rule(channels=[])]}))
    assert "create rule drift" in cli("rules", "apply", "-f", str(f))
    assert "unchanged rule drift" in cli("rules", "apply", "-f", str(f))
    of(live.services).alerting.process([result(0)])
    (a,) = _json.loads(cli("alerts", "list", "--json"))
    assert "acknowledged by key:" in cli("alerts", "ack", str(a["id"]))
    out = cli("alerts", "silence", "-m", "tenant=acme", "--reason", "deploy", "--for", "30m")
    sid = out.split()[1]
    assert _json.loads(cli("alerts", "silences", "--json"))[0]["muting"] == 1
    assert "expired" in cli("alerts", "expire", sid)
    r = runner.invoke(app, ["alerts", "ack", "999", *remote])
    assert r.exit_code == 1 and "404" in r.output


@SQLITE_ONLY
def test_alerts_say_since_when_what_mutes_them_and_their_twins(live: Live, keys: Keys) -> None:
    from tests.alerts.helpers import T0

    with client(live, keys.admin) as admin:
        assert admin.post("/rules", json=rule(channels=[])).status_code == 201
        of(live.services).alerting.process(
            [result(h, tenant=t) for h in range(3) for t in ("*", "globex")], notify=False
        )
        rows = {a["tenant_id"]: a for a in admin.get("/alerts").json()}
        star, globex = rows["*"], rows["globex"]
        # since: the first breaching window, whenever the backfill ran
        assert star["since"] == globex["since"] == T0.isoformat() == globex["starts_at"]
        assert globex["fired_at"] is not None and globex["fired_at"] > globex["since"]
        # the all-tenants alert is its twin's, and muted by it (one problem, one message)
        assert globex["all_tenants_alert"] == {"id": star["id"], "state": "firing"}
        assert star["tenant_alerts"] == [
            {"id": globex["id"], "tenant": "globex", "state": "firing"}
        ]
        assert star["inhibited_by"] == [
            {
                "id": globex["id"],
                "rule": "drift",
                "fingerprint": globex["fingerprint"],
                "severity": "warning",
            }
        ]
        assert globex["inhibited_by"] == [] and globex["silenced_by"] == []
        r = admin.post(
            "/silences",
            json={
                "matchers": [{"name": "tenant", "value": "globex"}],
                "reason": "deploy",
                "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        one = admin.get(f"/alerts/{globex['id']}").json()
        assert [s["reason"] for s in one["silenced_by"]] == ["deploy"]
        assert one["muted_by"].startswith("silence:")
