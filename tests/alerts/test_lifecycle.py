"""Alert lifecycle through the engine and the store: grouping windows, repeat, silences,
inhibition, acknowledge, resolve and reopen; the outbox rows each step writes."""

from __future__ import annotations

import json
from datetime import timedelta

from storage.types import OutboxItem
from tests.alerts.conftest import Alerting
from tests.alerts.helpers import T0, result

HOOK = "http://127.0.0.1:9/hook"  # never called here: these tests read the outbox


def setup(a: Alerting, **rule: object) -> None:
    a.engine.create_channel("hook", "webhook", HOOK)
    spec = {
        "name": "drift",
        "match": {"kind": "feature_drift"},
        "channels": ["hook"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        **rule,
    }
    a.engine.put_rule(spec)


def bodies(a: Alerting) -> list[dict]:
    return [json.loads(d.body) for d in reversed(a.store.list_deliveries())]


def ten_features(hour: int, status: str = "alert", tenant: str = "acme") -> list:
    return [result(hour, status, column=f"f{i}", tenant=tenant) for i in range(10)]


def test_one_notification_for_ten_alerts_after_group_wait(alerting: Alerting) -> None:
    a = alerting
    setup(a)
    ts = a.engine.process(ten_features(0))
    assert sum(t.change == "firing" for t in ts) == 10
    assert a.engine.flush_due() == []  # group_wait not over
    a.clock.advance(seconds=29)
    assert a.engine.flush_due() == []
    a.clock.advance(seconds=1)
    (note,) = a.engine.flush_due()
    assert len(note.fingerprints) == 10
    (body,) = bodies(a)
    assert body["status"] == "firing" and len(body["alerts"]) == 10
    assert body["groupLabels"] == {"tenant": "acme", "model": "churn", "rule": "drift"}
    # another tenant is another group
    a.engine.process(ten_features(0, tenant="globex"))
    a.clock.advance(seconds=30)
    assert len(a.engine.flush_due()) == 1
    assert len(bodies(a)) == 2


def test_group_interval_then_repeat_interval(alerting: Alerting) -> None:
    a = alerting
    setup(a)
    a.engine.process([result(0, column="f0")])
    a.clock.advance(seconds=30)
    assert len(a.engine.flush_due()) == 1
    # a new alert in the same group waits for group_interval after the last notification
    a.clock.advance(seconds=60)
    a.engine.process([result(0, column="f1")])
    assert a.engine.flush_due() == []
    a.clock.advance(minutes=4)
    (note,) = a.engine.flush_due()
    assert len(note.fingerprints) == 2
    # still firing, nothing new: silence until repeat_interval
    a.engine.process([result(1, column="f0"), result(1, column="f1")])
    a.clock.advance(hours=3)
    assert a.engine.flush_due() == []
    a.clock.advance(hours=1, seconds=1)
    (note,) = a.engine.flush_due()
    assert note.payload["reason"] == "repeat interval"


def test_resolve_notifies_then_reopen_is_a_new_instance(alerting: Alerting) -> None:
    a = alerting
    setup(a, keep_firing_for=1)
    a.engine.process([result(0)])
    a.clock.advance(seconds=30)
    a.engine.flush_due()
    first = a.store.list_alerts()[0]
    a.engine.process([result(1, "ok")])  # keep_firing_for: still firing
    assert a.store.get_alert(first.id).state == "firing"
    a.engine.process([result(2, "ok")])
    resolved = a.store.get_alert(first.id)
    # ends_at: the start of the window that resolved it (data time); resolved_at: wall clock
    assert resolved.state == "resolved" and resolved.ends_at == T0 + timedelta(hours=2)
    assert resolved.resolved_at == a.clock.now
    assert resolved.starts_at == T0 and resolved.fired_at == T0.replace(hour=12)
    a.clock.advance(minutes=5)
    (note,) = a.engine.flush_due()
    assert note.status == "resolved"
    body = bodies(a)[-1]
    assert body["status"] == "resolved" and body["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    # reopen: a new alert id with the same fingerprint, and a new firing notification
    a.engine.process([result(3)])
    newest = a.store.list_alerts()[0]
    assert newest.id != first.id and newest.fingerprint == first.fingerprint
    a.clock.advance(minutes=5)
    (note,) = a.engine.flush_due()
    assert note.status == "firing" and note.payload["alert_ids"] == [newest.id]


def test_pending_alert_that_clears_notifies_nobody(alerting: Alerting) -> None:
    a = alerting
    setup(a, **{"for": 2})
    a.engine.process([result(0)])
    a.engine.process([result(1, "ok")])
    a.clock.advance(hours=1)
    assert a.engine.flush_due() == []
    assert a.store.list_deliveries() == []


def test_silence_mutes_until_it_expires(alerting: Alerting) -> None:
    a = alerting
    setup(a)
    s = a.engine.silence(
        [{"name": "tenant", "value": "acme"}],
        "maintenance",
        "alice",
        a.clock.now + timedelta(hours=1),
    )
    a.engine.process(ten_features(0) + ten_features(0, tenant="globex"))
    a.clock.advance(seconds=30)
    notes = a.engine.flush_due()
    assert [n.payload["group_labels"]["tenant"] for n in notes] == ["globex"]
    (view,) = a.engine.silences()
    assert view.silence.id == s.id and len(view.muting) == 10
    assert all(m.labels["tenant"] == "acme" for m in view.muting)
    # evaluation went on: the muted alerts are firing
    assert len(a.store.list_alerts(state="firing", tenant_id="acme")) == 10
    # natural expiry: the group comes back when the silence ends
    a.clock.advance(hours=1)
    (note,) = a.engine.flush_due()
    assert note.payload["group_labels"]["tenant"] == "acme" and len(note.fingerprints) == 10


def test_expiring_a_silence_by_hand_resumes_notifications(alerting: Alerting) -> None:
    a = alerting
    setup(a)
    s = a.engine.silence(
        [{"name": "column", "value": "f.*", "op": "=~"}],
        "noisy",
        "bob",
        a.clock.now + timedelta(days=1),
    )
    a.engine.process(ten_features(0))
    a.clock.advance(seconds=30)
    assert a.engine.flush_due() == []
    a.engine.expire_silence(s.id, "bob")
    assert a.engine.silences() == []
    assert len(a.engine.silences(include_expired=True)) == 1
    (note,) = a.engine.flush_due()
    assert len(note.fingerprints) == 10


def test_critical_data_quality_inhibits_drift_for_the_same_tenant(alerting: Alerting) -> None:
    a = alerting
    setup(a, group_by=["tenant", "model"])
    a.engine.put_rule(
        {
            "name": "dq",
            "match": {"kind": "data_quality"},
            "severity": "critical",
            "channels": ["hook"],
            "group_wait": "30s",
        }
    )
    rows = [
        result(0, kind="data_quality", monitor="quality", metric="missing_rate", tenant="acme"),
        result(0, tenant="acme"),
        result(0, tenant="globex"),
    ]
    a.engine.process(rows)
    a.clock.advance(seconds=30)
    notes = a.engine.flush_due()
    sent = {
        (n.payload["group_labels"].get("tenant"), tuple(sorted(n.payload["fingerprints"])))
        for n in notes
    }
    dq = a.store.list_alerts(rule="dq")[0]
    drift_acme = a.store.list_alerts(rule="drift", tenant_id="acme")[0]
    drift_globex = a.store.list_alerts(rule="drift", tenant_id="globex")[0]
    fps = {fp for _, f in sent for fp in f}
    assert dq.fingerprint in fps and drift_globex.fingerprint in fps
    assert drift_acme.fingerprint not in fps
    why = a.engine.muted([drift_acme, drift_globex], a.clock.now)
    assert why == {drift_acme.fingerprint: f"inhibited:{dq.fingerprint}"}


def test_acknowledge_records_who_and_sends_pagerduty_acknowledge(alerting: Alerting) -> None:
    a = alerting
    a.engine.create_channel(
        "pd", "pagerduty", "http://127.0.0.1:9/v2/enqueue", routing_key="R" * 32
    )
    a.engine.put_rule(
        {"name": "perf", "match": {"kind": "performance"}, "channels": ["pd"], "group_wait": "0s"}
    )
    a.engine.process([result(0, kind="performance", metric="roc_auc", column="")])
    alert = a.store.list_alerts()[0]
    assert [json.loads(d.body)["event_action"] for d in a.store.list_deliveries()] == ["trigger"]
    acked = a.engine.acknowledge(alert.id, "carol")
    assert acked.acknowledged_by == "carol" and acked.acknowledged_at == a.clock.now
    assert a.engine.acknowledge(alert.id, "dave").acknowledged_by == "carol"  # idempotent
    events = [json.loads(d.body) for d in reversed(a.store.list_deliveries())]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge"]
    assert events[1]["dedup_key"] == alert.fingerprint
    assert all("routing_key" not in e for e in events)  # the secret is added at send time


def test_backfill_announces_what_still_fires_with_its_historical_start(
    alerting: Alerting,
) -> None:
    # Was: a backfill's alert that kept firing was never announced (issue 13: a firing
    # churn-data-quality alert with a channel, no delivery ever).
    a = alerting
    setup(a)
    a.clock.now = T0 + timedelta(days=20)
    a.engine.process([result(h, column="f0") for h in range(5)], notify=False)
    # f1 fired and resolved inside the replayed history: nobody hears about it
    a.engine.process([result(0, column="f1"), result(1, "ok", column="f1")], notify=False)
    (alert,) = a.store.list_alerts(state="firing")
    assert alert.starts_at == T0 and alert.fired_at == a.clock.now
    assert a.engine.flush_due() == []  # group_wait
    a.clock.advance(seconds=30)
    (note,) = a.engine.flush_due()
    assert note.payload["alert_ids"] == [alert.id] and note.payload["announced"] == [alert.id]
    (body,) = bodies(a)
    assert body["alerts"][0]["startsAt"] == "2026-01-01T00:00:00Z"  # not the backfill's time
    assert body["driftwatch"]["alerts"][0]["since"] == "2026-01-01T00:00:00Z"
    assert body["driftwatch"]["alerts"][0]["fired_at"] == "2026-01-21T00:00:00Z"
    assert body["driftwatch"]["alerts"][0]["new"] is True
    # announced once: later windows that keep it firing add nothing before repeat_interval
    a.engine.process([result(5, column="f0")])
    a.clock.advance(hours=1)
    assert a.engine.flush_due() == []


def test_outbox_rows_are_written_with_the_notification(alerting: Alerting) -> None:
    a = alerting
    setup(a)
    a.engine.create_channel("slack", "slack", "http://127.0.0.1:9/slack")
    a.engine.put_rule(
        {"name": "drift", "match": {"kind": "feature_drift"}, "channels": ["hook", "slack"]}
    )
    a.engine.process([result(0)])
    a.clock.advance(seconds=30)
    (note,) = a.engine.flush_due()
    ds = a.store.list_deliveries(notification_id=note.id)
    assert sorted(d.channel_name for d in ds) == ["hook", "slack"]
    assert len({d.webhook_id for d in ds}) == 2 and all(d.status == "pending" for d in ds)


def test_channel_secrets_are_encrypted_and_not_in_records(alerting: Alerting) -> None:
    a = alerting
    rec, secret = a.engine.create_channel("hook", "webhook", "http://127.0.0.1:9/x?token=abc")
    assert secret is not None and secret.startswith("whsec_")
    assert "token" not in rec.url_hint and rec.secret_count == 1
    from storage.metadata.alerting import url_hint

    assert url_hint("https://h.example/?token=abc") == "https://h.example/…"
    assert url_hint("https://user:pw@h.example:8443") == "https://h.example:8443/"
    assert secret not in repr(rec)
    assert a.store.channel_secrets("hook").secrets == (secret,)
    rotated, new = a.engine.rotate_secret("hook")
    assert a.store.channel_secrets("hook").secrets == (new, secret) and rotated.secret_count == 2
    a.engine.rotate_secret("hook")
    assert len(a.store.channel_secrets("hook").secrets) == 2  # two active at most
    # the raw table holds ciphertext only
    item = OutboxItem(rec.id, "firing", "{}")
    a.store.enqueue([item])
    with a.metadata.reading() as s:  # a look at the stored bytes
        from sqlalchemy import text

        raw = s.execute(text("SELECT url_enc, secrets_enc FROM alert_channels")).one()
    assert "127.0.0.1" not in raw[0] and secret not in raw[1]


def test_notifications_carry_enriched_context_and_survive_a_failing_enricher(
    alerting: Alerting,
) -> None:
    a = alerting
    setup(a)
    calls: list[int] = []

    def enrich(alert):
        calls.append(alert.id)
        if len(calls) > 1:
            raise RuntimeError("KPI store down")
        return {"related_kpis": [{"kpi": "conversion", "tenant_id": "acme", "change": -0.12}]}

    a.engine.enrich = enrich
    a.engine.process([result(0, tenant="acme")])
    a.clock.advance(seconds=30)
    a.engine.flush_due()
    body = bodies(a)[-1]
    assert body["driftwatch"]["alerts"][0]["context"]["related_kpis"][0]["kpi"] == "conversion"
    a.engine.process([result(0, tenant="globex")])
    a.clock.advance(seconds=30)
    assert len(a.engine.flush_due()) == 1  # sent without the extra context
    assert "related_kpis" not in bodies(a)[-1]["driftwatch"]["alerts"][0]["context"]


def test_two_planners_racing_on_one_group_notify_once(
    alerting: Alerting, metadata_url: str
) -> None:
    import threading

    from alerts.engine import AlertEngine
    from storage.metadata import MetadataStore
    from storage.metadata.alerting import AlertStore

    a = alerting
    setup(a)
    a.engine.process(ten_features(0))
    a.clock.advance(seconds=30)
    other_meta = MetadataStore(metadata_url, clock=a.clock)
    other = AlertEngine(AlertStore(other_meta, "test-secret-key"), base_url="https://dw.example")
    barrier = threading.Barrier(2)
    out: list[int] = []

    def run(engine: AlertEngine) -> None:
        barrier.wait()
        out.append(len(engine.flush_due()))

    threads = [threading.Thread(target=run, args=(e,)) for e in (a.engine, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other_meta.dispose()
    assert sorted(out) == [0, 1]
    assert len(a.store.list_notifications()) == 1 and len(a.store.list_deliveries()) == 1


def test_backfill_of_old_windows_does_not_make_missing_data_alerts_flap(alerting: Alerting) -> None:
    # Replaying 48 old hourly windows one by one: each window's series looks "silent" against
    # the wall clock until the next one arrives. Silence is judged against the present only
    # (check_missing), so the backfill must not open and resolve an alert per window.
    a = alerting
    a.engine.put_rule({"name": "gone", "kind": "missing_data", "max_silence": "3h", "for": 1})
    a.clock.now = T0 + timedelta(hours=48, minutes=20)
    for h in range(48):
        a.engine.process([result(h, "ok")], notify=False)
    assert a.store.list_alerts() == []
    assert a.engine.check_missing() == []  # the newest window is recent: not silent
    a.clock.advance(hours=4)
    assert [t.change for t in a.engine.check_missing()] == ["firing"]  # now it is


def test_replaying_history_ends_without_a_missing_data_storm(alerting: Alerting) -> None:
    """History replay (issue 14 item 5): a backfill of 60 days of hourly windows that ended a
    month ago, for 3 tenants, then live checks: no "no data since" alert per series (before,
    one per series fired at the first check). Threshold alerts of the replay keep their
    historical start. A series that then reports live starts its heartbeat as usual."""
    a = alerting
    a.engine.put_rule({"name": "gone", "kind": "missing_data", "max_silence": "3h", "for": 1})
    a.engine.put_rule({"name": "psi", "match": {"kind": "feature_drift"}})
    a.clock.now = T0 + timedelta(days=90)
    tenants = ("acme", "globex", "initech")
    for day in range(60):
        batch = [
            result(day * 24 + h, "alert" if day == 40 and t == "acme" else "ok", tenant=t)
            for h in range(24)
            for t in tenants
        ]
        a.engine.process(batch, notify=False)
    assert a.engine.check_missing() == []
    a.clock.advance(hours=6)
    assert a.engine.check_missing() == []  # live ticks go on: still no storm
    fired = [x for x in a.store.list_alerts() if x.rule == "psi"]
    assert fired and fired[0].starts_at == T0 + timedelta(days=40)
    # live data now: that series is watched from here on
    a.engine.process([result(24 * 90 + 5, "ok", tenant="acme")])
    a.clock.now = T0 + timedelta(days=90, hours=6) + timedelta(hours=4)
    assert [(t.change, t.after.tenant_id) for t in a.engine.check_missing()] == [("firing", "acme")]


def test_an_alert_resolved_and_breaching_again_between_flushes_is_announced_anew(
    alerting: Alerting,
) -> None:
    a = alerting
    setup(a)
    a.engine.process([result(0)])
    a.clock.advance(seconds=30)
    assert len(a.engine.flush_due()) == 1
    first = a.store.list_alerts()[0]
    # resolved and firing again in one batch: the group's log named the old instance
    a.engine.process([result(1, "ok"), result(2)])
    newest = a.store.list_alerts()[0]
    assert newest.id != first.id and newest.starts_at == T0 + timedelta(hours=2)
    a.clock.advance(minutes=5)
    (note,) = a.engine.flush_due()
    assert note.payload["announced"] == [newest.id]
    assert bodies(a)[-1]["alerts"][0]["startsAt"] == "2026-01-01T02:00:00Z"


def test_a_silenced_alert_is_not_announced_twice_and_its_resolution_is_told_later(
    alerting: Alerting,
) -> None:
    a = alerting
    setup(a)
    a.engine.process([result(0)])
    a.clock.advance(seconds=30)
    (note,) = a.engine.flush_due()
    alert = a.store.list_alerts()[0]
    assert note.payload["announced"] == [alert.id]
    s = a.engine.silence(
        [{"name": "tenant", "value": "acme"}], "deploy", "alice", a.clock.now + timedelta(hours=1)
    )
    assert a.engine.mutings([alert])[alert.fingerprint].silences[0].id == s.id
    a.clock.advance(minutes=10)
    a.engine.expire_silence(s.id, "alice")
    assert a.engine.flush_due() == []  # still firing, already announced: nothing to say
    # resolved during a second silence: told once the silence ends
    s2 = a.engine.silence(
        [{"name": "tenant", "value": "acme"}], "deploy", "alice", a.clock.now + timedelta(hours=1)
    )
    a.engine.process([result(1, "ok")])
    a.clock.advance(minutes=5)
    assert a.engine.flush_due() == []
    a.engine.expire_silence(s2.id, "alice")
    (note,) = a.engine.flush_due()
    assert note.status == "resolved" and note.payload["alert_ids"] == [alert.id]


def test_reconcile_announces_an_alert_whose_inhibition_lifted(alerting: Alerting) -> None:
    a = alerting
    setup(a, group_by=["tenant", "model", "rule"])
    a.engine.put_rule(
        {
            "name": "dq",
            "match": {"kind": "data_quality"},
            "severity": "critical",
            "channels": ["hook"],
            "group_wait": "30s",
        }
    )
    dq = result(0, kind="data_quality", monitor="quality", metric="missing_rate")
    a.engine.process([dq, result(0)])
    a.clock.advance(seconds=30)
    a.engine.flush_due()
    drift = a.store.list_alerts(rule="drift")[0]
    (muting,) = a.engine.mutings([drift]).values()
    assert [x.rule for x in muting.inhibitors] == ["dq"] and muting.silences == ()
    # the data-quality problem resolves; the drift goes on, with no change of its own
    a.engine.process([replace_status(dq, 1, "ok"), result(1)])
    a.clock.advance(minutes=5)
    notes = a.engine.flush_due()
    assert [n.status for n in notes] == ["resolved"]  # only the dq group had a change
    assert a.engine.reconcile() == 1
    a.clock.advance(seconds=30)
    (note,) = a.engine.flush_due()
    assert note.payload["announced"] == [drift.id]
    assert a.engine.reconcile() == 0  # nothing owed any more


def test_reconcile_moves_alerts_to_the_group_of_a_rule_that_gained_a_channel(
    alerting: Alerting,
) -> None:
    a = alerting
    setup(a, channels=[])
    a.engine.process([result(0)])
    a.clock.advance(seconds=30)
    (note,) = a.engine.flush_due()
    assert note.payload["channels"] == [] and a.store.list_deliveries() == []
    a.engine.create_channel("pager", "webhook", HOOK)
    a.engine.put_rule({"name": "drift", "match": {"kind": "feature_drift"}, "channels": ["pager"]})
    assert a.engine.reconcile() == 1
    a.clock.advance(seconds=30)
    (note,) = a.engine.flush_due()
    assert note.payload["channels"] == ["pager"]
    alert = a.store.list_alerts()[0]
    assert json.loads(alert.group_key)["to"] == ["pager"]


def replace_status(r, hour: int, status: str):
    from dataclasses import replace

    start = T0 + timedelta(hours=hour)
    return replace(r, window_start=start, window_end=start + timedelta(hours=1), status=status)
