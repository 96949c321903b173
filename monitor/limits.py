"""Bounds on the times and ranges a caller may ask for (API, CLI, jobs).

Every route and command that takes a time checks it with :func:`check_when` (1970 to 2200:
the stores' hour arithmetic is exact there, and no monitored system logs outside it), and
every range with :func:`check_range`: ``end`` after ``start`` and a span no longer than the
limit of its kind, a setting (``max_range_days`` for listings and analyses, ``max_backfill_days``
for backfills and KPI computes). A date near year 1 or 9999 is a 422 naming the field, never
an overflow deep inside a store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.errors import FieldError, ValidationFailed

__all__ = ["EARLIEST", "LATEST", "aware", "check_range", "check_when"]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def aware(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive time is taken as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _bounds_message(field: str, ts: datetime) -> str:
    return (
        f"{field}: {ts.isoformat()} is outside the supported range "
        f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)"
    )


def check_when(ts: datetime, field: str) -> datetime:
    """``ts`` in UTC, or :class:`ValidationFailed` naming ``field`` when out of bounds."""
    try:
        value = aware(ts)
    except OverflowError:  # a naive 0001-01-01 with a negative offset cannot be converted
        raise ValidationFailed(
            _bounds_message(field, ts), [FieldError((field,), "out of range")]
        ) from None
    if not EARLIEST <= value < LATEST:
        raise ValidationFailed(_bounds_message(field, ts), [FieldError((field,), "out of range")])
    return value


def check_range(
    start: datetime,
    end: datetime,
    max_days: float,
    *,
    fields: tuple[str, str] = ("start", "end"),
    setting: str = "max_range_days",
    allow_empty: bool = False,
) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC after checking both bounds, ``end > start`` (``>=`` with
    ``allow_empty``) and the span."""
    a, b = check_when(start, fields[0]), check_when(end, fields[1])
    if b < a or (b == a and not allow_empty):
        raise ValidationFailed(
            f"{fields[1]} ({b.isoformat()}) must be after {fields[0]} ({a.isoformat()})",
            [FieldError((fields[1],), "must be after " + fields[0])],
        )
    if b - a > timedelta(days=max_days):
        raise ValidationFailed(
            f"{fields[0]}..{fields[1]} spans {(b - a).total_seconds() / 86400:.1f} days; the "
            f"limit is {max_days:g} days (setting DRIFTWATCH_{setting.upper()}): split the range",
            [FieldError((fields[1],), f"span over {max_days:g} days")],
        )
    return a, b
