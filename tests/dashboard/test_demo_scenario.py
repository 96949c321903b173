"""The demo the browser tests run on (``monitor.demo_scenario``, 14 days): its story is in the
data, and the default missing-data rules run over it without a false page although realized
performance stops three days before now (labels arrive three days late)."""

from __future__ import annotations

from datetime import timedelta

from alerts.evaluate import SeriesSeen, evaluate_missing
from monitor.composition import of
from monitor.demo_scenario import DRIFT_TENANT, LABEL_DELAY
from storage.reads import results_between
from tests.dashboard.conftest import Site


def test_the_story_is_in_the_data(site: Site) -> None:
    api = site.api()
    firing = api.get("/api/v1/alerts", params={"state": "firing", "limit": 1000}).json()
    drifted = {
        (a["labels"]["tenant"], a["labels"].get("column"))
        for a in firing
        if a["rule"] == "churn-drift" and a["labels"]["monitor"] == "churn-feature-drift"
    }
    # globex's discounts and tenure drift (other tenants may show a false alarm or two: a
    # daily window holds a few hundred rows)
    assert {(DRIFT_TENANT, "discount_rate"), (DRIFT_TENANT, "tenure_months")} <= drifted
    # realized performance stops where labels stop, three days before now
    services = site.live.services
    now = of(services).alerting.store.now()
    perf = results_between(
        services.metadata,
        start=now - timedelta(days=20),
        end=now,
        model="churn",
        kinds=["performance"],
    )
    labelled = max(r.window_end for r in perf if r.status != "no_data")
    assert now - LABEL_DELAY - timedelta(days=1) <= labelled <= now - timedelta(days=2)
    assert any(r.status == "no_data" and r.window_start >= labelled for r in perf)


def test_no_missing_data_alerts_while_labels_are_merely_late(site: Site) -> None:
    api = site.api()
    rules = {r["name"]: r for r in api.get("/api/v1/rules").json()}
    runtime = of(site.live.services).alerting
    for model in ("churn", "basket_value"):
        rule = rules[f"{model}-missing-data"]
        assert rule["enabled"] and rule["spec"]["label_delay"] == f"{LABEL_DELAY.days}d"
        assert api.get("/api/v1/alerts", params={"rule": rule["name"]}).json() == []
    # what the server's delivery loop does once a minute finds no silent series either
    assert runtime.engine.check_missing() == []
    # ... though without the label delay realized performance would look silent ...
    missing = [r for r in runtime.engine.rules() if r.kind == "missing_data"]
    seen = {
        fp: SeriesSeen(rule, fp, labels, end)
        for rule, fp, labels, end in runtime.store.series([r.name for r in missing])
    }
    now = runtime.store.now()
    perf = [s for s in seen.values() if s.labels["kind"] == "performance"]
    assert perf and all(s.last_window_end + timedelta(hours=26) < now for s in perf)
    # ... and the rules do fire once everything has been silent for long enough
    later = now + timedelta(days=5)
    fired = {t.fingerprint for rule in missing for t in evaluate_missing(rule, seen, {}, later)}
    assert fired == set(seen)


def test_globex_conversion_alert_is_still_firing_at_the_end(site: Site) -> None:
    """Conversion fell to below its target and stayed there: its business alert (the KPI's
    own row under ``kpi-breach``) is firing at the end of the story, held by the shift check
    against the level before the change."""
    api = site.api()
    firing = api.get("/api/v1/alerts", params={"state": "firing", "limit": 1000}).json()
    business = [
        a
        for a in firing
        if a["rule"] == "kpi-breach"
        and a["labels"]["tenant"] == DRIFT_TENANT
        and a["labels"]["metric"] == a["labels"]["monitor"] == "conversion_rate"
    ]
    assert len(business) == 1
    rows = api.get(
        "/api/v1/kpis/conversion_rate/results", params={"tenant_id": DRIFT_TENANT}
    ).json()
    last = max(rows, key=lambda r: r["window_start"])
    assert last["status"] == "alert" and last["details"]["checks"]["shift"] == "alert"
    assert last["details"]["level_before"] > 0.25 > last["value"]
    # the change began after the drift did (the story's order), before the alert's window
    assert last["details"]["changed_since"][:10] <= business[0]["active_at"][:10]
