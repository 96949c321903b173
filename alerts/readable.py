"""What people read: times and values as every page, notification text and CLI table shows
them. One formatter each, so an alert's description, its Slack lines, its page and the KPI
pages say the same thing the same way. Machine fields (the webhook's ``startsAt``, the API's
times, ``--json``) stay ISO 8601 / RFC 3339; only text written for a person uses these.

The dashboard reaches them through :mod:`monitor.readable` (it imports ``monitor`` only).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["fmt_time", "fmt_value"]


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
        return f"{text} %".replace("-", "−")
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip().replace("-", "−")
