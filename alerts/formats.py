"""Notification bodies: generic (Alertmanager webhook v4 + ``driftwatch``), Slack, PagerDuty.

- Generic: the fields of Alertmanager's ``webhook_config`` payload, version "4" (``version``,
  ``groupKey``, ``truncatedAlerts``, ``status``, ``receiver``, ``groupLabels``,
  ``commonLabels``, ``commonAnnotations``, ``externalURL``, ``alerts[]`` with ``status``,
  ``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``), so
  existing Alertmanager receivers work unchanged, plus a ``driftwatch`` object with the context
  (metric, value, threshold, sample sizes, window, reference, ranked drivers, related KPIs, link).
  https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
- Slack incoming webhook: ``text`` (the fallback shown in notifications) and ``blocks``
  (header ≤ 150 characters, section text ≤ 3000, at most 50 blocks), with a "Runbook" link
  per alert and button when the rule has a ``runbook_url`` annotation.
  https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks
- PagerDuty Events API v2: one event per alert, ``event_action`` trigger / acknowledge /
  resolve, ``dedup_key`` = the alert's fingerprint, ``payload.summary`` (≤ 1024) / ``source``
  / ``severity`` / ``custom_details``, ``links`` (the alert page, and the ``runbook_url``
  annotation as "Runbook"). The routing key is a secret: the delivery
  worker adds it at send time so it is never stored in the outbox.
  https://developer.pagerduty.com/docs/events-api-v2/trigger-events/

Bodies are built once, when the notification is written, and stored as the exact text every
attempt sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from alerts.readable import fmt_change, fmt_pct, fmt_time, fmt_value
from storage.types import AlertRecord

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert
SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_MAX_ALERTS = 20  # each alert is one section; the rest are counted in a context line
PD_SUMMARY_MAX = 1024
PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def iso(ts: datetime | None) -> str:
    if ts is None:
        return ZERO_TIME
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dumps(body: Mapping[str, Any]) -> str:
    """The exact text sent: compact, keys in insertion order, non-ASCII kept."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def since(alert: AlertRecord) -> datetime:
    """Since when the problem exists: the start of the first breaching window (data time)."""
    return alert.starts_at or alert.active_at


def runbook_url(alert: AlertRecord) -> str:
    """The alert's ``runbook_url`` annotation (Alertmanager's convention), "" without one, or
    when a placeholder could not be filled (a link with ``{x}`` in it would be broken)."""
    url = alert.annotations.get("runbook_url", "")
    return "" if "{" in url or not url.startswith(("http://", "https://")) else url


def alert_link(base_url: str, alert: AlertRecord) -> str:
    return f"{base_url.rstrip('/')}/alerts/{alert.id}"


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def _status(alert: AlertRecord) -> str:
    return "firing" if alert.state == "firing" else "resolved"


