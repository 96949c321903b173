"""An all-tenants alert and its per-tenant twins: related in the data, one notification."""

from __future__ import annotations

import json
from dataclasses import replace

from alerts.twins import relate
from tests.alerts.conftest import Alerting
from tests.alerts.helpers import result
from tests.alerts.test_lifecycle import setup


def test_relate_links_each_tenant_alert_to_its_all_tenants_twin(alerting: Alerting) -> None:
    a = alerting
    setup(a)
    a.engine.process(
        [
            result(0, tenant="*"),
            result(0, tenant="globex"),
            result(0, tenant="acme", column="other"),  # another series: no twin
        ]
    )
    alerts = {(x.tenant_id, x.labels["column"]): x for x in a.store.list_alerts()}
    star, globex, acme = alerts[("*", "age")], alerts[("globex", "age")], alerts[("acme", "other")]
    twins = a.engine.twins(list(alerts.values()))
    assert twins[globex.id].all_tenants == star
    assert twins[star.id].tenants == (globex,)
    assert acme.id not in twins
    assert twins[star.id].to_json() == {
        "all_tenants_alert": None,
        "tenant_alerts": [{"id": globex.id, "tenant": "globex", "state": "firing"}],
    }
    # a pure function: the newest instance of a fingerprint wins
    older = replace(globex, id=0, state="resolved")
    assert relate([star], [older, globex])[star.id].tenants == (globex,)


def test_a_firing_tenant_alert_mutes_its_twin_which_notifies_once_alone(
    alerting: Alerting,
) -> None:
    a = alerting
    setup(a)
    a.engine.process([result(0, tenant="*"), result(0, tenant="globex")])
    a.clock.advance(seconds=30)
    notes = a.engine.flush_due()
    star = a.store.list_alerts(tenant_id="*")[0]
    globex = a.store.list_alerts(tenant_id="globex")[0]
    sent = [n.payload for n in notes if n.payload["announced"]]
    assert [p["group_labels"]["tenant"] for p in sent] == ["globex"]
    (muting,) = a.engine.mutings([star]).values()
    assert muting.inhibitors == (globex,)
    # globex recovers, the whole still drifts: now the all-tenants alert is announced
    a.engine.process([result(1, tenant="*"), result(1, "ok", tenant="globex")])
    a.clock.advance(minutes=5)
    a.engine.flush_due()
    assert a.engine.reconcile() == 1
    a.clock.advance(seconds=30)
    (note,) = [n for n in a.engine.flush_due() if n.payload["announced"]]
    assert note.payload["announced"] == [star.id]
    body = json.loads(a.store.list_deliveries(notification_id=note.id)[0].body)
    assert body["alerts"][0]["labels"]["tenant"] == "*"


def test_the_inhibit_index_agrees_with_the_pairwise_definition() -> None:
    # InhibitIndex (one pass, for 10,000 firing alerts) must mute exactly what checking every
    # pair with InhibitRule.mutes does.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from alerts.silences import DEFAULT_INHIBIT_RULES, InhibitIndex, inhibited_by
    from storage.types import AlertRecord
    from tests.alerts.helpers import T0

    label = st.fixed_dictionaries(
        {
            "alertname": st.sampled_from(["drift", "dq"]),
            "model": st.sampled_from(["churn", "basket"]),
            "tenant": st.sampled_from(["*", "acme", "globex"]),
            "kind": st.sampled_from(["feature_drift", "data_quality", "performance"]),
            "severity": st.sampled_from(["critical", "warning"]),
            "column": st.sampled_from(["", "age"]),
            "metric": st.just("psi"),
            "monitor": st.just("m"),
            "source": st.just("monitor"),
        }
    )
    one = st.tuples(label, st.sampled_from(["firing", "pending", "resolved"]))

    @settings(max_examples=200, derandomize=True, deadline=None)
    @given(st.lists(one, max_size=12))
    def check(items: list) -> None:
        alerts = [
            AlertRecord(
                fingerprint=f"fp{i}",
                rule=lb["alertname"],
                state=state,
                severity=lb["severity"],
                tenant_id=lb["tenant"],
                model=lb["model"],
                labels=lb,
                annotations={},
                value=None,
                threshold=None,
                breach_streak=1,
                clear_streak=0,
                last_window_end=None,
                active_at=T0,
                starts_at=None,
                ends_at=None,
                updated_at=T0,
                id=i,
            )
            for i, (lb, state) in enumerate(items)
        ]
        index = InhibitIndex(alerts, DEFAULT_INHIBIT_RULES)
        for a in alerts:
            assert sorted(index.inhibited_by(a)) == sorted(inhibited_by(a, alerts))

    check()
