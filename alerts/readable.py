"""What people read: times and values as every page, notification text and CLI table shows
them. One formatter each, so an alert's description, its Slack lines, its page and the KPI
pages say the same thing the same way. Machine fields (the webhook's ``startsAt``, the API's
times, ``--json``) stay ISO 8601 / RFC 3339; only text written for a person uses these.

The dashboard reaches them through :mod:`monitor.readable` (it imports ``monitor`` only).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["MINUS", "fmt_change", "fmt_pct", "fmt_signed", "fmt_time", "fmt_value"]

# people read the minus sign, not the hyphen-minus, in front of a negative number
MINUS = "\u2212"


def fmt_time(ts: datetime | None) -> str:
    """``2026-11-25 00:00 UTC`` (``–`` for none); a naive time is taken as UTC.

    >>> fmt_time(datetime(2026, 11, 25, 1, 30, tzinfo=UTC))
    '2026-11-25 01:30 UTC'
    """
    if ts is None:
        return "–"
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_value(value: float | None, unit: str) -> str:
    """A KPI value with its unit, as the KPI pages show it.

    >>> fmt_value(0.227, "%"), fmt_value(0.25, "%"), fmt_value(-104.2, "EUR")
    ('22.7 %', '25 %', '−104 EUR')
    """
    if value is None or not math.isfinite(value):
        return "–"
    if unit == "%":
        pct = value * 100 if abs(value) <= 1.5 else value
        text = f"{pct:.1f}".removesuffix(".0")
        return f"{text} %".replace("-", MINUS)
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip().replace("-", MINUS)


def fmt_signed(x: float | None, digits: int = 2) -> str:
    """A signed number (a correlation, a z-score) with ``+`` or the minus sign.

    >>> fmt_signed(-0.4213), fmt_signed(7.84, 1)
    ('−0.42', '+7.8')
    """
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{digits}f}".replace("-", MINUS)


def fmt_pct(ratio: float | None, *, signed: bool = True, digits: int = 1) -> str:
    """A relative change (a ratio: ``0.318`` is 31.8 %), signed with ``+`` or the minus sign.

    >>> fmt_pct(-0.318), fmt_pct(0.05, digits=0), fmt_pct(0.1, signed=False)
    ('−31.8 %', '+5 %', '10 %')
    """
    if ratio is None or not math.isfinite(ratio):
        return "–"
    text = f"{ratio * 100:{'+' if signed else ''}.{digits}f}"
    if digits:
        text = text.removesuffix("." + "0" * digits)
    return f"{text} %".replace("-", MINUS)


def fmt_change(delta: float | None, before: float | None, unit: str, *, signed: bool = True) -> str:
    """How much a KPI moved from ``before`` by ``delta``, in the one way its unit allows.

    A rate (unit ``%``) moves by percentage points, ``pp`` (22.1 % from 32.5 % is
    ``−10.4 pp``: "−32 %" would read as a level); a count or an amount moves by a relative
    percentage, or by the amount itself when ``before`` is not above zero or the level
    crosses below zero (a percentage of those means nothing).

    >>> fmt_change(-0.104, 0.325, "%"), fmt_change(-20, 200, "EUR"), fmt_change(5, -3, "EUR")
    ('−10.4 pp', '−10 %', '+5 EUR')
    >>> fmt_change(-0.104, 0.325, "%", signed=False)
    '10.4 pp'
    """
    if delta is None or before is None or not (math.isfinite(delta) and math.isfinite(before)):
        return "–"
    if unit == "%":
        # rates are stored as fractions (fmt_value's rule: a level within ±1.5 is one)
        points = delta * 100 if abs(before) <= 1.5 else delta
        text = f"{points if signed else abs(points):{'+' if signed else ''}.1f}"
        return f"{text.removesuffix('.0')} pp".replace("-", MINUS)
    if before > 0 and before + delta >= 0:
        return fmt_pct(delta / before if signed else abs(delta) / before, signed=signed)
    text = fmt_value(delta if signed else abs(delta), unit)
    return "+" + text if signed and delta > 0 else text
