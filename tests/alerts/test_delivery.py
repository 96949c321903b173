"""Delivery against a real receiver that verifies signatures: retries with one webhook-id per
notification, 429 + Retry-After, 410, 4xx, redirects, dead letters and manual retry, SSRF."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from alerts.delivery import DeliveryWorker, Response, RetryPolicy, decide, sign
from alerts.ssrf import Allowlist
from storage.metadata import MetadataStore
from storage.metadata.alerting import AlertStore
from storage.types import OutboxItem
from tests.alerts.helpers import result
from tests.alerts.receiver import receiver
from tests.support import PATIENCE_S

LOCAL = Allowlist.parse(["127.0.0.1"])
FAST = RetryPolicy(scale=0.001, jitter=0.0)  # 5 s → 5 ms, 3 days → ~4 min
# Worker behaviour that does not depend on the database: SQLite only (keeps the suite short).
SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)


@pytest.fixture
def real(metadata_url: str):
    """Engine + store on the real clock (deliveries wait for real, scaled-down delays)."""
    from alerts.engine import AlertEngine

    meta = MetadataStore(metadata_url)
    meta.upgrade()
    store = AlertStore(meta, "k")
    engine = AlertEngine(store, base_url="https://dw.example", allowlist=LOCAL)
    yield engine, store
    meta.dispose()


def wait_until(cond, timeout: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def fire_groups(engine, n: int) -> None:
    """n groups (one tenant each), each notified at once (group_wait 0)."""
    engine.put_rule(
        {
            "name": "drift",
            "match": {"kind": "feature_drift"},
            "channels": ["hook"],
            "group_wait": "0s",
        }
    )
    engine.process([result(0, tenant=f"t{i}") for i in range(n)])


def test_retries_and_429_then_every_notification_arrives_once_verified(real) -> None:
    engine, store = real
    failures: Counter[str] = Counter()

    def script(n: int, wid: str) -> tuple[int, dict[str, str]]:
        failures[wid] += 1
        k = failures[wid]
        if k <= 2:
            return 500, {}
        if k == 3:
            return 429, {"Retry-After": "1"}
        return 200, {}

    with receiver(script) as rx:
        _, secret = engine.create_channel("hook", "webhook", rx.url + "/hook")
        rx.secrets.append(secret)
        fire_groups(engine, 5)
        t0 = time.monotonic()
        with DeliveryWorker(
            store, allowlist=LOCAL, policy=FAST, concurrency=4, poll_seconds=0.05
        ) as w:
            w.wake()
            wait_until(lambda: len(rx.delivered()) == 5)
        elapsed = time.monotonic() - t0
    assert all(h.verified for h in rx.hits), "every attempt carries a valid signature"
    ids = [h.webhook_id for h in rx.delivered()]
    assert len(set(ids)) == 5  # exactly one distinct webhook-id per notification
    per_id = Counter(h.webhook_id for h in rx.hits)
    assert set(per_id.values()) == {4}  # 2 × 500, 1 × 429, 1 × 200, all with the same id
    assert elapsed >= 1.0  # Retry-After: 1 was honoured
    for d in store.list_deliveries(with_attempts=True):
        assert d.status == "delivered" and d.attempts == 4
        assert [a.status_code for a in d.history] == [500, 500, 429, 200]
        assert [a.outcome for a in d.history] == ["retry", "retry", "retry", "delivered"]


@SQLITE_ONLY
def test_rotation_signs_with_both_secrets(real) -> None:
    engine, store = real
    with receiver() as rx:
        _, old = engine.create_channel("hook", "webhook", rx.url)
        _, new = engine.rotate_secret("hook")
        rx.secrets.append(old)  # a receiver not yet updated still verifies
        fire_groups(engine, 1)
        with DeliveryWorker(store, allowlist=LOCAL, policy=FAST) as w:
            w.wake()
            wait_until(lambda: len(rx.hits) == 1)
        assert rx.hits[0].verified
        assert len(rx.hits[0].headers["webhook-signature"].split(" ")) == 2
        rx.secrets[:] = [new]
        rx.hits.clear()
        engine.test_channel("hook")
        with DeliveryWorker(store, allowlist=LOCAL, policy=FAST) as w:
            w.wake()
            wait_until(lambda: len(rx.hits) == 1)
        assert rx.hits[0].verified


def test_receiver_down_past_give_up_dead_letters_then_manual_retry(real) -> None:
    engine, store = real
    down = {"on": True}
    with receiver(lambda n, wid: (503, {}) if down["on"] else (200, {})) as rx:
        _, secret = engine.create_channel("hook", "webhook", rx.url)
        rx.secrets.append(secret)
        fire_groups(engine, 2)
        policy = RetryPolicy(schedule=(0, 0.01, 0.02, 0.05), give_up_after=60, scale=1.0, jitter=0)
        with DeliveryWorker(store, allowlist=LOCAL, policy=policy, poll_seconds=0.02) as w:
            w.wake()
            wait_until(lambda: len(store.list_deliveries(status="dead")) == 2)
            dead = store.list_deliveries(status="dead", with_attempts=True)
            assert all(d.attempts == 4 and d.history[-1].outcome == "dead" for d in dead)
            down["on"] = False
            for d in dead:
                store.retry_delivery(d.id, "ops")
            w.wake()
            wait_until(lambda: len(rx.delivered()) == 2)
        assert {h.webhook_id for h in rx.delivered()} == {d.webhook_id for d in dead}
        assert all(h.verified for h in rx.hits)


@SQLITE_ONLY
@pytest.mark.parametrize(
    "code, status, outcome",
    [
        (404, "dead", "failed"),
        (400, "dead", "failed"),
        (410, "dead", "disabled"),
        (302, "pending", "retry"),
    ],
)
def test_status_codes(real, code: int, status: str, outcome: str) -> None:
    engine, store = real
    with receiver(lambda n, wid: (code, {"Location": "http://169.254.169.254/"})) as rx:
        engine.create_channel("hook", "webhook", rx.url)
        fire_groups(engine, 1)
        w = DeliveryWorker(store, allowlist=LOCAL, policy=RetryPolicy(scale=100))
        try:
            assert w.run_once() == 1
        finally:
            w.stop()
        assert len(rx.hits) == 1  # a redirect is not followed
    (d,) = store.list_deliveries(with_attempts=True)
    assert d.status == status and d.history[0].outcome == outcome
    channel = store.get_channel("hook")
    assert channel.enabled is (code != 410)


def test_408_and_timeouts_are_retried() -> None:
    rng = random.Random(0)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy(jitter=0)
    for resp in (Response(408), Response(None, error="timeout"), Response(500)):
        out = decide(resp, 1, now, now, policy, rng)
        assert out.status == "pending" and (out.next_attempt_at - now).total_seconds() == 5
    out = decide(Response(429, {"retry-after": "120"}), 1, now, now, policy, rng)
    assert (out.next_attempt_at - now).total_seconds() == 120
    # the last scheduled attempt failing gives up
    assert decide(Response(500), len(policy.schedule), now, now, policy, rng).status == "dead"


def test_default_schedule_spans_about_three_days() -> None:
    total = sum(RetryPolicy().schedule)
    assert 2.5 * 86400 < total < 3.5 * 86400
    assert RetryPolicy().schedule[:5] == (0, 5, 300, 1800, 7200)


def test_signature_matches_the_standard_webhooks_reference() -> None:
    from standardwebhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime.now(UTC)
    headers = sign("msg_1", '{"a":1}', [secret], at)
    assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}


@SQLITE_ONLY
def test_unsafe_url_at_send_time_is_dead_lettered(real) -> None:
    engine, store = real
    with receiver() as rx:
        engine.create_channel("hook", "webhook", rx.url)
        fire_groups(engine, 1)
        # the allowlist changed since the channel was saved: the send-time check refuses it
        w = DeliveryWorker(store, allowlist=Allowlist(), policy=FAST)
        try:
            w.run_once()
        finally:
            w.stop()
        assert rx.hits == []
    (d,) = store.list_deliveries()
    assert d.status == "dead" and "allowlist" in (d.last_error or "")


@SQLITE_ONLY
def test_test_channel_and_outbox_item_roundtrip(real) -> None:
    engine, store = real
    with receiver() as rx:
        rec, secret = engine.create_channel("hook", "webhook", rx.url)
        rx.secrets.append(secret)
        store.enqueue([OutboxItem(rec.id, "custom", '{"x":1}')])
        w = DeliveryWorker(store, allowlist=LOCAL, policy=FAST)
        try:
            w.run_once()
        finally:
            w.stop()
        assert rx.hits[0].body == {"x": 1} and rx.hits[0].verified
