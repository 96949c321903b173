"""Backtest: replay a rule over stored results and report the alerts it would have fired.

Nothing is stored and nobody is notified; the state machine is the same pure
:func:`alerts.evaluate.evaluate_all`, fed one window at a time (evaluation time = the end of
the window, or when its labels should have arrived for a ``missing_data`` rule with a
``label_delay``: stored results are final, late labels included) so ``for`` and
``keep_firing_for`` behave as they would have live.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.evaluate import evaluate_all
from alerts.rules import Rule
from storage.types import AlertRecord, MetricResult


@dataclass(frozen=True)
class Episode:
    """One alert instance the rule would have fired."""

    fingerprint: str
    labels: dict[str, str]
    active_at: datetime  # first breaching window
    fired_at: datetime  # end of the window that made it fire
    resolved_at: datetime | None  # end of the window that resolved it (None: still firing)
    windows_firing: int
    peak_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "labels": self.labels,
            "active_at": self.active_at.isoformat(),
            "fired_at": self.fired_at.isoformat(),
            "resolved_at": None if self.resolved_at is None else self.resolved_at.isoformat(),
            "windows_firing": self.windows_firing,
            "peak_value": self.peak_value,
        }


@dataclass(frozen=True)
class BacktestReport:
    rule: str
    results_seen: int
    results_matched: int
    windows: int
    episodes: list[Episode] = field(default_factory=list)

    @property
    def fired(self) -> int:
        return len(self.episodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "results_seen": self.results_seen,
            "results_matched": self.results_matched,
            "windows": self.windows,
            "fired": self.fired,
            "episodes": [e.to_dict() for e in self.episodes],
        }


def backtest(
    rule: Rule,
    results: Iterable[MetricResult],
    start: datetime | None = None,
    end: datetime | None = None,
) -> BacktestReport:
    """Replay ``rule`` over ``results`` (any order) whose window starts in ``[start, end)``.

    Returns
    -------
    BacktestReport
        One :class:`Episode` per alert instance that would have fired, in firing order.
    """
    seen = 0
    by_end: dict[datetime, list[MetricResult]] = defaultdict(list)
    for r in results:
        seen += 1
        if start is not None and r.window_start < start:
            continue
        if end is not None and r.window_start >= end:
            continue
        if rule.matches(r):
            by_end[r.window_end].append(r)
    matched = sum(len(v) for v in by_end.values())
    state: dict[str, AlertRecord] = {}
    open_: dict[int, dict[str, Any]] = {}
    episodes: list[Episode] = []
    next_id = 1
    wait = rule.label_delay or timedelta(0)
    for window_end in sorted(by_end):
        at = window_end + wait
        transitions = evaluate_all([rule], by_end[window_end], state, at).transitions
        for t in transitions:
            after = t.after
            if after.id is None:
                after = replace(after, id=next_id)
                next_id += 1
            state[t.fingerprint] = after
            assert after.id is not None
            if after.state == "firing":
                ep = open_.setdefault(
                    after.id,
                    {"alert": after, "fired_at": window_end, "windows": 0, "peak": after.value},
                )
                ep["windows"] += 1
                ep["alert"] = after
                if after.value is not None and (ep["peak"] is None or after.value > ep["peak"]):
                    ep["peak"] = after.value
            elif after.state == "resolved" and after.id in open_:
                episodes.append(_episode(open_.pop(after.id), window_end))
    for ep in open_.values():
        episodes.append(_episode(ep, None))
    episodes.sort(key=lambda e: (e.fired_at, e.fingerprint))
    return BacktestReport(rule.name, seen, matched, len(by_end), episodes)


def _episode(ep: dict[str, Any], resolved_at: datetime | None) -> Episode:
    a: AlertRecord = ep["alert"]
    return Episode(
        fingerprint=a.fingerprint,
        labels=dict(a.labels),
        active_at=a.active_at,
        fired_at=ep["fired_at"],
        resolved_at=resolved_at,
        windows_firing=ep["windows"],
        peak_value=ep["peak"],
    )
