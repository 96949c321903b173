"""Time ranges of the dashboard's pages: a span back from now (``range=7d``) or any
``from``/``to``, read from a page's URL parameters and checked.

* ``range=<n><h|d|w|m>`` (``24h``, ``7d``, ``30d``, ``12w``, ``6m``, ...): the ``n`` hours,
  days, weeks or calendar months before now (the process clock, ``Services.now``; ``1m`` on
  31 March starts on 28 or 29 February).
* ``from=`` / ``to=``: a date (``2026-11-01``) or a time (``2026-11-01T06:00``, UTC unless an
  offset is given). A ``to`` date includes that whole day (it ends at the next midnight), as
  a date picker's "to" reads. ``from`` alone runs to now; ``to`` alone starts
  :data:`DEFAULT_SPAN` earlier (the page says so).

A bad value raises :class:`RangeError` naming the parameter, the value and what is allowed;
nothing is replaced by a default silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from monitor import windows
from monitor.errors import InvalidInput, ValidationFailed
from monitor.limits import aware, check_range

__all__ = ["DEFAULT_RANGE", "PRESETS", "RangeError", "TimeRange", "parse_time_range"]

PRESETS = ("24h", "7d", "30d", "90d")
DEFAULT_RANGE = "30d"
DEFAULT_SPAN = timedelta(days=30)
_RELATIVE = re.compile(r"^([1-9][0-9]{0,4})([hdwm])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_UNIT_WORDS = {"h": "hours", "d": "days", "w": "weeks", "m": "months"}


def _months_back(now: datetime, n: int) -> timedelta:
    """The span from the same time ``n`` calendar months before ``now`` (the month's last day
    when that month is shorter) to ``now``."""
    if n > 1200:
        return timedelta(days=36_600)
    month = windows.window("month")
    first = month.shift(now, -n)
    last_day = (month.end(first) - timedelta(days=1)).day
    return now - now.replace(year=first.year, month=first.month, day=min(now.day, last_day))


class RangeError(InvalidInput):
    """A page's time range parameters are not valid; ``errors`` has one sentence each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(" ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in UTC; ``relative`` is the span back from now (``"7d"``) when the
    range was given that way, else None; ``note`` says what was assumed (``to`` alone)."""

    start: datetime
    end: datetime
    relative: str | None = None
    note: str = ""

    @property
    def key(self) -> str:
        """``"7d"`` for a relative range, ``"custom"`` for from/to (cache keys, labels)."""
        return self.relative or "custom"

    def params(self) -> dict[str, str]:
        """URL parameters that give this range again."""
        if self.relative:
            return {"range": self.relative}
        return {"from": _iso(self.start), "to": _iso(self.end, end=True)}

    @property
    def label(self) -> str:
        if not self.relative and _midnight(self.start) and _midnight(self.end):
            last = self.end - timedelta(days=1)
            days = (
                f"{self.start:%Y-%m-%d}"
                if last == self.start
                else f"{self.start:%Y-%m-%d} to {last:%Y-%m-%d}"
            )
            return f"{days} (whole days, UTC)" + (f", {self.note}" if self.note else "")
        span = f"{_show(self.start)} – {_show(self.end)} UTC"
        if self.relative:
            n, unit = _RELATIVE.match(self.relative).groups()  # type: ignore[union-attr]
            return f"last {n} {_UNIT_WORDS[unit] if n != '1' else _UNIT_WORDS[unit][:-1]} ({span})"
        return span + (f" ({self.note})" if self.note else "")


def _midnight(ts: datetime) -> bool:
    return ts.hour == ts.minute == ts.second == ts.microsecond == 0


def _show(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d") if ts.hour == ts.minute == 0 else ts.strftime("%Y-%m-%d %H:%M")


def _iso(ts: datetime, end: bool = False) -> str:
    """A URL value for ``ts``: a date at midnight (an end date is the day before: ``to``
    dates include their day), else minutes."""
    if ts.hour == ts.minute == ts.second == ts.microsecond == 0:
        return (ts - timedelta(days=1) if end else ts).strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%dT%H:%M")


def date_inputs(tr: TimeRange) -> tuple[str, str]:
    """Values for ``<input type=date>`` from and to (the to-date is the last day included)."""
    last = tr.end - timedelta(microseconds=1)
    return tr.start.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")


def _when(name: str, raw: str, errors: list[str], *, end: bool) -> datetime | None:
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            ts = datetime(day.year, day.month, day.day)
            return aware(ts + timedelta(days=1) if end else ts)
        return aware(datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T")))
    except (ValueError, OverflowError):
        errors.append(
            f"{name}={raw!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM, UTC)."
        )
        return None


def parse_time_range(
    params: Mapping[str, Any],
    now: datetime,
    max_days: float,
    default: str = DEFAULT_RANGE,
) -> TimeRange:
    """The range a page's URL parameters ``range`` / ``from`` / ``to`` give (``default``
    back from ``now`` when none is given).

    Raises
    ------
    RangeError
        Naming each bad parameter: an unreadable value, both ``range`` and ``from``/``to``,
        ``from`` not before ``to``, a span over ``max_days`` or outside 1970-2200.
    """
    raw = {k: str(params[k]).strip() for k in ("range", "from", "to") if params.get(k)}
    errors: list[str] = []
    if "range" in raw and ("from" in raw or "to" in raw):
        raise RangeError(["Give either range= or from=/to=, not both."])
    if "from" not in raw and "to" not in raw:
        key = raw.get("range", default)
        m = _RELATIVE.match(key)
        if m is None:
            raise RangeError(
                [
                    f"range={key!r} is not a span back from now: a number and h, d, w or m "
                    f"(e.g. {', '.join(PRESETS)}); for dates use from= and to=."
                ]
            )
        n, unit = int(m.group(1)), m.group(2)
        span = _months_back(now, n) if unit == "m" else _UNITS[unit] * n
        if span > timedelta(days=max_days):
            raise RangeError(
                [f"range={key!r} is longer than the {max_days:g} days allowed (max_range_days)."]
            )
        return TimeRange(now - span, now, key)
    start = _when("from", raw["from"], errors, end=False) if "from" in raw else None
    end = _when("to", raw["to"], errors, end=True) if "to" in raw else None
    if errors:
        raise RangeError(errors)
    note = ""
    if end is None:
        end, note = now, "to now"
    if start is None:
        start, note = end - DEFAULT_SPAN, f"{DEFAULT_SPAN.days} days before 'to'"
    if start >= end:
        raise RangeError([f"from ({_show(start)}) must be before to ({_show(end)})."])
    try:
        start, end = check_range(start, end, max_days, fields=("from", "to"))
    except ValidationFailed as exc:
        raise RangeError([f"{exc}."]) from None
    return TimeRange(start, end, None, note)
