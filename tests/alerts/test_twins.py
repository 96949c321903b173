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
