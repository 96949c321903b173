"""Business headlines: each KPI of a tenant as an executive reads it, in plain words.

Pure functions over a KPI's stored windows. A headline says where the KPI is now (the mean
of its recent windows, never mixing windows from before a sustained change), what it is
compared with — the level **before the change** when the shift check found one, else the
same number of windows before — how far it is from its target, and one *tone* that every
colour on the page comes from (cell, text, arrow), so they cannot disagree:

``bad``
    the newest window is flagged (``alert``), or the KPI moved to a worse level and stayed;
``watch``
    the newest window is worth a look (``warn``), or the KPI is below its target;
``neutral``
    within its usual range but worse than what it is compared with (a fall of a
    higher-is-better KPI is never shown green), a money KPI below zero, or a KPI with no
    target (green says "on track": without a target there is nothing to be on track against);
``good``
    within its usual range, on its target and not worse;
``none``
    no value yet.

No statistical vocabulary: these sentences are what the ``executive`` role reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.readable import fmt_change, fmt_value  # the one format (alert texts use it too)
from monitor.kpis.definition import KpiDefinition, Outcome
from monitor.kpis.formula import BusinessValueFormula
from storage.types import MetricResult

__all__ = [
    "DEFAULT_OUTCOMES",
    "PERIOD_WINDOWS",
    "Headline",
    "fmt_day",
    "fmt_value",
    "headline",
    "headline_dict",
    "kpi_sentence",
    "negative_note",
    "related_phrase",
    "worst_tone",
]

PERIOD_WINDOWS = 7  # "now" is the mean of up to this many recent windows
# Plain names of a binary classifier's decisions when a KPI does not name them.
_COST_ORDER: tuple[Outcome, ...] = ("fp", "fn", "tp", "tn")  # the order a note names them
_GAIN_ORDER: tuple[Outcome, ...] = ("tp", "tn", "fp", "fn")
DEFAULT_OUTCOMES: dict[Outcome, str] = {
    "tp": "cases caught",
    "fp": "false alarms acted on",
    "tn": "cases rightly left alone",
    "fn": "cases missed",
}
_WINDOW_NOUN = {"hour": "hours", "day": "days", "week": "weeks", "month": "months"}
TONE_RANK = {"none": -1, "good": 0, "neutral": 1, "watch": 2, "bad": 3}


@dataclass(frozen=True)
class Headline:
    """One KPI of one tenant, as the business overview shows it."""

    kpi: str
    title: str  # "conversion rate"
    tenant_id: str
    unit: str
    direction: str
    window: str
    target: float | None
    level: float | None  # the mean of the recent windows
    level_windows: int
    latest_start: datetime | None
    before: float | None  # what ``level`` is compared with
    before_label: str  # "before 13 Nov", "the 7 days before", ""
    since: datetime | None  # a sustained change to a worse level began
    change: float | None  # relative change of level against before (None: not meaningful)
    change_abs: float | None
    attainment: float | None  # level against target (target / level when lower is better)
    status: str  # of the newest window
    tone: str
    negative: str | None  # why a money KPI is below zero, when it is
    alert_since: datetime | None  # an open business alert, since its first window
    checks: dict[str, str] = field(default_factory=dict)  # the newest window's check statuses
    # windows of the level (``level_windows``) before the newest one that were flagged
    flagged: tuple[datetime, ...] = ()
    # windows of the level whose value is (partly) estimated: business value, labels not in
    estimated: int = 0

    @property
    def arrow(self) -> str:
        if self.change_abs is None or self.change_abs == 0:
            return ""
        return "▲" if self.change_abs > 0 else "▼"

    @property
    def worse(self) -> bool | None:
        if self.change_abs is None:
            return None
        return (self.change_abs < 0) == (self.direction == "higher") and self.change_abs != 0

    @property
    def at_risk(self) -> bool:
        return self.tone in ("bad", "watch")

    def change_text(self) -> str:
        """ "▼ 10.4 pp from 32.5 % before 13 Nov": a rate by percentage points, a count or
        an amount by a relative percentage (``readable.fmt_change``)."""
        if self.change_abs is None or self.before is None:
            return "nothing to compare with yet"
        if self.change_abs == 0:
            return f"unchanged from {self.before_label}"
        size = fmt_change(self.change_abs, self.before, self.unit, signed=False)
        return f"{self.arrow} {size} from {fmt_value(self.before, self.unit)} {self.before_label}"

    def target_text(self) -> str:
        if self.target is None:
            return "no target"
        if self.attainment is None:
            return f"target {fmt_value(self.target, self.unit)}"
        return f"{self.attainment * 100:.0f} % of its {fmt_value(self.target, self.unit)} target"


def fmt_day(ts: datetime, window: str = "day") -> str:
    """``13 Nov`` (``13 Nov 14:00`` for hourly KPIs)."""
    day = f"{ts.day} {ts:%b}"
    return f"{day} {ts:%H}:00" if window == "hour" else day


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _worse(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "higher" else a > b


def _attainment(level: float | None, target: float | None, direction: str) -> float | None:
    if level is None or target is None or target == 0:
        return None
    if direction == "higher":
        return level / target
    return target / level if level > 0 else None


def negative_note(
    defn: KpiDefinition, values: Sequence[float], outcomes: Mapping[Outcome, str] | None = None
) -> str | None:
    """Why a business-value KPI is below zero, from its formula (None when it is not, or
    cannot be)."""
    f = defn.parsed
    if not isinstance(f, BusinessValueFormula) or not any(v < 0 for v in values):
        return None
    names = {**DEFAULT_OUTCOMES, **(outcomes or {})}
    unit = f" {defn.unit}" if defn.unit else ""
    weights: dict[Outcome, float] = {"tp": f.tp, "tn": f.tn, "fp": f.fp, "fn": f.fn}
    costs = [(k, -weights[k]) for k in _COST_ORDER if weights[k] < 0]
    gains = [(k, weights[k]) for k in _GAIN_ORDER if weights[k] > 0]
    if not costs:
        return None

    def items(pairs: list[tuple[Outcome, float]]) -> str:
        parts = [f"{names[k]} ({w:g}{unit} each)" for k, w in pairs]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    per = " per decision" if f.per_row else ""
    gain = f" than {items(gains)} bring in" if gains else ""
    return (
        f"{_title(defn.name).capitalize()} goes below zero{per} when {items(costs)} "
        f"cost more{gain}."
    )


def _title(name: str) -> str:
    return name.replace("_", " ")


def headline(
    defn: KpiDefinition,
    tenant_id: str,
    rows: Sequence[MetricResult],
    *,
    alert_since: datetime | None = None,
    period: int = PERIOD_WINDOWS,
) -> Headline:
    """The headline of one KPI of one tenant from its KPI rows (any order, ``metric`` = the
    KPI's name), optionally with the first window of its open business alert."""
    rs = sorted(rows, key=lambda r: r.window_start)
    valued = [r for r in rs if r.value is not None and math.isfinite(r.value)]
    last = rs[-1] if rs else None
    title = _title(defn.name)
    base = dict(
        kpi=defn.name,
        title=title,
        tenant_id=tenant_id,
        unit=defn.unit,
        direction=defn.direction,
        window=defn.window,
        target=defn.target,
        alert_since=alert_since,
    )
    if not valued or last is None:
        return Headline(
            **base,  # type: ignore[arg-type]
            level=None,
            level_windows=0,
            latest_start=None if last is None else last.window_start,
            before=None,
            before_label="",
            since=None,
            change=None,
            change_abs=None,
            attainment=None,
            status="no_data" if last is None else last.status,
            tone="none",
            negative=None,
        )
    newest = valued[-1]
    details = newest.details or {}
    since = _since(details)
    recent = [r for r in valued if since is None or r.window_start >= since][-period:]
    level = _mean([float(r.value) for r in recent])  # type: ignore[arg-type]
    noun = _WINDOW_NOUN.get(defn.window, "windows")
    before: float | None
    if since is not None and details.get("level_before") is not None:
        before = float(details["level_before"])
        label = f"before {fmt_day(since, defn.window)}"
    else:
        earlier = [
            float(r.value)
            for r in valued
            if r.value is not None and r.window_start < recent[0].window_start
        ]
        earlier = earlier[-len(recent) :]
        # a shorter history still compares, as long as it is not a window or two of noise
        enough = len(earlier) >= min(len(recent), 3)
        before = _mean(earlier) if enough else None
        label = f"the {len(earlier)} {noun} before" if before is not None else ""
    change_abs = None if before is None or level is None else level - before
    change = None
    if change_abs is not None and before is not None and before > 0 and level is not None:
        change = change_abs / before if level >= 0 else None
    attainment = _attainment(level, defn.target, defn.direction)
    status = last.status
    shifted = since is not None
    if status == "alert" or shifted:
        tone = "bad"
    elif status == "warn" or (attainment is not None and attainment < 1):
        tone = "watch"
    elif before is not None and level is not None and _worse(level, before, defn.direction):
        tone = "neutral"
    elif attainment is None:
        tone = "neutral"  # no target (or no level to compare): "on track" would be a claim
    else:
        tone = "good"
    values = [float(r.value) for r in recent if r.value is not None]  # all are (``valued``)
    negative = negative_note(defn, values, defn.outcomes)
    if tone == "good" and negative and level is not None and level < 0:
        tone = "neutral"  # losing money is never shown green, even when less than before
    checks = (last.details or {}).get("checks") or {}
    return Headline(
        **base,  # type: ignore[arg-type]
        level=level,
        level_windows=len(recent),
        latest_start=newest.window_start,
        before=before,
        before_label=label,
        since=since,
        change=change,
        change_abs=change_abs,
        attainment=attainment,
        status=status,
        tone=tone,
        negative=negative,
        checks={str(k): str(v) for k, v in dict(checks).items()},
        flagged=tuple(r.window_start for r in recent[:-1] if r.status in ("alert", "warn")),
        estimated=sum(
            (r.details or {}).get("value_basis") in ("estimated", "mixed") for r in recent
        ),
    )


def _since(details: Mapping[str, Any]) -> datetime | None:
    raw = details.get("changed_since")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        return None


def worst_tone(tones: Sequence[str]) -> str:
    return max(tones, key=lambda t: TONE_RANK.get(t, -1), default="none")


_KIND_PHRASE = {
    "feature_drift": "the {model} model's inputs changed",
    "multivariate_drift": "the {model} model's inputs changed",
    "prediction_drift": "the {model} model's predictions changed",
    "performance": "the {model} model's predictions got less accurate",
    "estimated_performance": "the {model} model's predictions likely got less accurate",
    "data_quality": "the {model} model received incomplete or invalid data",
}


def kind_phrase(kind: str, model: str) -> str:
    """What a kind of model problem means, in words: "the churn model's inputs changed"."""
    return _KIND_PHRASE.get(kind, "the {model} model changed").format(model=model)


_COLUMN_KINDS = frozenset({"feature_drift", "multivariate_drift", "data_quality"})


def related_phrase(
    signals: Sequence[Mapping[str, Any]], window: str = "day", not_after: datetime | None = None
) -> str | None:
    """The model change most associated with a KPI breach, in words: "the churn model's
    inputs changed on 12 Nov (discount_rate, tenure_months)". ``signals`` are ranked related
    signals (``KpiService.related_signals``); only ones that broke their own threshold count,
    and with ``not_after`` (the window after the KPI began to change) only ones that broke
    it by then: what started after the KPI moved cannot explain it."""

    def early(s: Mapping[str, Any]) -> bool:
        if not_after is None:
            return True
        since = s.get("breached_since")
        return since is not None and datetime.fromisoformat(str(since)) <= not_after

    breached = [s for s in signals if s.get("breached") == "alert" and early(s)] or [
        s for s in signals if s.get("breached") == "warn" and early(s)
    ]
    if not breached:
        return None
    top = breached[0]
    same = [
        s
        for s in breached
        if s.get("model") == top.get("model") and s.get("kind") == top.get("kind")
    ]
    template = _KIND_PHRASE.get(str(top.get("kind")), "the {model} model changed")
    text = template.format(model=top.get("model"))
    dates = [
        datetime.fromisoformat(str(s["breached_since"])) for s in same if s.get("breached_since")
    ]
    if dates:
        text += f" on {fmt_day(min(dates), window)}"
    columns: list[str] = []
    for s in same if top.get("kind") in _COLUMN_KINDS else ():
        col = str(s.get("column") or "")
        if col and col not in columns:
            columns.append(col)
    if columns:
        text += f" ({', '.join(columns[:3])})"
    return text


_REASONS = {
    "anomaly": "unusual for this time of the week",
    "change": "a sharp change from the previous {noun}",
    "target": "below its target",
    "bounds": "outside its set limits",
    "shift": "a change for the worse that has lasted",
}


def plain_reasons(checks: Mapping[str, str], status: str, window: str) -> list[str]:
    """The checks of a window that gave it ``status``, in plain words (no statistics)."""
    noun = _WINDOW_NOUN.get(window, "windows")
    flagged = [k for k, st in checks.items() if st == status]
    return [_REASONS.get(k, k.replace("_", " ")).format(noun=noun) for k in flagged]


def _estimated_text(h: Headline) -> str:
    """ "The last 3 of these 7 days are estimated from the model's scores (labels not in
    yet)." (the newest windows are the ones waiting for labels)"""
    noun = _WINDOW_NOUN.get(h.window, "windows")
    if h.estimated >= h.level_windows:
        which = f"All {h.level_windows} {noun}" if h.level_windows > 1 else f"The {h.window}"
    else:
        last = "last" if h.estimated == 1 else f"last {h.estimated}"
        which = f"The {last} of these {h.level_windows} {noun}"
    verb = "is" if which.startswith("The") and h.estimated == 1 else "are"
    return f"{which} {verb} estimated from the model's scores (labels not in yet)."


def _grey_text(h: Headline) -> str:
    """Why a KPI within its usual range is not green: "Worse than before and below zero."."""
    why = []
    if h.worse:
        why.append("worse than before")
    if h.negative and h.level is not None and h.level < 0:
        why.append("below zero")
    if not why:
        return "No target set, so not rated on track." if h.target is None else ""
    text = " and ".join(why)
    return text[:1].upper() + text[1:] + (" (no target set)." if h.target is None else ".")


def _range_text(h: Headline) -> str:
    """What "within its usual range" is about: each window's checks, not the average. A
    window of the period that was flagged is named (the average can hide it)."""
    noun = _WINDOW_NOUN.get(h.window, "windows")
    if not h.flagged:
        if h.level_windows <= 1:
            return f" The latest {h.window} is within its usual range."
        return f" No {h.window} of these {h.level_windows} flagged as unusual."
    days = ", ".join(fmt_day(ts, h.window) for ts in h.flagged)
    n = len(h.flagged)
    many = f"{n} of these {h.level_windows} {noun if n > 1 else h.window + 's'}"
    return (
        f" {many} {'were' if n > 1 else 'was'} flagged as unusual ({days}); "
        f"the latest {h.window} is within its usual range."
    )


def kpi_sentence(h: Headline) -> str:
    """What a KPI card says: "Conversion rate averaged 24 % over the last 5 days, 96 % of
    its 25 % target, down from 32.5 % before 13 Nov. It moved to a worse level on 13 Nov and
    has stayed there. The alert on it is open since 16 Nov." The newest window's flagged
    checks are named in plain words."""
    name = h.title[:1].upper() + h.title[1:]
    if h.level is None:
        return f"{name} has no value yet for {h.tenant_id}."
    noun = _WINDOW_NOUN.get(h.window, "windows")
    over = f"the last {h.level_windows} {noun}" if h.level_windows > 1 else f"the last {h.window}"
    text = f"{name} averaged {fmt_value(h.level, h.unit)} over {over}"
    if h.attainment is not None and h.target is not None:
        text += f", {h.attainment * 100:.0f} % of its {fmt_value(h.target, h.unit)} target"
    if h.before is not None and h.change_abs:
        way = "down" if h.change_abs < 0 else "up"
        if h.since is not None:
            text += f", {way} from {fmt_value(h.before, h.unit)} {h.before_label}"
        else:
            size = fmt_change(h.change_abs, h.before, h.unit, signed=False)
            text += f", {way} {size} on {h.before_label}"
    text += "."
    if h.estimated:  # business value before its labels are in: how much is estimated
        text += f" {_estimated_text(h)}"
    if h.since is not None:
        text += f" It moved to a worse level on {fmt_day(h.since, h.window)} and has stayed there."
    # the checks behind the newest window's status (the shift has its own sentence above)
    checks = {k: st for k, st in h.checks.items() if k != "shift"}
    reasons = plain_reasons(checks, h.status, h.window)
    if reasons and h.status in ("alert", "warn"):
        lead = "Flagged" if h.status == "alert" else "Worth a look"
        text += f" {lead} in the latest {h.window}: {', '.join(reasons)}."
    elif h.tone == "good":
        text += " On track." + _range_text(h)
    elif h.tone == "neutral":
        grey = _grey_text(h)
        text += (f" {grey}" if grey else "") + _range_text(h)
    if h.alert_since is not None:
        text += f" The alert on it is open since {fmt_day(h.alert_since, h.window)}."
    return text


def headline_dict(h: Headline) -> dict[str, Any]:
    """The JSON form of a headline (the API's executive summary)."""

    def iso(ts: datetime | None) -> str | None:
        return None if ts is None else ts.isoformat()

    return {
        "level": h.level,
        "level_windows": h.level_windows,
        "before": h.before,
        "before_label": h.before_label,
        "changed_since": iso(h.since),
        "change": h.change,
        "change_abs": h.change_abs,
        "attainment": h.attainment,
        "tone": h.tone,
        "arrow": h.arrow,
        "negative": h.negative,
        "sentence": kpi_sentence(h),
    }
