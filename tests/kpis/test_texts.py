"""What a person reads of a KPI, wherever it is written: a rate moves by percentage points
("pp") and a count or an amount by a relative percentage, on every page and sentence; the
executive summary formats values and times as the pages do; the checks' messages give levels
with the KPI's unit; negatives carry the minus sign "−". Each assertion names the old text,
its control."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from monitor.kpis.checks import (
    AnomalyCheck,
    BoundsCheck,
    ChangeCheck,
    ShiftCheck,
    TargetCheck,
    run_check,
    run_checks_series,
)
from monitor.kpis.definition import KpiDefinition
from monitor.kpis.headline import headline, kpi_sentence
from monitor.kpis.summary import summarize_kpi
from monitor.kpis.tenant_sentences import tenant_sentence
from storage.types import MetricResult

DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
CONV = KpiDefinition.model_validate(
    {"name": "conversion_rate", "unit": "%", "target": 0.25, "formula": "rate(conversion, session)"}
)
ORDERS = KpiDefinition.model_validate(
    {"name": "order_value", "unit": "EUR", "target": 150, "formula": "sum(order.value)"}
)


def _row(kpi: str, day: int, value: float, status: str = "ok", **details: Any) -> Any:
    w = DAY0 + timedelta(days=day)
    return MetricResult(
        source="kpi",
        source_name=kpi,
        kind="kpi",
        model=None,
        tenant_id="acme",
        model_version="*",
        window_start=w,
        window_end=w + timedelta(days=1),
        column="",
        metric=kpi,
        value=value,
        threshold=None,
        status=status,  # type: ignore[arg-type]
        details=details,
        computed_at=w,
    )


def _rows(kpi: str, before: float, now: float) -> list[Any]:
    return [_row(kpi, d, before) for d in range(7)] + [
        _row(kpi, d, now, "warn") for d in range(7, 14)
    ]


def test_a_rate_moves_by_points_on_every_page_and_sentence() -> None:
    h = headline(CONV, "acme", _rows("conversion_rate", 0.30, 0.27))
    # controls: "▼ 10.0 % from 30 % the 7 days before" (relative), and "3 %" where the
    # relative change was not meaningful (points, written as a percentage)
    assert h.change_text() == "▼ 3 pp from 30 % the 7 days before"
    assert ", down 3 pp on the 7 days before." in kpi_sentence(h)
    assert tenant_sentence("acme", [h]).startswith(
        "acme: conversion rate 27 % against a 25 % target, down 3 pp on the 7 days before."
    )
    s = summarize_kpi(
        "conversion_rate",
        "acme",
        _row("conversion_rate", 1, 0.27, attainment=1.08),
        _row("conversion_rate", 0, 0.30),
        unit="%",
        target=0.25,
    )
    # control: "... was 27.0 % in the day of 2026-11-02, down 10.0% from 30.0 % the day before"
    assert s.sentence.startswith(
        "Conversion rate for acme was 27 % in the day of 2026-11-02, down 3 pp from 30 % the "
        "day before (the wrong way), 108 % of its target of 25 %."
    ), s.sentence
    # the number behind it stays the relative change (the API's ``change``)
    assert s.change == pytest.approx(-0.1)


def test_a_count_or_amount_moves_by_a_relative_percentage() -> None:
    h = headline(ORDERS, "acme", _rows("order_value", 200.0, 180.0))
    assert h.change_text() == "▼ 10 % from 200 EUR the 7 days before"
    assert ", down 10 % on the 7 days before." in kpi_sentence(h)
    s = summarize_kpi(
        "order_value",
        "acme",
        _row("order_value", 1, 180.0),
        _row("order_value", 0, 200.0),
        unit="EUR",
    )
    assert "was 180 EUR in the day of 2026-11-02, down 10 % from 200 EUR the day" in s.sentence
    # across zero a percentage means nothing: the amount itself, signed as a change
    h = headline(ORDERS, "acme", _rows("order_value", -20.0, 10.0))
    assert h.change_text() == "▲ 30 EUR from −20 EUR the 7 days before"


def test_the_executive_summary_formats_as_the_pages_do() -> None:
    """Its own formatter said "25.0 %", "-36.4 EUR" and "n/a"; the pages say "25 %",
    "−36.4 EUR" and "–" (``monitor.readable``, one formatter)."""
    from monitor.kpis import summary
    from monitor.readable import fmt_value

    assert summary.fmt_value is fmt_value
    assert not [n for n in vars(summary) if n in ("_fmt", "_fmt_value", "_format")]
    s = summarize_kpi("conversion_rate", "acme", _row("conversion_rate", 0, 0.25), None, unit="%")
    assert s.sentence.startswith("Conversion rate for acme was 25 % in the day of 2026-11-01.")
    s = summarize_kpi(
        "retention_value", "acme", _row("retention_value", 0, -36.4), None, unit="EUR"
    )
    assert "was −36.4 EUR in" in s.sentence, s.sentence
    hour = _row("conversion_rate", 0, 0.25)
    hour = replace(hour, window_start=DAY0 + timedelta(hours=14))
    s = summarize_kpi("conversion_rate", "acme", hour, None, unit="%", window="hour")
    # the pages' time format (control: "in the hour of 2026-11-01 14:00")
    assert "in the hour of 2026-11-01 14:00 UTC." in s.sentence, s.sentence


def test_check_messages_give_levels_with_the_kpis_unit() -> None:
    rate = {"direction": "higher", "window": "day", "unit": "%"}
    bounds = BoundsCheck.model_validate({"type": "bounds", "lower": 0.85})
    out = run_check(bounds, 0.8123, [], **rate)  # type: ignore[arg-type]
    # control: "0.8123 is below the lower bound 0.85"
    assert out.message == "81.2 % is below the lower bound 85 %"
    target = TargetCheck.model_validate({"type": "target"})
    out = run_check(target, 0.2375, [], target=0.25, **rate)  # type: ignore[arg-type]
    assert out.message == "95 % of target 25 %"  # control: "95% of target 0.25"
    change = ChangeCheck.model_validate({"type": "change", "baseline_windows": 3})
    out = run_check(change, 0.27, [0.30, 0.30, 0.30], **rate)  # type: ignore[arg-type]
    # control: "-10.0% vs the mean of the previous 3 windows (0.3)"
    assert out.message == "−3 pp (−10 % relative) vs the mean of the previous 3 windows (30 %)"
    money = run_check(
        change, 180.0, [200.0, 200.0, 200.0], direction="higher", window="day", unit="EUR"
    )
    assert money.message == "−10 % vs the mean of the previous 3 windows (200 EUR)"
    # the anomaly check, on the series path the KPI computation takes (control: "-10.0% vs
    # the median of 8 windows of previous windows (robust z -4.2)")
    values = np.array([0.30, 0.31, 0.29, 0.30, 0.305, 0.295, 0.30, 0.30, 0.27])
    anomaly = AnomalyCheck.model_validate({"type": "anomaly", "seasonal": "none"})
    (out,) = run_checks_series(anomaly, values, [8], **rate)  # type: ignore[arg-type]
    assert out.message.startswith("−3 pp vs the median of 8 windows of previous windows (30 %, ")
    assert "robust z −" in out.message and "-" not in out.message, out.message
    # the sustained shift: its level before the change with the unit
    series = np.array([0.30] * 20 + [0.22] * 8)
    shift = ShiftCheck.model_validate({"type": "shift"})
    (out,) = run_checks_series(shift, series, [27], **rate)  # type: ignore[arg-type]
    assert out.message.startswith("−8 pp vs its level before the change (30 %)"), out.message


def test_alert_and_page_texts_write_negatives_with_the_minus_sign() -> None:
    from alerts.formats import _kpi_text
    from monitor.readable import fmt_change, fmt_pct, fmt_signed

    assert (
        fmt_pct(-0.28) == "−28 %" and fmt_pct(-0.318) == "−31.8 %" and fmt_signed(-0.42) == "−0.42"
    )
    assert fmt_change(-0.03, 0.30, "%") == "−3 pp" and fmt_change(-20, 200, "EUR") == "−10 %"
    text = _kpi_text({"kpi": "conversion_rate", "change": -0.28})
    assert text == "conversion_rate (−28 %)" and "-" not in text.split(" ", 1)[1]