def generic_body(
    *,
    group_key: str,
    status: str,
    receiver: str,
    group_labels: Mapping[str, str],
    alerts: Sequence[AlertRecord],
    base_url: str,
    notification_reason: str = "",
    announced: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """Alertmanager webhook v4 body with Driftwatch's context object added.

    ``startsAt`` is the start of the alert's first breaching window (data time: an alert found
    by a backfill carries its historical start) and ``endsAt`` the start of the window that
    resolved it; ``driftwatch.alerts[].fired_at`` is when Driftwatch fired it (wall clock) and
    ``new`` says whether this notification is the first to report it firing (``announced``).
    """
    labels = [a.labels for a in alerts]
    annotations = [a.annotations for a in alerts]
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": _common(labels),
        "commonAnnotations": _common(annotations),
        "externalURL": base_url,
        "alerts": [
            {
                "status": _status(a),
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": iso(since(a)),
                "endsAt": iso(a.ends_at) if a.state == "resolved" else ZERO_TIME,
                "generatorURL": alert_link(base_url, a),
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
        "driftwatch": {
            "reason": notification_reason,
            "alerts": [
                {
                    "id": a.id,
                    "fingerprint": a.fingerprint,
                    "rule": a.rule,
                    "severity": a.severity,
                    "state": a.state,
                    "since": iso(since(a)),
                    "fired_at": iso(a.fired_at) if a.fired_at else None,
                    "resolved_at": iso(a.resolved_at) if a.resolved_at else None,
                    "new": a.id in announced,
                    "acknowledged_by": a.acknowledged_by,
                    "acknowledged_at": iso(a.acknowledged_at) if a.acknowledged_at else None,
                    "link": alert_link(base_url, a),
                    "context": dict(a.context),
                }
                for a in alerts
            ],
        },
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def _when(text: Any) -> str:
    """An ISO time of an alert's context as people read it (``?`` when absent)."""
    try:
        return fmt_time(datetime.fromisoformat(str(text)))
    except ValueError:
        return "?"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kpi_text(k: Any) -> str:
    if not isinstance(k, Mapping):
        return str(k)
    name = str(k.get("kpi", k.get("name", "?")))
    change = k.get("change")
    before, during = k.get("before"), k.get("during")
    unit = k.get("unit")
    if isinstance(before, int | float) and isinstance(during, int | float):
        if unit == "%":  # a rate moves by points, as on the KPI pages: "(−10.4 pp)"
            return f"{name} ({fmt_change(during - before, before, unit)})"
        # a percentage means little across or near zero (a money KPI: "+2093.0%")
        odd = not (before > 0 and during > 0) or abs(during / before - 1) > 1
        odd = odd or not isinstance(change, int | float)
        if not odd:
            return f"{name} ({fmt_pct(change)})"
        if isinstance(unit, str):  # as the KPI pages show it: "(−5.43 EUR → 150 EUR)"
            return f"{name} ({fmt_value(before, unit)} → {fmt_value(during, unit)})"
        return f"{name} ({fmt_value(before, '')} → {fmt_value(during, '')})"
    return f"{name} ({fmt_pct(change)})" if isinstance(change, int | float) else name


def _alert_lines(a: AlertRecord, base_url: str) -> str:
    ctx = a.context
    icon = ":red_circle:" if a.state == "firing" else ":white_check_mark:"
    lines = [f"{icon} *<{alert_link(base_url, a)}|{a.annotations.get('summary', a.rule)}>*"]
    runbook = runbook_url(a)
    if runbook:
        lines.append(f"<{runbook}|Runbook>")
    window = ctx.get("window") or {}
    unit = ctx.get("unit")  # a KPI's: its value as the KPI pages show it
    value, threshold = (
        (fmt_value(a.value, unit), fmt_value(a.threshold, unit))
        if isinstance(unit, str)
        else (_fmt(a.value), _fmt(a.threshold))
    )
    facts = [
        f"value {value} vs threshold {threshold}",
        f"window {_when(window.get('start'))} – {_when(window.get('end'))}" if window else "",
        f"since {fmt_time(since(a))}",
    ]
    for key in ("current_size", "reference_size", "sample_size", "reference"):
        if key in ctx:
            facts.append(f"{key.replace('_', ' ')} {_fmt(ctx[key])}")
    lines.append(" · ".join(f for f in facts if f))
    drivers = ctx.get("drivers")
    if isinstance(drivers, list) and drivers:
        names = [str(d.get("name", d)) if isinstance(d, Mapping) else str(d) for d in drivers[:5]]
        lines.append("drivers: " + ", ".join(names))
    kpis = ctx.get("related_kpis")
    if isinstance(kpis, list) and kpis:
        names = [_kpi_text(k) for k in kpis[:5]]
        lines.append("related KPIs: " + ", ".join(names))
    if a.acknowledged_by:
        lines.append(f"acknowledged by {a.acknowledged_by}")
    return _clip("\n".join(lines), SLACK_SECTION_MAX)


def slack_body(
    *,
    status: str,
    group_labels: Mapping[str, str],
    alerts: Sequence[AlertRecord],
    base_url: str,
) -> dict[str, Any]:
    """Slack incoming-webhook message: a text fallback and Block Kit blocks."""
    firing = sum(1 for a in alerts if a.state == "firing")
    resolved = len(alerts) - firing
    where = ", ".join(f"{k}={v}" for k, v in group_labels.items() if v)
    head = f"[{status.upper()}{':' + str(firing) if firing else ''}] {where}".strip()
    text = f"{head} — {firing} firing, {resolved} resolved"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(head, SLACK_HEADER_MAX)}}
    ]
    for a in alerts[:SLACK_MAX_ALERTS]:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _alert_lines(a, base_url)}}
        )
    if len(alerts) > SLACK_MAX_ALERTS:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"and {len(alerts) - SLACK_MAX_ALERTS} more alerts"}
                ],
            }
        )
    first = alerts[0] if alerts else None
    if first is not None:
        buttons: list[dict[str, Any]] = [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in Driftwatch"},
                "url": alert_link(base_url, first),
            }
        ]
        if runbook_url(first):
            buttons.append(
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Runbook"},
                    "url": runbook_url(first),
                }
            )
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": text, "blocks": blocks}


def pagerduty_event(
    alert: AlertRecord, action: str, base_url: str, client: str = "Driftwatch"
) -> dict[str, Any]:
    """One PagerDuty Events v2 event (without ``routing_key``, added at send time)."""
    link = alert_link(base_url, alert)
    event: dict[str, Any] = {"event_action": action, "dedup_key": alert.fingerprint}
    if action != "trigger":
        return event
    source = f"{alert.model or 'driftwatch'}/{alert.tenant_id}"
    event["payload"] = {
        "summary": _clip(alert.annotations.get("summary", alert.rule), PD_SUMMARY_MAX),
        "source": source,
        "severity": PD_SEVERITY.get(alert.severity, "warning"),
        "timestamp": iso(since(alert)),
        "component": alert.model or None,
        "group": alert.tenant_id,
        "class": alert.labels.get("kind", alert.rule),
        "custom_details": {
            "description": alert.annotations.get("description", ""),
            "since": iso(since(alert)),
            "fired_at": iso(alert.fired_at) if alert.fired_at else None,
            "labels": dict(alert.labels),
            **dict(alert.context),
        },
    }
    event["links"] = [{"href": link, "text": "Alert in Driftwatch"}]
    if runbook_url(alert):
        event["links"].append({"href": runbook_url(alert), "text": "Runbook"})
    event["client"] = client
    event["client_url"] = link
    return event


def sample_alert(now: datetime) -> AlertRecord:
    """A made-up alert for ``driftwatch channels test``."""
    return AlertRecord(
        id=0,
        fingerprint="0000000000000000",
        rule="driftwatch-test",
        state="firing",
        severity="info",
        tenant_id="example-tenant",
        model="example-model",
        labels={"alertname": "driftwatch-test", "severity": "info", "tenant": "example-tenant"},
        annotations={
            "summary": "Test notification from Driftwatch",
            "description": "Sent by `driftwatch channels test`; no action needed.",
        },
        value=0.42,
        threshold=0.2,
        breach_streak=1,
        clear_streak=0,
        last_window_end=now,
        active_at=now,
        starts_at=now,
        ends_at=None,
        updated_at=now,
        context={"metric": "psi", "value": 0.42, "threshold": 0.2, "test": True},
        fired_at=now,
    )
