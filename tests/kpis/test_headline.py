"""Business headlines (``monitor/kpis/headline.py``): the level now against before and target,
one tone per KPI (a fall is never good), plain sentences, why a money KPI is negative, and the
model change likely related."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.kpis.definition import KpiDefinition
from monitor.kpis.headline import (
    fmt_value,
    headline,
    kpi_sentence,
    negative_note,
    related_phrase,
)
from monitor.kpis.tenant_sentences import tenant_sentence
from storage.types import MetricResult

DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
CONV = KpiDefinition.model_validate(
    {"name": "conversion_rate", "unit": "%", "target": 0.25, "formula": "rate(conversion, session)"}
)


def _row(day: int, value: float | None, status: str = "ok", **details: Any) -> MetricResult:
    w = DAY0 + timedelta(days=day)
    return MetricResult(
        source="kpi",
        source_name="conversion_rate",
        kind="kpi",
        model=None,
        tenant_id="globex",
        model_version="*",
        window_start=w,
        window_end=w + timedelta(days=1),
        column="",
        metric="conversion_rate",
        value=value,
        threshold=0.25,
        status=status,  # type: ignore[arg-type]
        details=details,
        computed_at=w,
    )


def test_a_sustained_fall_is_compared_with_the_level_before_it() -> None:
    since = DAY0 + timedelta(days=12)
    rows = [_row(d, 0.33) for d in range(12)]
    rows += [_row(d, 0.227, "alert") for d in range(12, 19)]
    rows[-1] = _row(
        18,
        0.227,
        "alert",
        level_before=0.33,
        changed_since=since.isoformat(),
        checks={"anomaly": "ok", "shift": "alert", "target": "warn"},
    )
    h = headline(CONV, "globex", rows, alert_since=DAY0 + timedelta(days=13))
    assert h.level == pytest.approx(0.227) and h.level_windows == 7
    assert h.before == 0.33 and h.before_label == "before 13 Nov"
    assert h.change == pytest.approx(0.227 / 0.33 - 1)
    assert h.tone == "bad" and h.arrow == "▼" and h.worse
    # a rate moves by percentage points (control: "▼ 31.2 % from 33 % before 13 Nov")
    assert h.change_text() == "▼ 10.3 pp from 33 % before 13 Nov"
    assert h.target_text() == "91 % of its 25 % target"
    assert tenant_sentence("globex", [h], "the churn model's inputs changed on 12 Nov (x)") == (
        "globex: conversion rate 22.7 % against a 25 % target, down from 33 % since 13 Nov; "
        "likely related: the churn model's inputs changed on 12 Nov (x). "
        "The alert on it is open since 14 Nov."
    )
    text = kpi_sentence(h)
    assert text.startswith("Conversion rate averaged 22.7 % over the last 7 days, 91 % of its")
    assert "moved to a worse level on 13 Nov and has stayed there" in text
    assert "Flagged in the latest day: below its target" not in text  # target only warns
    # the windows since the change only: the level is not diluted by the weeks before
    rows[-1] = _row(
        18, 0.227, "alert", level_before=0.33, changed_since=(DAY0 + timedelta(days=16)).isoformat()
    )
    assert headline(CONV, "globex", rows).level_windows == 3


@pytest.mark.parametrize(
    ("before", "now", "status", "tone"),
    [
        (0.30, 0.31, "ok", "good"),
        (0.30, 0.299, "ok", "neutral"),  # a fall, however small, is never green
        (0.30, 0.26, "warn", "watch"),
        (0.30, 0.24, "ok", "watch"),  # below target without a target check
        (0.30, 0.20, "alert", "bad"),
    ],
)
def test_tone_follows_direction_status_and_target(
    before: float, now: float, status: str, tone: str
) -> None:
    rows = [_row(d, before) for d in range(7)] + [_row(d, now, status) for d in range(7, 14)]
    h = headline(CONV, "acme", rows)
    assert h.tone == tone and h.before_label == "the 7 days before"
    # a target it meets (without one a KPI is never green: nothing to be on track against)
    lower = CONV.model_copy(update={"direction": "lower", "target": 0.35})
    flipped = headline(lower, "acme", rows)
    assert flipped.worse == (now > before)  # for a lower-is-better KPI a rise is worse
    if status == "ok" and now < before:
        assert flipped.tone == "good"


def test_no_value_and_no_history() -> None:
    assert headline(CONV, "x", []).tone == "none"
    h = headline(CONV, "x", [_row(0, 0.3), _row(1, 0.31)])
    assert h.before is None and h.change_text() == "nothing to compare with yet"


def test_a_money_kpi_below_zero_says_why_from_its_formula() -> None:
    spec = {
        "name": "retention_value",
        "unit": "EUR",
        "model": "churn",
        "formula": "business_value(tp=50, fp=-5, tn=1, fn=-10)",
    }
    named = KpiDefinition.model_validate(
        {
            **spec,
            "outcomes": {
                "tp": "caught churners",
                "fp": "wasted offers",
                "tn": "kept customers",
                "fn": "missed churners",
            },
        }
    )
    assert negative_note(named, [12.0, -3.0], named.outcomes) == (
        "Retention value goes below zero when wasted offers (5 EUR each) and missed churners "
        "(10 EUR each) cost more than caught churners (50 EUR each) and kept customers "
        "(1 EUR each) bring in."
    )
    assert negative_note(named, [12.0, 3.0], named.outcomes) is None  # never negative here
    # below zero but better than before: not green
    rows = [_row(d, -40.0) for d in range(7)] + [_row(d, -20.0) for d in range(7, 14)]
    h = headline(named, "acme", rows)
    assert h.arrow == "▲" and not h.worse and h.tone == "neutral"
    # above zero and steady, but no target: grey, and the sentence says why
    steady = headline(named, "acme", [_row(d, v + 60) for d, v in enumerate([-40.0] * 14)])
    assert steady.tone == "neutral" and "No target set, so not rated on track." in (
        kpi_sentence(steady)
    )
    generic = KpiDefinition.model_validate(spec)
    assert "false alarms acted on (5 EUR each)" in str(negative_note(generic, [-1.0]))
    assert negative_note(CONV, [-1.0]) is None  # not a money formula
    with pytest.raises(ValueError, match="outcomes: only business_value formulas"):
        KpiDefinition.model_validate({**CONV.to_spec(), "outcomes": {"tp": "x"}})


def test_related_phrase_names_what_changed_no_later_than_the_kpi() -> None:
    def sig(col: str, kind: str, since: str | None, breached: str | None = "alert") -> dict:
        return {
            "model": "churn",
            "kind": kind,
            "column": col,
            "breached": breached,
            "breached_since": since,
        }

    signals = [
        sig("support_tickets", "feature_drift", "2026-11-16T00:00:00+00:00"),  # after: no
        sig("discount_rate", "feature_drift", "2026-11-14T00:00:00+00:00"),
        sig("score", "prediction_drift", "2026-11-14T00:00:00+00:00"),
        sig("tenure_months", "feature_drift", "2026-11-13T00:00:00+00:00"),
        sig("plan", "feature_drift", None, None),  # moved along, never breached: no
    ]
    cut = datetime(2026, 11, 14, tzinfo=UTC)
    assert related_phrase(signals, not_after=cut) == (
        "the churn model's inputs changed on 13 Nov (discount_rate, tenure_months)"
    )
    assert related_phrase(signals[:1], not_after=cut) is None
    assert related_phrase([sig("score", "prediction_drift", "2026-11-14T00:00:00+00:00")]) == (
        "the churn model's predictions changed on 14 Nov"
    )


def test_values_read_like_a_report() -> None:
    assert fmt_value(0.25, "%") == "25 %" and fmt_value(0.2274, "%") == "22.7 %"
    assert fmt_value(-104.2, "EUR") == "−104 EUR" and fmt_value(3.456, "") == "3.46"


RETENTION = KpiDefinition.model_validate(
    {
        "name": "retention_value",
        "unit": "EUR",
        "model": "churn",
        "formula": "business_value(tp=50, fp=-5, tn=1, fn=-10)",
    }
)
# The demo's retention values (EUR a day, 26 Nov - 2 Dec 2026, the 7 days before first):
# globex at risk (its conversion collapsed) read green "On track ▲ 48.4 %"; acme's −64.6 EUR
# (▼ 65.7) read "Within its usual range." with 29 Nov flagged inside the 7 days averaged;
# the last 3 days are estimated from the model's scores (labels not in yet).
GLOBEX_RV = [-142.0, 235.0, -25.0, 132.0, 230.0, 141.0, -57.0]
GLOBEX_RV += [-49.0, 148.0, 66.0, 92.0, 177.5, 83.4, 244.8]
ACME_RV = [40.0, -69.0, 81.0, 40.0, 0.0, -4.0, -80.0]
ACME_RV += [-105.0, -89.0, -54.0, -97.0, -43.8, -46.4, -16.8]
BASIS = ["realized"] * 11 + ["mixed", "estimated", "estimated"]


def _rv(values: list[float], flagged: int | None = None) -> list[MetricResult]:
    return [
        replace(
            _row(d, v, "alert" if d == flagged else "ok", value_basis=BASIS[d]),
            source_name="retention_value",
            metric="retention_value",
        )
        for d, v in enumerate(values)
    ]


def test_a_kpi_with_no_target_is_never_on_track() -> None:
    """globex's retention value rose 48 % (3 of its 7 days estimated) while globex is the
    tenant at risk: it was green "On track", a claim about a target it does not have."""
    h = headline(RETENTION, "globex", _rv(GLOBEX_RV))
    assert h.change_text() == "▲ 48.4 % from 73.4 EUR the 7 days before"
    assert h.tone == "neutral"  # control (before): "good", a green cell
    text = kpi_sentence(h)
    assert "On track" not in text, text  # control: "... up 48.4 % on the 7 days before. On track."
    assert text == (
        "Retention value averaged 109 EUR over the last 7 days, up 48.4 % on the 7 days before. "
        "The last 3 of these 7 days are estimated from the model's scores (labels not in yet). "
        "No target set, so not rated on track. No day of these 7 flagged as unusual."
    )
    # with a target it meets, the same values are green and on track
    met = headline(RETENTION.model_copy(update={"target": 100.0}), "globex", _rv(GLOBEX_RV))
    assert met.tone == "good" and " On track." in kpi_sentence(met)


def test_within_its_usual_range_names_a_flagged_day_the_average_hides() -> None:
    """acme's −64.6 EUR (▼ 65.7) read "Within its usual range." though 29 Nov, one of the 7
    days averaged, was flagged (its kpi-breach alert): the words now say what is in range
    (each day, not the average) and name the flagged day."""
    h = headline(RETENTION, "acme", _rv(ACME_RV, flagged=10))
    assert h.change_text() == "▼ 65.7 EUR from 1.14 EUR the 7 days before"
    assert h.tone == "neutral" and h.flagged == (DAY0 + timedelta(days=10),)
    text = kpi_sentence(h)
    assert "Within its usual range." not in text, text  # control: the old sentence's end
    assert text.endswith(
        " The last 3 of these 7 days are estimated from the model's scores (labels not in yet). "
        "Worse than before and below zero (no target set). 1 of these 7 days was flagged as "
        "unusual (11 Nov); the latest day is within its usual range."
    ), text
    # nothing flagged: it says each day was in range, not that the average is
    calm = kpi_sentence(headline(RETENTION, "acme", _rv(ACME_RV)))
    assert calm.endswith("(no target set). No day of these 7 flagged as unusual."), calm
