"""Windows: the closed, tumbling UTC intervals ``[start, end)`` monitors and KPIs evaluate.

One module for every kind, used by monitors, KPIs, backfills, the scheduler's due windows and
the dashboard:

==========  ==================================================================================
``hour``    the UTC hour
``day``     the UTC day (midnight to midnight)
``week``    Monday 00:00 UTC to the next Monday (ISO weeks)
``month``   the calendar month in UTC (28 to 31 days)
``Nd``      N consecutive days, 1 <= N <= 366 (``14d``, ``30d``), counted from Monday
            1970-01-05, so ``7d`` is ``week`` and ``14d`` windows start on Mondays
==========  ==================================================================================

A window is named by this string in configs, the database and URLs; :func:`window` parses it
(a ValueError names the value and the choices). Windows of one kind never overlap and leave no
gap, so the window after ``w`` starts at ``w.end``; a month's length varies, so step with
:meth:`Window.shift`, never with a fixed width.

Due windows (:func:`due_windows`) are the same rule for monitors and KPIs: a window is due
once its end plus the lateness grace has passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

__all__ = [
    "BASIC",
    "MAX_DAYS",
    "Window",
    "check_window",
    "due_windows",
    "window",
]

BASIC = ("hour", "day", "week", "month")
MAX_DAYS = 366
_DAYS_RE = re.compile(r"^(\d{1,3})d$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)  # 1970-01-01 was a Thursday
CHOICES = "hour, day, week, month or Nd (N days, 1-366, e.g. 14d)"


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """A kind of window: ``name`` as configured; ``width`` for fixed-width kinds (None for a
    calendar month); ``origin`` a start of some window of this kind."""

    name: str
    width: timedelta | None
    origin: datetime

    @property
    def nominal(self) -> timedelta:
        """The usual width (a month counts 30 days): for sizes, counts and progress only."""
        return self.width if self.width is not None else timedelta(days=30)

    @property
    def calendar(self) -> bool:
        return self.width is None

    def floor(self, ts: datetime) -> datetime:
        """The start of the window holding ``ts``."""
        ts = _aware(ts)
        if self.width is None:
            return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return self.origin + ((ts - self.origin) // self.width) * self.width

    def shift(self, start: datetime, k: int) -> datetime:
        """The start ``k`` windows after (``k < 0``: before) the window starting at ``start``."""
        start = self.floor(start)
        if self.width is not None:
            return start + k * self.width
        months = start.year * 12 + (start.month - 1) + k
        return start.replace(year=months // 12, month=months % 12 + 1)

    def end(self, start: datetime) -> datetime:
        """The end of the window starting at ``start`` (the next window's start)."""
        return self.shift(start, 1)

    def starts(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Starts of the windows that begin in ``[floor(start), end)``, oldest first."""
        w, end = self.floor(start), _aware(end)
        while w < end:
            yield w
            w = self.shift(w, 1)

    def whole(self, start: datetime, end: datetime) -> list[datetime]:
        """Starts of the whole windows in ``[floor(start), end)`` (each ends by ``end``)."""
        end = _aware(end)
        return [w for w in self.starts(start, end) if self.end(w) <= end]

    def index(self, ts: datetime) -> int:
        """The number of the window holding ``ts``, counted from the origin (SQL buckets)."""
        w = self.floor(ts)
        if self.width is None:
            return (w.year - 1970) * 12 + w.month - 1
        return (w - self.origin) // self.width

    def at_index(self, index: int) -> datetime:
        """The start of window number ``index`` (inverse of :meth:`index`)."""
        if self.width is None:
            return _EPOCH.replace(year=1970 + index // 12, month=index % 12 + 1)
        return self.origin + index * self.width

    def count(self, start: datetime, end: datetime) -> int:
        """How many windows begin in ``[floor(start), end)``."""
        if self.width is not None:
            lo = self.floor(start)
            end = _aware(end)
            return max(0, -((lo - end) // self.width))
        return sum(1 for _ in self.starts(start, end))


@lru_cache(maxsize=256)
def window(name: str) -> Window:
    """The window kind called ``name`` (see the module's table); ValueError otherwise."""
    if name == "hour":
        return Window(name, timedelta(hours=1), _EPOCH)
    if name == "day":
        return Window(name, timedelta(days=1), _EPOCH)
    if name == "week":
        return Window(name, timedelta(weeks=1), _MONDAY)
    if name == "month":
        return Window(name, None, _EPOCH)
    m = _DAYS_RE.match(name) if isinstance(name, str) else None
    if m and 1 <= int(m.group(1)) <= MAX_DAYS:
        days = int(m.group(1))
        return Window(name, timedelta(days=days), _MONDAY if days > 1 else _EPOCH)
    raise ValueError(f"window {name!r} is not one of {CHOICES}")


def check_window(name: str) -> str:
    """``name`` if it is a window (pydantic validators call this); ValueError otherwise."""
    window(name)
    return name


def due_windows(
    name: str, after: datetime, now: datetime, lateness: timedelta, limit: int | None = None
) -> list[datetime]:
    """Starts of the windows from the one holding ``after`` on whose end plus ``lateness`` has
    passed by ``now``, oldest first (at most ``limit``): what a scheduler runs next."""
    w = window(name)
    out: list[datetime] = []
    start, now = w.floor(after), _aware(now)
    while w.end(start) + lateness <= now and (limit is None or len(out) < limit):
        out.append(start)
        start = w.end(start)
    return out
