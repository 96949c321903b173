"""Missing data when labels come late, and catch-up runs: realized performance is judged once
its labels should have arrived; series a live batch reports are not silent."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from alerts.backtest import backtest
from alerts.defaults import default_rules
from alerts.evaluate import evaluate, evaluate_all, evaluate_missing
from alerts.rules import Rule, RuleError
from storage.types import MetricResult
from tests.alerts.conftest import Alerting
from tests.alerts.helpers import T0

DAY = timedelta(days=1)
RULE = {
    "name": "gone",
    "kind": "missing_data",
    "match": {"source": "monitor"},
    "for": 2,
    "max_silence": "26h",
    "label_delay": "3d",
}


def daily(
    day: int, status: str, kind: str = "performance", tenant: str = "acme", monitor: str = ""
) -> MetricResult:
    """One result of a daily window ``day`` days after T0 (no_data: no labels yet)."""
    start = T0 + day * DAY
    return MetricResult(
        source="monitor",
        source_name=monitor or f"churn-{kind}",
        kind=kind,
        model="churn",
        window_start=start,
        window_end=start + DAY,
        tenant_id=tenant,
        model_version="*",
        column="",
        metric="roc_auc",
        value=None if status == "no_data" else 0.8,
        threshold=0.7,
        status=status,  # type: ignore[arg-type]
    )


def test_label_delay_is_for_missing_data_rules_and_round_trips() -> None:
    rule = Rule.from_dict(RULE)
    assert rule.label_delay == timedelta(days=3)
    assert rule.label_wait("performance") == timedelta(days=3)
    assert rule.label_wait("feature_drift") == rule.label_wait("estimated_performance")
    assert rule.label_wait("feature_drift") == timedelta(0)
    assert Rule.from_dict(rule.to_dict()) == rule
    with pytest.raises(RuleError, match="label_delay"):
        Rule.from_dict({"name": "auc", "label_delay": "3d"})
    with pytest.raises(RuleError, match="label_delay"):
        Rule.from_dict({**RULE, "label_delay": "soon"})
    (defaults,) = [r for r in default_rules("churn", "binary") if r.kind == "missing_data"]
    assert defaults.label_delay == timedelta(days=7)


def test_unlabelled_windows_are_not_missing_until_their_labels_are_due() -> None:
    rule = Rule.from_dict(RULE)
    rows = [daily(0, "no_data"), daily(1, "no_data")]
    # evaluated as they close: labels may still come, nothing is judged
    now = T0 + 2 * DAY + timedelta(minutes=10)
    assert evaluate_all([rule], rows, {}, now).transitions == []
    # the same windows once their labels are overdue: missing, for 2 windows → firing
    late = T0 + 5 * DAY
    assert [t.change for t in evaluate_all([rule], rows, {}, late).transitions] == ["firing"]
    # kinds without labels are judged at once, as before
    drift = [daily(0, "no_data", "feature_drift"), daily(1, "no_data", "feature_drift")]
    assert [t.change for t in evaluate_all([rule], drift, {}, now).transitions] == ["firing"]


def test_low_traffic_windows_are_not_missing_data() -> None:
    # A small tenant's weekend: rows came, too few to judge (no_data with their count). That
    # is low traffic, not missing data; windows without any row still are.
    rule = Rule.from_dict(RULE)
    now = T0 + 2 * DAY + timedelta(minutes=10)

    def few(day: int, n: int, kind: str, key: str) -> MetricResult:
        res = daily(day, "no_data", kind)
        return replace(res, details={key: n, "reason": "too few rows"})

    for kind, key in [("feature_drift", "n_current"), ("estimated_performance", "n")]:
        low = [few(0, 28, kind, key), few(1, 12, kind, key)]
        assert evaluate_all([rule], low, {}, now).transitions == [], kind
        empty = [few(0, 0, kind, key), few(1, 0, kind, key)]
        assert [t.change for t in evaluate_all([rule], empty, {}, now).transitions] == ["firing"]
    # realized performance: a few labelled rows are data, none (labels overdue) are missing
    late = T0 + 5 * DAY
    low = [few(0, 3, "performance", "n"), few(1, 5, "performance", "n")]
    out = evaluate_all([rule], low, {}, late)
    assert out.transitions == [] and next(iter(out.seen.values())).last_window_end == T0 + 2 * DAY
    empty = [few(0, 0, "performance", "n"), few(1, 0, "performance", "n")]
    assert [t.change for t in evaluate_all([rule], empty, {}, late).transitions] == ["firing"]


def test_labelled_silence_counts_from_the_newest_labelled_window() -> None:
    rule = Rule.from_dict(RULE)
    rows = [daily(0, "ok"), daily(1, "no_data"), daily(2, "no_data")]
    now = T0 + 3 * DAY + timedelta(minutes=10)
    out = evaluate_all([rule], rows, {}, now)
    assert out.transitions == []
    (seen,) = out.seen.values()
    assert seen.last_window_end == T0 + DAY and seen.has_data  # day 0's end, not day 2's
    # silent for max_silence + label_delay after the last labelled window, not before
    due = T0 + DAY + timedelta(days=3, hours=26)
    assert evaluate_missing(rule, out.seen, {}, due - timedelta(minutes=1)) == []
    (t,) = evaluate_missing(rule, out.seen, {}, due)
    assert t.change == "firing" and t.after.context["max_silence_s"] == (3 * 24 + 26) * 3600
    # a series that never had labels starts its silence at its first window
    (never,) = evaluate_all([rule], [daily(0, "no_data", tenant="globex")], {}, now).seen.values()
    assert not never.has_data and never.last_window_end == T0


def test_a_window_without_data_is_judged_when_late_labels_arrive() -> None:
    # A threshold rule on realized performance: the no_data run of a window (labels not in
    # yet) is no evaluation, so the re-run with labels is judged, not ignored as a replay.
    rule = Rule.from_dict({"name": "auc", "match": {"kind": "performance"}})
    (t,) = evaluate(rule, [daily(0, "alert")], {}, T0)
    firing = {t.fingerprint: t.after}
    assert evaluate(rule, [daily(1, "no_data")], firing, T0) == []
    (t,) = evaluate(rule, [daily(1, "ok")], firing, T0)  # labels for day 1 came
    assert t.change == "resolved"


def test_backtest_judges_labelled_windows_with_their_labels_due() -> None:
    rule = Rule.from_dict(RULE)
    rows = [daily(d, "ok") for d in range(5)] + [daily(d, "no_data") for d in range(5, 8)]
    report = backtest(rule, rows)
    assert report.fired == 1 and report.episodes[0].active_at == T0 + 5 * DAY


def test_engine_late_labels_page_nobody_and_missing_labels_do(alerting: Alerting) -> None:
    a = alerting
    a.engine.put_rule(RULE)
    lateness = timedelta(minutes=10)
    # 8 daily live runs; labels arrive 3 days late, so each new window has none yet, and the
    # window from 3 days ago is re-run with its labels (as the runner does)
    for d in range(8):
        a.clock.now = T0 + (d + 1) * DAY + lateness
        batch = [daily(d, "no_data"), daily(d, "ok", "feature_drift")]
        if d >= 3:
            batch.append(daily(d - 3, "ok"))
        a.engine.process(batch)
        a.clock.advance(minutes=30)
        assert a.engine.check_missing() == []
    assert a.store.list_alerts() == []
    # labels stop: performance goes silent while drift keeps reporting; it fires once
    # max_silence + label_delay have passed since its newest labelled window (day 4)
    a.clock.now = T0 + 9 * DAY + lateness
    a.engine.process([daily(8, "no_data"), daily(8, "ok", "feature_drift")])
    assert a.engine.check_missing() == []
    a.clock.now = T0 + 5 * DAY + timedelta(days=3, hours=26, minutes=1)
    (t,) = a.engine.check_missing()
    assert t.after.labels["monitor"] == "churn-performance" and t.after.state == "firing"
    # the labels come back: the re-run of a labelled window resolves it
    a.engine.process([daily(5, "ok")])
    (alert,) = a.store.list_alerts()
    assert alert.state == "resolved"


def test_a_catch_up_of_missed_windows_does_not_flap(alerting: Alerting) -> None:
    # The server was down for 3 days: the scheduler runs the missed windows live, oldest
    # first. Each window's series looks silent against the wall clock until the next one
    # arrives, but a series that reports is running: nothing may open and resolve.
    a = alerting
    a.engine.put_rule({**RULE, "name": "quiet", "label_delay": None})
    a.engine.process([daily(0, "ok", "feature_drift")])
    a.clock.now = T0 + 4 * DAY + timedelta(minutes=10)
    for d in range(1, 4):
        a.engine.process([daily(d, "ok", "feature_drift")])
    assert a.store.list_alerts() == []
    a.clock.advance(hours=27)
    assert [t.change for t in a.engine.check_missing()] == ["firing"]
