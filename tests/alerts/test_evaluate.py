"""Pure evaluation: for / keep_firing_for, no_data, idempotent replays, reopen, templates."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.evaluate import Transition, evaluate, evaluate_all, evaluate_missing, fingerprint
from alerts.rules import Rule, RuleError
from storage.types import AlertRecord
from tests.alerts.helpers import T0, result


def run(rule: Rule, statuses: list[str], state: dict[str, AlertRecord] | None = None):
    """Feed one window per status through evaluate, one call per window (like live runs)."""
    state = dict(state or {})
    changes: list[str] = []
    next_id = 100
    for hour, status in enumerate(statuses):
        for t in evaluate(rule, [result(hour, status)], state, T0):
            after = t.after
            if after.id is None:
                after = replace(after, id=next_id)
                next_id += 1
            state[t.fingerprint] = after
            changes.append(t.change)
    return changes, state


def test_for_needs_consecutive_breaches() -> None:
    rule = Rule.from_dict({"name": "r", "for": 3})
    changes, state = run(rule, ["alert", "alert", "ok", "alert", "alert", "alert"])
    assert changes == ["pending", "updated", "cleared", "pending", "updated", "firing"]
    (alert,) = state.values()
    assert alert.state == "firing" and alert.breach_streak == 3


def test_keep_firing_for_holds_then_resolves() -> None:
    rule = Rule.from_dict({"name": "r", "for": 1, "keep_firing_for": 2})
    changes, state = run(rule, ["alert", "ok", "ok", "ok"])
    assert changes == ["firing", "updated", "updated", "resolved"]
    (alert,) = state.values()
    assert alert.state == "resolved" and alert.ends_at is not None


def test_keep_firing_for_breach_in_between_resets() -> None:
    rule = Rule.from_dict({"name": "r", "keep_firing_for": 1})
    changes, _ = run(rule, ["alert", "ok", "alert", "ok", "ok"])
    assert changes == ["firing", "updated", "updated", "updated", "resolved"]


def test_no_data_neither_fires_nor_resolves() -> None:
    rule = Rule.from_dict({"name": "r", "for": 2})
    changes, state = run(rule, ["alert", "no_data", "no_data", "alert"])
    assert changes[0] == "pending" and changes[-1] == "firing"
    changes, state = run(rule, ["no_data"] * 3, state)
    assert all(c == "updated" for c in changes)
    assert next(iter(state.values())).state == "firing"


def test_resolved_reopens_as_a_new_instance() -> None:
    rule = Rule.from_dict({"name": "r"})
    _, state = run(rule, ["alert", "ok"])
    first = next(iter(state.values()))
    assert first.state == "resolved"
    t = evaluate(rule, [result(5, "alert")], state, T0)
    assert [x.change for x in t] == ["firing"]
    assert t[0].after.id is None and t[0].before is None  # a new row, same fingerprint
    assert t[0].fingerprint == first.fingerprint


def test_replayed_windows_change_nothing() -> None:
    rule = Rule.from_dict({"name": "r", "for": 2})
    _, state = run(rule, ["alert", "alert"])
    assert evaluate(rule, [result(0, "alert"), result(1, "alert")], state, T0) == []
    # a resolved alert is not reopened by re-running an old window either
    _, state = run(rule, ["alert", "alert", "ok", "ok"])
    assert evaluate(rule, [result(1, "alert")], state, T0) == []


def test_many_windows_in_one_batch_are_evaluated_oldest_first() -> None:
    rule = Rule.from_dict({"name": "r", "for": 2})
    batch = [result(h, s) for h, s in [(3, "ok"), (1, "alert"), (2, "alert"), (0, "ok")]]
    ts = evaluate(rule, batch, {}, T0)
    # firing at hour 2, resolved at hour 3 → one record, fired and resolved within the batch
    assert [t.change for t in ts] == ["resolved"] and ts[0].after.starts_at is not None


def test_batch_with_fire_resolve_fire_yields_two_instances() -> None:
    rule = Rule.from_dict({"name": "r"})
    ts = evaluate(rule, [result(0), result(1, "ok"), result(2)], {}, T0)
    assert [t.change for t in ts] == ["resolved", "firing"]
    assert ts[1].before is None


def test_value_condition_and_matchers_with_wildcards() -> None:
    rule = Rule.from_dict(
        {
            "name": "auc",
            "match": {"kind": "performance", "metric": "roc_*", "tenant": ["acme", "glob*"]},
            "condition": {"op": "<", "threshold": 0.7},
        }
    )
    rows = [
        result(0, "ok", value=0.65, kind="performance", metric="roc_auc", column=""),
        result(
            0, "ok", value=0.65, kind="performance", metric="roc_auc", tenant="globex", column=""
        ),
        result(
            0, "ok", value=0.65, kind="performance", metric="roc_auc", tenant="initech", column=""
        ),
        result(
            0, "ok", value=0.9, kind="performance", metric="roc_auc", tenant="globus", column=""
        ),
        result(0, "ok", value=0.1, kind="performance", metric="accuracy", column=""),
    ]
    ts = evaluate(rule, rows, {}, T0)
    assert sorted(t.after.labels["tenant"] for t in ts) == ["acme", "globex"]
    assert all(t.change == "firing" for t in ts)
    assert ts[0].after.threshold == 0.7


def test_labels_annotations_and_context() -> None:
    rule = Rule.from_dict(
        {
            "name": "drift",
            "labels": {"team": "ml"},
            "annotations": {"summary": "{column} drifted: {value:.2f} > {threshold} p={p_value}"},
        }
    )
    details = {"p_value": 0.001, "current_size": 900, "drivers": [{"name": "age", "score": 1}]}
    (t,) = evaluate(rule, [result(0, details=details)], {}, T0)
    a = t.after
    assert a.labels["team"] == "ml" and a.labels["tenant"] == "acme" and a.labels["column"] == "age"
    assert a.annotations["summary"] == "age drifted: 0.50 > 0.2 p=0.001"
    assert "description" in a.annotations  # default template filled in
    assert a.context["current_size"] == 900 and a.context["drivers"][0]["name"] == "age"
    assert a.fingerprint == fingerprint(a.labels)


def test_bad_template_keeps_the_text() -> None:
    rule = Rule.from_dict({"name": "r", "annotations": {"summary": "{value:.2f} {nope}"}})
    (t,) = evaluate(rule, [result(0, value=None)], {}, T0)
    assert t.after.annotations["summary"] == "{value:.2f} {nope}"


def test_missing_data_rule_on_no_data_and_on_silence() -> None:
    rule = Rule.from_dict(
        {
            "name": "gone",
            "kind": "missing_data",
            "for": 2,
            "max_silence": "3h",
            "severity": "critical",
        }
    )
    # two windows with nothing but no_data fire it
    rows = [result(0, "no_data", metric=m) for m in ("psi", "ks")] + [
        result(1, "no_data", metric=m) for m in ("psi", "ks")
    ]
    out = evaluate_all([rule], rows, {}, T0)
    assert [t.change for t in out.transitions] == ["firing"]
    assert "metric" not in out.transitions[0].after.labels  # one alert per monitor series
    # a series that went silent fires without any result
    seen = out.seen
    later = T0 + timedelta(hours=6)
    fired = evaluate_missing(rule, seen, {}, later)
    assert [t.change for t in fired] == ["firing"]
    assert evaluate_missing(rule, seen, {}, T0) == []


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "r", "severity": "page"}, "severity"),
        ({"name": "r", "for": 0}, "for"),
        ({"name": "r", "condition": {"op": "~", "threshold": 1}}, "condition.op"),
        ({"name": "r", "condition": {"status": "no_data"}}, "condition.status"),
        ({"name": "r", "match": {"colour": "x"}}, "match fields"),
        ({"name": "r", "group_wait": "soon"}, "group_wait"),
        ({"name": "r", "bogus": 1}, "unknown rule fields"),
    ],
)
def test_invalid_rules_name_the_field(spec: dict, field: str) -> None:
    with pytest.raises(RuleError, match=field):
        Rule.from_dict(spec)


def test_rule_round_trip() -> None:
    rule = Rule.from_dict(
        {
            "name": "r",
            "match": {"model": "churn", "kind": ["a", "b*"]},
            "condition": {"op": ">=", "threshold": 2},
            "for": 2,
            "keep_firing_for": 1,
            "group_wait": "10s",
            "repeat_interval": "1d",
        }
    )
    assert Rule.from_dict(rule.to_dict()) == rule


def test_transition_notifies_only_for_firing_or_resolved_after_firing() -> None:
    rule = Rule.from_dict({"name": "r", "for": 2})
    (t,) = evaluate(rule, [result(0)], {}, T0)
    assert isinstance(t, Transition) and not t.notifies


@settings(max_examples=150, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["alert", "ok", "no_data", "warn"]), min_size=1, max_size=12),
    for_windows=st.integers(1, 3),
    keep=st.integers(0, 2),
    other=st.booleans(),
)
def test_one_batch_equals_one_call_per_window(
    statuses: list[str], for_windows: int, keep: int, other: bool
) -> None:
    """Replaying windows in one batch (a backfill) ends in the same state as live runs."""
    rule = Rule.from_dict({"name": "r", "for": for_windows, "keep_firing_for": keep})
    rows = [result(h, s) for h, s in enumerate(statuses)]
    if other:  # a quiet neighbour series must not change anything
        rows += [result(h, "ok", column="other") for h in range(len(statuses))]
    state: dict[str, AlertRecord] = {}
    fired: set[int] = set()
    next_id = 1
    for hour in range(len(statuses)):
        for t in evaluate(
            rule, [r for r in rows if r.window_start == rows[hour].window_start], state, T0
        ):
            after = t.after if t.after.id is not None else replace(t.after, id=next_id)
            next_id += after.id == next_id
            state[t.fingerprint] = after
            if after.starts_at is not None:
                fired.add(after.id)
    batch = evaluate(rule, list(reversed(rows)), {}, T0)
    assert sum(t.after.starts_at is not None for t in batch) == len(fired)
    if not state:
        assert batch == []
        return
    (live,) = state.values()
    last = batch[-1].after
    for field in ("state", "breach_streak", "clear_streak", "last_window_end", "active_at"):
        assert getattr(last, field) == getattr(live, field), field
