"""What a person reads in an alert's texts: times as every page shows them (``2026-01-01
00:00 UTC``, not ``2026-01-01T00:00:00+00:00``) and a KPI's value with its unit as the KPI
pages show it (``19.9 %``, not ``0.1995``). Machine fields (the webhook's ``startsAt``, the
alert's context, links) keep ISO 8601. Each assertion names the old text, its control.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from alerts.annotations import annotate
from alerts.defaults import default_rules
from alerts.evaluate import evaluate, evaluate_all, evaluate_missing
from alerts.formats import generic_body, slack_body
from alerts.rules import Rule
from alerts.series import series_labels
from alerts.transitions import SeriesSeen
from tests.alerts.helpers import T0, result

BASE = "https://dw.example"


def _rule(name: str) -> Rule:
    (rule,) = [r for r in default_rules("churn", "binary") if r.name == name]
    return rule


def _kpi(hour: int, value: float = 0.1764) -> object:
    return result(
        hour,
        source="kpi",
        monitor="conversion_rate",
        kind="kpi",
        metric="conversion_rate",
        column="",
        value=value,
        threshold=0.25,
    )


def test_a_description_says_its_window_as_pages_do() -> None:
    rule = _rule("churn-drift")
    res = result(0, column="discount_rate")
    text = annotate(rule, series_labels(rule, res), res)["description"]
    # control: "... for the window 2026-01-01T00:00:00+00:00 – 2026-01-01T01:00:00+00:00."
    assert text.endswith("for the window 2026-01-01 00:00 UTC – 2026-01-01 01:00 UTC."), text
    summary_rule = _rule("churn-drift-summary")
    res = result(0, metric="drift_share", column="", status="warn", value=0.25, threshold=None)
    text = annotate(summary_rule, series_labels(summary_rule, res), res)["description"]
    assert "found drift in the window 2026-01-01 00:00 UTC – 2026-01-01 01:00 UTC;" in text


def test_a_link_annotation_keeps_iso_times() -> None:
    """A runbook or dashboard link gets the window in ISO 8601 (a ``from=`` parameter),
    URL-quoted, whatever the description shows."""
    rule = Rule.from_dict(
        {
            "name": "r",
            "match": {"metric": "psi"},
            "annotations": {
                "runbook_url": "https://grafana.example/d?from={window_start}",
                "note": "from {window_start} ({window_start_iso})",
            },
        }
    )
    res = result(0)
    out = annotate(rule, series_labels(rule, res), res)
    assert out["runbook_url"] == "https://grafana.example/d?from=2026-01-01T00%3A00%3A00%2B00%3A00"
    assert out["note"] == "from 2026-01-01 00:00 UTC (2026-01-01T00:00:00+00:00)"


def test_a_missing_data_description_says_since_when_as_pages_do() -> None:
    rule = _rule("churn-missing-data")
    labels = {"alertname": rule.name, "tenant": "acme", "model": "churn", "kind": "data_quality"}
    seen = SeriesSeen(rule.name, "fp", labels, T0, True)
    (t,) = evaluate_missing(rule, {"fp": seen}, {}, T0 + timedelta(days=3))
    # control: "No usable results since 2026-01-01T00:00:00+00:00."
    assert t.after.annotations["description"] == "No usable results since 2026-01-01 00:00 UTC."
    assert t.after.context["last_window_end"] == "2026-01-01T00:00:00+00:00"  # machine field


def test_a_kpi_alert_shows_its_value_with_the_kpis_unit() -> None:
    rule = _rule("kpi-breach")
    out = evaluate_all([rule], [_kpi(0)], {}, T0, units={"conversion_rate": "%"})
    (t,) = out.transitions
    # control: "kpi-breach: conversion_rate of churn for tenant acme is 0.1764 (threshold 0.25)"
    # and it names its window: the KPI pages show the average of 7 windows, so "is 22.7 %"
    # read as contradicting the page's 21.4 % on the demo
    assert t.after.annotations["summary"] == (
        "kpi-breach: conversion_rate of churn for tenant acme is 17.6 % for the hour 1 Jan 00:00 "
        "(threshold 25 %)"
    )
    assert t.after.context["unit"] == "%"
    assert t.after.value == 0.1764  # the number itself is unchanged
    # a money KPI the same way; a KPI whose unit is not known keeps 4 digits
    out = evaluate_all([rule], [_kpi(0, -104.2)], {}, T0, units={"conversion_rate": "EUR"})
    (t,) = out.transitions
    assert (
        "is −104 EUR for the hour 1 Jan 00:00 (threshold 0.25 EUR)"
        in (t.after.annotations["summary"])
    )
    (t,) = evaluate_all([rule], [_kpi(0)], {}, T0).transitions
    assert "is 0.1764 for the hour 1 Jan 00:00 (threshold 0.25)" in t.after.annotations["summary"]
    assert "unit" not in t.after.context


def test_slack_lines_read_as_the_pages() -> None:
    rule = _rule("kpi-breach")
    (t,) = evaluate_all([rule], [_kpi(0)], {}, T0, units={"conversion_rate": "%"}).transitions
    alert = replace(t.after, id=7, state="firing", starts_at=T0)
    body = slack_body(status="firing", group_labels={}, alerts=[alert], base_url=BASE)
    text = body["blocks"][1]["text"]["text"]
    # control: "value 0.1995 vs threshold 0.25 · window 2026-01-01T00:00:00+00:00 –
    # 2026-01-01T01:00:00+00:00 · since 2026-01-01T00:00:00Z"
    assert (
        "value 17.6 % vs threshold 25 % · window 2026-01-01 00:00 UTC – 2026-01-01 01:00 UTC"
        " · since 2026-01-01 00:00 UTC"
    ) in text, text
    # the webhook's machine fields stay RFC 3339
    generic = generic_body(
        group_key="g",
        status="firing",
        receiver="r",
        group_labels={},
        alerts=[alert],
        base_url=BASE,
    )
    assert generic["alerts"][0]["startsAt"] == "2026-01-01T00:00:00Z"
    assert generic["driftwatch"]["alerts"][0]["context"]["window"]["start"] == (
        "2026-01-01T00:00:00+00:00"
    )


def test_a_monitor_alert_keeps_its_four_digits() -> None:
    rule = Rule.from_dict({"name": "auc", "match": {"metric": "roc_auc"}})
    res = result(0, metric="roc_auc", value=0.71234, threshold=0.75)
    (t,) = evaluate(rule, [res], {}, T0)
    assert t.after.value == 0.71234 and "unit" not in t.after.context


def test_a_daily_kpi_alert_names_its_day_as_the_kpi_page_names_its_average() -> None:
    """The demo's kpi-breach alert said "is 22.7 %" where globex's KPI page said "averaged
    21.4 % over the last 7 days": the alert now says which figure it is, one day's."""
    rule = _rule("kpi-breach")
    day = replace(_kpi(0, 0.2267), window_end=_kpi(0).window_start + timedelta(days=1))
    (t,) = evaluate_all([rule], [day], {}, T0, units={"conversion_rate": "%"}).transitions
    # control (before): "... tenant acme is 22.7 % (threshold 25 %)"
    assert "is 22.7 % for the day 1 Jan (threshold 25 %)" in t.after.annotations["summary"]
    week = replace(day, window_end=day.window_start + timedelta(days=7))
    (t,) = evaluate_all([rule], [week], {}, T0, units={"conversion_rate": "%"}).transitions
    assert "is 22.7 % for the week of 1 Jan (threshold 25 %)" in t.after.annotations["summary"]
