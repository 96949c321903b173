"""Bodies against the documented schemas (required fields written out here, with the docs)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from alerts.evaluate import evaluate
from alerts.formats import generic_body, pagerduty_event, slack_body
from alerts.rules import Rule
from tests.alerts.helpers import T0, result

BASE = "https://dw.example"

# Alertmanager webhook_config payload, version 4:
# https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
AM_TOP = {
    "version": str,
    "groupKey": str,
    "truncatedAlerts": int,
    "status": str,
    "receiver": str,
    "groupLabels": dict,
    "commonLabels": dict,
    "commonAnnotations": dict,
    "externalURL": str,
    "alerts": list,
}
AM_ALERT = {
    "status": str,
    "labels": dict,
    "annotations": dict,
    "startsAt": str,
    "endsAt": str,
    "generatorURL": str,
    "fingerprint": str,
}
# PagerDuty Events API v2, trigger: routing_key (added at send time), event_action,
# payload.summary (≤1024), payload.source, payload.severity ∈ {critical, error, warning,
# info}; dedup_key ≤ 255; links[].href/text.
# https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}
# Slack incoming webhooks: text (fallback) and blocks; header plain_text ≤ 150 characters,
# section text ≤ 3000, at most 50 blocks, button text plain_text and url.
# https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks
SLACK_BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


def check(obj: dict[str, Any], schema: dict[str, type]) -> None:
    for key, typ in schema.items():
        assert key in obj, f"missing {key}"
        assert isinstance(obj[key], typ), f"{key} is {type(obj[key]).__name__}"


def alerts(n: int = 3, state: str = "firing"):
    rule = Rule.from_dict({"name": "drift", "annotations": {"summary": "{column} drifted"}})
    details = {
        "p_value": 1e-4,
        "current_size": 800,
        "reference_size": 5000,
        "reference": "training",
        "drivers": [{"name": "age", "score": 0.4}, {"name": "plan", "score": 0.1}],
        "related_kpis": [{"name": "conversion", "change": -0.12}],
    }
    out = []
    for i in range(n):
        (t,) = evaluate(rule, [result(0, column=f"f{i}", details=details)], {}, T0)
        a = t.after
        a = replace(a, id=i + 1)
        if state == "resolved":
            a = replace(a, state="resolved", ends_at=T0 + timedelta(hours=2))
        out.append(a)
    return out


def test_generic_body_is_alertmanager_v4_plus_context() -> None:
    body = generic_body(
        group_key="k",
        status="firing",
        receiver="hook",
        group_labels={"tenant": "acme"},
        alerts=alerts(),
        base_url=BASE,
    )
    json.dumps(body)
    check(body, AM_TOP)
    assert body["version"] == "4" and body["status"] in ("firing", "resolved")
    for a in body["alerts"]:
        check(a, AM_ALERT)
        assert a["endsAt"] == "0001-01-01T00:00:00Z" and a["startsAt"].endswith("Z")
        assert a["generatorURL"].startswith(f"{BASE}/alerts/")
    assert body["commonLabels"]["tenant"] == "acme" and "column" not in body["commonLabels"]
    ctx = body["driftwatch"]["alerts"][0]
    assert ctx["link"] == f"{BASE}/alerts/1"
    c = ctx["context"]
    for key in (
        "metric",
        "value",
        "threshold",
        "window",
        "current_size",
        "reference",
        "drivers",
        "related_kpis",
    ):
        assert key in c, key


def test_generic_resolved_body() -> None:
    body = generic_body(
        group_key="k",
        status="resolved",
        receiver="hook",
        group_labels={},
        alerts=alerts(1, "resolved"),
        base_url=BASE,
    )
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


def test_pagerduty_events() -> None:
    (a,) = alerts(1)
    trig = pagerduty_event(a, "trigger", BASE)
    assert trig["event_action"] in PD_ACTIONS and trig["dedup_key"] == a.fingerprint
    assert len(trig["dedup_key"]) <= 255
    p = trig["payload"]
    assert isinstance(p["summary"], str) and 0 < len(p["summary"]) <= 1024
    assert isinstance(p["source"], str) and p["source"]
    assert p["severity"] in PD_SEVERITIES
    assert isinstance(p["custom_details"], dict) and "drivers" in p["custom_details"]
    assert all(set(link) == {"href", "text"} for link in trig["links"])
    for action in ("acknowledge", "resolve"):
        e = pagerduty_event(a, action, BASE)
        assert e == {"event_action": action, "dedup_key": a.fingerprint}


def test_pagerduty_summary_is_clipped() -> None:
    (a,) = alerts(1)
    a = replace(a, annotations={"summary": "x" * 5000})
    assert len(pagerduty_event(a, "trigger", BASE)["payload"]["summary"]) == 1024


def test_slack_blocks() -> None:
    body = slack_body(
        status="firing",
        group_labels={"tenant": "acme", "model": "churn"},
        alerts=alerts(30),
        base_url=BASE,
    )
    assert isinstance(body["text"], str) and body["text"]
    blocks = body["blocks"]
    assert 0 < len(blocks) <= 50
    for b in blocks:
        assert b["type"] in SLACK_BLOCK_TYPES
        if b["type"] == "header":
            assert b["text"]["type"] == "plain_text" and len(b["text"]["text"]) <= 150
        if b["type"] == "section":
            assert b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= 3000
        if b["type"] == "actions":
            (btn,) = b["elements"]
            assert btn["type"] == "button" and btn["url"].startswith(BASE)
    text = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert "drivers: age, plan" in text and "related KPIs: conversion" in text
    assert any(b["type"] == "context" for b in blocks)  # "and 10 more alerts"


def test_runbook_url_is_templated_quoted_and_sent_in_every_format() -> None:
    rule = Rule.from_dict(
        {
            "name": "drift",
            "annotations": {
                "runbook_url": "https://wiki.example/runbooks/{alertname}?tenant={tenant}"
                "&column={column}"
            },
        }
    )
    (t,) = evaluate(rule, [result(0, tenant="acme corp", column="a&b")], {}, T0)
    alert = replace(t.after, id=7)
    url = "https://wiki.example/runbooks/drift?tenant=acme%20corp&column=a%26b"
    assert alert.annotations["runbook_url"] == url
    generic = generic_body(
        group_key="g",
        status="firing",
        receiver="hook",
        group_labels={},
        alerts=[alert],
        base_url=BASE,
    )
    assert generic["alerts"][0]["annotations"]["runbook_url"] == url  # Alertmanager's key
    assert generic["commonAnnotations"]["runbook_url"] == url
    slack = slack_body(status="firing", group_labels={}, alerts=[alert], base_url=BASE)
    buttons = slack["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Open in Driftwatch", "Runbook"]
    assert buttons[1]["url"] == url and f"<{url}|Runbook>" in slack["blocks"][1]["text"]["text"]
    event = pagerduty_event(alert, "trigger", BASE)
    assert {"href": url, "text": "Runbook"} in event["links"]


def test_a_runbook_url_that_is_no_link_is_refused_or_left_out() -> None:
    import pytest

    from alerts.rules import RuleError

    with pytest.raises(RuleError, match=r"annotations\.runbook_url="):
        Rule.from_dict({"name": "r", "annotations": {"runbook_url": "wiki/{alertname}"}})
    rule = Rule.from_dict({"name": "r", "annotations": {"runbook_url": "https://w.example/{x}"}})
    (t,) = evaluate(rule, [result(0)], {}, T0)
    alert = replace(t.after, id=1)  # {x} is no label: the template stays, the link is not sent
    assert alert.annotations["runbook_url"] == "https://w.example/{x}"
    assert [link["text"] for link in pagerduty_event(alert, "trigger", BASE)["links"]] == [
        "Alert in Driftwatch"
    ]
