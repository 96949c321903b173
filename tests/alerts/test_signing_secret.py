"""Malformed channel signing secrets are refused where they enter (engine, API, CLI), and the
delivery worker survives one that is already stored: that delivery is dead-lettered with the
reason, nothing stays ``sending``, the loop turn does not fail, and the other deliveries of the
same batch are recorded once (never re-sent). A real receiver on 127.0.0.1 verifies every
signature with the ``standardwebhooks`` library."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from alerts.delivery import DeliveryWorker, HttpxSender, Response, RetryPolicy
from alerts.signing import SigningSecretError, check_signing_secret, new_signing_secret
from alerts.ssrf import Allowlist, Target
from monitor.cli import app
from storage.metadata import MetadataStore
from storage.metadata.alerting import AlertStore
from tests.alerts.helpers import result
from tests.alerts.receiver import receiver
from tests.api.conftest import make_keys, make_settings
from tests.support import live_server

LOCAL = Allowlist.parse(["127.0.0.1"])
FAST = RetryPolicy(scale=0.001, jitter=0.0)
SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)


def b64(n: int) -> str:
    return base64.b64encode(bytes(range(n))).decode()


BAD_SECRETS = {
    "no prefix": "x",
    "empty": "",
    "prefix only": "whsec_",
    "not base64": "whsec_!!!not*base64!!!",
    "3 bytes": "whsec_" + b64(3),
    "23 bytes": "whsec_" + b64(23),
    "65 bytes": "whsec_" + b64(65),
    "no whsec_": b64(32),
    "4 bytes, unpadded": "whsec_" + b64(4).rstrip("="),
}


@pytest.mark.parametrize("secret", BAD_SECRETS.values(), ids=BAD_SECRETS.keys())
def test_malformed_secrets_are_refused_naming_the_field(secret: str) -> None:
    with pytest.raises(SigningSecretError, match="signing_secret"):
        check_signing_secret(secret)


def test_valid_secrets_pass() -> None:
    unpadded = "whsec_" + b64(32).rstrip("=")  # the standardwebhooks library pads it
    for s in (new_signing_secret(), "whsec_" + b64(24), "whsec_" + b64(64), unpadded):
        assert check_signing_secret(s) == s


@pytest.fixture
def store(metadata_url: str):
    from alerts.engine import AlertEngine

    meta = MetadataStore(metadata_url)
    meta.upgrade()
    s = AlertStore(meta, "k")
    yield AlertEngine(s, base_url="https://dw.example", allowlist=LOCAL), s
    meta.dispose()


@SQLITE_ONLY
def test_engine_refuses_a_malformed_secret_and_stores_nothing(store) -> None:
    engine, s = store
    for secret in BAD_SECRETS.values():
        with pytest.raises(SigningSecretError, match="signing_secret"):
            engine.create_channel("hook", "webhook", "http://127.0.0.1:9/x", signing_secret=secret)
    assert s.list_channels() == []
    good = "whsec_" + b64(32)
    _, shown = engine.create_channel("hook", "webhook", "http://127.0.0.1:9/x", signing_secret=good)
    assert shown == good


@SQLITE_ONLY
def test_api_answers_422_naming_signing_secret(tmp_path: Path, metadata_url: str) -> None:
    settings = make_settings(tmp_path, metadata_url, alert_allowed_hosts="127.0.0.1")
    with live_server(settings) as live:
        admin = make_keys(live).admin
        with httpx.Client(
            base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {admin}"}
        ) as c:
            for name, secret in BAD_SECRETS.items():
                r = c.post(
                    "/channels",
                    json={
                        "name": "hook",
                        "kind": "webhook",
                        "url": "http://127.0.0.1:9/x",
                        "signing_secret": secret,
                    },
                )
                assert r.status_code == 422, (name, r.text)
                err = r.json()["error"]
                assert "signing_secret" in err["message"], (name, err)
                assert secret not in err["message"] or not secret, "the secret is not echoed"
            assert c.get("/channels/hook").status_code == 404
            good = "whsec_" + b64(32)
            r = c.post(
                "/channels",
                json={
                    "name": "hook",
                    "kind": "webhook",
                    "url": "http://127.0.0.1:9/x",
                    "signing_secret": good,
                },
            )
            assert r.status_code == 201 and r.json()["signing_secret"] == good


def test_cli_refuses_a_malformed_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWATCH_ALERT_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.delenv("DRIFTWATCH_URL", raising=False)
    data_dir = tmp_path / "data"
    base = ["channels", "create", "hook", "--kind", "webhook", "--target", "http://127.0.0.1:9/x"]
    r = CliRunner().invoke(
        app, [*base, "--signing-secret", "whsec_abc", "--data-dir", str(data_dir)]
    )
    assert r.exit_code == 2, r.output
    assert "signing-secret" in r.output and "2 bytes" in " ".join(r.output.split())
    good = "whsec_" + b64(32)
    r = CliRunner().invoke(app, [*base, "--signing-secret", good, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    assert good in r.output


def _route_to(engine, channels: list[str], groups: int) -> None:
    engine.put_rule(
        {
            "name": "drift",
            "match": {"kind": "feature_drift"},
            "channels": channels,
            "group_wait": "0s",
        }
    )
    engine.process([result(0, tenant=f"t{i}") for i in range(groups)])


@pytest.mark.parametrize("bad", ["x", "", "whsec_", "whsec_" + b64(3)])
def test_a_stored_bad_secret_dead_letters_its_delivery_and_the_batch_is_recorded(
    store, bad: str
) -> None:
    engine, s = store
    with receiver() as rx:
        _, good = engine.create_channel("good", "webhook", rx.url + "/good")
        rx.secrets.append(good)
        # stored before secrets were checked on the way in (bypasses the engine's check)
        s.create_channel("bad", "webhook", rx.url + "/bad", [bad], None, None, "old")
        _route_to(engine, ["good", "bad"], groups=3)
        w = DeliveryWorker(store=s, allowlist=LOCAL, policy=FAST, concurrency=2)
        try:
            assert w.run_once() == 6  # the turn does not raise
            assert w.run_once() == 0  # and nothing is left to send again
        finally:
            w.stop()
    deliveries = s.list_deliveries(with_attempts=True)
    by_channel = Counter((d.channel_name, d.status) for d in deliveries)
    assert by_channel == {("good", "delivered"): 3, ("bad", "dead"): 3}
    for d in deliveries:
        assert d.status != "sending"
        if d.channel_name == "bad":
            assert "signing_secret" in (d.last_error or ""), d.last_error
            assert d.history[-1].outcome == "failed"
    # the good channel's notifications arrived once each, verified; the bad one sent nothing
    assert all(h.path == "/good" for h in rx.hits)
    assert Counter(h.webhook_id for h in rx.hits) == Counter(
        {d.webhook_id: 1 for d in deliveries if d.channel_name == "good"}
    )
    assert all(h.verified for h in rx.hits)


class _Flaky:
    """A sender whose post raises (a bug, not a network error) for one path."""

    def __init__(self, inner: HttpxSender) -> None:
        self.inner = inner

    def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> Response:
        if target.connect_url.endswith("/boom"):
            raise RuntimeError("sender bug")
        return self.inner.post(target, body, headers)

    def close(self) -> None:
        self.inner.close()


@SQLITE_ONLY
def test_an_exception_while_sending_is_retried_and_the_rest_recorded(store) -> None:
    engine, s = store
    with receiver() as rx:
        _, good = engine.create_channel("good", "webhook", rx.url + "/good")
        engine.create_channel("boom", "webhook", rx.url + "/boom")
        rx.secrets.append(good)
        _route_to(engine, ["good", "boom"], groups=2)
        w = DeliveryWorker(
            s,
            allowlist=LOCAL,
            policy=RetryPolicy(scale=100, jitter=0),
            sender=_Flaky(HttpxSender()),
        )
        try:
            assert w.run_once() == 4
        finally:
            w.stop()
    deliveries = s.list_deliveries(with_attempts=True)
    assert Counter((d.channel_name, d.status) for d in deliveries) == {
        ("good", "delivered"): 2,
        ("boom", "pending"): 2,
    }
    for d in deliveries:
        if d.channel_name == "boom":
            assert d.history[-1].outcome == "retry"
            assert "RuntimeError: sender bug" in (d.last_error or "")
    assert len(rx.hits) == 2 and all(h.verified for h in rx.hits)


@SQLITE_ONLY
def test_undecryptable_channel_secrets_dead_letter_instead_of_failing_every_turn(
    store, metadata_url: str
) -> None:
    engine, s = store
    with receiver() as rx:
        engine.create_channel("hook", "webhook", rx.url)
        _route_to(engine, ["hook"], groups=2)
        other_key = AlertStore(s._m, "another-key")  # the secret key changed since
        w = DeliveryWorker(other_key, allowlist=LOCAL, policy=FAST)
        try:
            assert w.run_once() == 0
        finally:
            w.stop()
        assert rx.hits == []
    deliveries = s.list_deliveries()
    assert [d.status for d in deliveries] == ["dead", "dead"]
    assert all("secret key changed" in (d.last_error or "") for d in deliveries)
