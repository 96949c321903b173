"""Pure alert evaluation: (rules, new results, previous state) → transitions.

Every window of a series (rule × model × tenant × monitor × metric × column) moves its alert
along ``pending → firing → resolved``:

- a breaching window adds one to ``breach_streak``; the alert is ``pending`` until the streak
  reaches the rule's ``for`` and then ``firing``;
- a clear window drops a ``pending`` alert (it resolves without ever having fired, so nobody
  is told) and counts towards ``keep_firing_for`` on a ``firing`` one, which resolves on the
  first clear window after that many;
- ``no_data`` changes nothing for threshold rules (it neither fires nor resolves, and the
  window is not counted as evaluated: when late labels give it data, its re-run is judged);
  it is what ``missing_data`` rules watch, together with series that stopped reporting (see
  :func:`evaluate_missing`); a ``missing_data`` rule's ``label_delay`` leaves realized
  performance windows unjudged until their labels should have arrived;
- a window at or before the last one evaluated is ignored, so re-running a window or
  replaying results is idempotent;
- after ``resolved`` the next breach opens a new instance (a new ``id``) under the same
  fingerprint.

Nothing here does I/O; ``alerts.engine`` loads the state and stores the transitions.
"""

from __future__ import annotations

import hashlib
import json
import math
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alerts.rules import Rule, is_url_annotation
from storage.types import ALL, AlertRecord, MetricResult

# Keys of MetricResult.details copied into an alert's context for notifications.
CONTEXT_KEYS = (
    "p_value",
    "method",
    "reference",
    "reference_size",
    "current_size",
    "sample_size",
    "n_reference",
    "n_current",
    "drivers",
    "drifted_columns",
    "related_kpis",
    "tenants",
    "estimated",
    "lower",
    "upper",
)


@dataclass(frozen=True)
class Transition:
    """One alert record written by an evaluation.

    ``change`` is the new state when it changed (``pending``, ``firing``, ``resolved``),
    ``cleared`` for a pending alert that resolved without firing, or ``updated`` when only
    the streaks, value or context moved.
    """

    fingerprint: str
    before: AlertRecord | None
    after: AlertRecord
    change: str

    @property
    def notifies(self) -> bool:
        """Whether the change is one receivers hear about (firing or resolved after firing)."""
        return self.change == "firing" or (
            self.change == "resolved" and self.after.starts_at is not None
        )


@dataclass(frozen=True)
class SeriesSeen:
    """The newest window a rule saw for a series (what ``missing_data`` rules watch).

    For a series computed from labels (``Rule.label_wait``) only windows with data count;
    when a batch held none, ``has_data`` is False and ``last_window_end`` is the start of its
    first window: where the silence starts for a series never seen with data.
    """

    rule: str
    fingerprint: str
    labels: dict[str, str]
    last_window_end: datetime
    has_data: bool = True


@dataclass(frozen=True)
class Evaluation:
    transitions: list[Transition] = field(default_factory=list)
    seen: dict[str, SeriesSeen] = field(default_factory=dict)


# Keys under which a ``no_data`` result counts the rows it had (too few to judge): ``n_current``
# for drift, ``n`` for realized (labelled rows) and estimated performance.
ROW_COUNT_KEYS = ("n_current", "n")


def has_data(result: MetricResult) -> bool:
    """Whether a window of a series had data: a verdict, or rows too few to judge.

    What ``missing_data`` rules watch: a ``no_data`` result without rows (no logs, no labels
    yet) is missing data; one with rows below the monitor's ``min_rows`` is low traffic.
    """
    if result.status != "no_data":
        return True
    details = result.details or {}
    return any(isinstance(details.get(k), int | float) and details[k] > 0 for k in ROW_COUNT_KEYS)


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable id of a label set (16 hex digits of SHA-256 over the sorted labels)."""
    raw = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def series_labels(rule: Rule, result: MetricResult) -> dict[str, str]:
    """The labels of the alert a result belongs to under ``rule``."""
    labels = {
        "alertname": rule.name,
        "rule": rule.name,
        "severity": rule.severity,
        "model": result.model or "",
        "tenant": result.tenant_id,
        "monitor": result.source_name,
        "source": result.source,
        "kind": result.kind,
    }
    if rule.kind == "threshold":
        labels["metric"] = result.metric
        if result.column:
            labels["column"] = result.column
        if result.model_version != ALL:
            labels["model_version"] = result.model_version
    labels.update(rule.labels)  # cannot clash: Rule.from_dict refuses reserved names
    return labels


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` / ``{name:.3f}`` placeholders; unknown names stay as they are and a
    bad format spec leaves the template unfilled rather than losing the notification."""
    try:
        return template.format_map(_SafeDict(values))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return template


DEFAULT_ANNOTATIONS = {
    "threshold": {
        "summary": "{alertname}: {metric}{column_suffix} of {model} for tenant {tenant} is "
        "{value_text} (threshold {threshold_text})",
        "description": "{monitor} ({kind}) reported {status} for the window "
        "{window_start} – {window_end}.",
    },
    "missing_data": {
        "summary": "{alertname}: {monitor} on {model} for tenant {tenant} has no data",
        "description": "No usable results since {last_window_end}.",
    },
}


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def result_context(result: MetricResult) -> dict[str, Any]:
    """What a notification says about the result behind an alert (JSON-able)."""
    ctx: dict[str, Any] = {
        "source": result.source,
        "monitor": result.source_name,
        "kind": result.kind,
        "model": result.model,
        "tenant": result.tenant_id,
        "model_version": result.model_version,
        "column": result.column,
        "metric": result.metric,
        "value": result.value,
        "threshold": result.threshold,
        "status": result.status,
        "window": {"start": result.window_start.isoformat(), "end": result.window_end.isoformat()},
        "definition_version": result.definition_version,
    }
    details = result.details or {}
    for key in CONTEXT_KEYS:
        if key in details:
            ctx[key] = details[key]
    return ctx


def _template_values(rule: Rule, labels: Mapping[str, str], res: MetricResult) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in (res.details or {}).items() if _scalar(v)}
    values.update(labels)
    values.update(
        value=res.value,
        threshold=_threshold(rule, res),
        value_text=_fmt(res.value),
        threshold_text=_fmt(_threshold(rule, res)),
        status=res.status,
        window_start=res.window_start.isoformat(),
        window_end=res.window_end.isoformat(),
        last_window_end=res.window_end.isoformat(),
        column_suffix=f"[{res.column}]" if res.column else "",
        model=res.model or "",
    )
    return values


def _threshold(rule: Rule, res: MetricResult) -> float | None:
    """The rule's own threshold when it compares values, else the result's."""
    if rule.condition.op is not None:
        return rule.condition.threshold
    return res.threshold


def _scalar(v: Any) -> bool:
    return isinstance(v, str | int | float | bool) or v is None


def render_annotations(templates: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """Fill every annotation template; a link annotation (``runbook_url``, any ``*_url``)
    gets its text values URL-quoted, so a tenant named "acme corp" makes a working link."""
    quoted: dict[str, Any] | None = None
    out = {}
    for key, template in templates.items():
        if is_url_annotation(key):
            if quoted is None:
                quoted = {
                    k: urllib.parse.quote(v, safe="") if isinstance(v, str) else v
                    for k, v in values.items()
                }
            out[key] = render(template, quoted)
        else:
            out[key] = render(template, values)
    return out


def annotate(rule: Rule, labels: Mapping[str, str], res: MetricResult) -> dict[str, str]:
    values = _template_values(rule, labels, res)
    templates = dict(DEFAULT_ANNOTATIONS[rule.kind])
    templates.update(rule.annotations)
    return render_annotations(templates, values)


def _is_breach(rule: Rule, results: Sequence[MetricResult], now: datetime) -> bool | None:
    """Whether one window of one series breaches: True, False, or None (no verdict)."""
    if rule.kind == "missing_data":
        # A series is "missing" in a window when nothing it produced there had data; a
        # window whose labels may still come is not judged yet (its re-run will be). A
        # window with rows, too few to judge (a small tenant's weekend day), is low traffic:
        # data arrived, so it is not missing.
        if any(has_data(r) for r in results):
            return False
        wait = rule.label_wait(results[0].kind)
        return None if wait and results[0].window_end + wait > now else True
    usable = [r for r in results if r.status != "no_data"]
    if not usable:
        return None
    return any(rule.condition.breached(r) for r in usable)


def _new_alert(
    rule: Rule, fp: str, labels: dict[str, str], res: MetricResult, now: datetime
) -> AlertRecord:
    return AlertRecord(
        fingerprint=fp,
        rule=rule.name,
        state="pending",
        severity=rule.severity,
        tenant_id=res.tenant_id,
        model=res.model or "",
        labels=labels,
        annotations={},  # filled by the breach that opens it (see _advance)
        value=res.value,
        threshold=_threshold(rule, res),
        breach_streak=0,
        clear_streak=0,
        last_window_end=None,
        active_at=res.window_start,
        starts_at=None,
        ends_at=None,
        updated_at=now,
        context={},
    )


def _advance(
    rule: Rule,
    fp: str,
    labels: dict[str, str],
    latest: AlertRecord | None,
    windows: Sequence[tuple[datetime, list[MetricResult]]],
    now: datetime,
    out: list[Transition],
) -> None:
    """Run one series' new windows (oldest first) through the state machine."""
    original = latest
    current = latest
    last_end = latest.last_window_end if latest is not None else None
    for _start, results in windows:
        res = max(results, key=lambda r: (r.status != "no_data", r.value is not None))
        window_end = res.window_end
        if last_end is not None and window_end <= last_end:
            continue  # this window was evaluated before: re-runs and replays change nothing
        last_end = window_end
        verdict = _is_breach(rule, results, now)
        open_ = current if current is not None and current.state != "resolved" else None
        if verdict is None:
            # Not an evaluation: the alert's last window stays, so when late labels give this
            # window data, its re-run is judged instead of ignored as a replay.
            continue
        if verdict:
            breaching = [r for r in results if r.status != "no_data"]
            if rule.kind == "threshold":
                shown = next(r for r in breaching if rule.condition.breached(r))
            else:
                shown = res
            if open_ is None:
                # A resolved alert reopens as a new instance: store the old one's last change
                # first, then start the new one from nothing.
                if current is not None and current != original:
                    out.append(_transition(fp, original, current))
                original = None
                open_ = _new_alert(rule, fp, labels, shown, now)
            streak = open_.breach_streak + 1
            fires = open_.state == "pending" and streak >= rule.for_windows
            current = replace(
                open_,
                state="firing" if fires else open_.state,
                # "Since when" is the data's time, never the evaluation's: an alert that fires
                # during a backfill started in its first breaching window, weeks ago maybe.
                starts_at=open_.active_at if fires else open_.starts_at,
                fired_at=now if fires else open_.fired_at,
                breach_streak=streak,
                clear_streak=0,
                value=shown.value,
                threshold=_threshold(rule, shown),
                annotations=annotate(rule, labels, shown),
                context=result_context(shown),
                last_window_end=window_end,
                updated_at=now,
            )
            continue
        if open_ is None:
            continue
        if open_.state == "pending":
            current = replace(
                open_,
                state="resolved",
                breach_streak=0,
                ends_at=res.window_start,
                resolved_at=now,
                last_window_end=window_end,
                updated_at=now,
            )
        else:
            clear = open_.clear_streak + 1
            current = replace(
                open_,
                clear_streak=clear,
                breach_streak=0,
                last_window_end=window_end,
                updated_at=now,
            )
            if clear > rule.keep_firing_for:
                current = replace(
                    current, state="resolved", ends_at=res.window_start, resolved_at=now
                )
    if current is not None and current != original:
        out.append(_transition(fp, original, current))


def _transition(fp: str, before: AlertRecord | None, after: AlertRecord) -> Transition:
    if before is not None and before.id == after.id and before.state == after.state:
        change = "updated"
    elif after.state == "resolved" and after.starts_at is None:
        change = "cleared"
    else:
        change = after.state
    return Transition(fp, before, after, change)


def evaluate_all(
    rules: Sequence[Rule],
    new_results: Iterable[MetricResult],
    previous_state: Mapping[str, AlertRecord],
    now: datetime,
) -> Evaluation:
    """Evaluate many rules over a batch of new results in one pass.

    Parameters
    ----------
    rules : sequence of Rule
    new_results : iterable of MetricResult
        Any order; several windows per series are evaluated oldest first.
    previous_state : mapping of fingerprint → AlertRecord
        The newest alert instance of each fingerprint (open or resolved); absent = none.
    now : datetime
        Wall-clock time written as ``fired_at`` / ``resolved_at`` / ``updated_at``;
        ``starts_at`` / ``ends_at`` come from the windows (see ``AlertRecord``).

    Returns
    -------
    Evaluation
        ``transitions`` to store (in order) and, per series, the newest window seen.
    """
    rules = list(rules)
    # A series is named by its key (rule index + the result fields its labels come from);
    # labels and fingerprints are computed only for series that breach or already have an
    # alert, which keeps 100,000 quiet results cheap.
    # an alert of no current rule has no key (None) and is left out
    known = {key: a for a in previous_state.values() if (key := _record_key(rules, a)) is not None}
    series: dict[tuple[Any, ...], list[MetricResult]] = {}
    # missing_data series keep one result per window: one with data if there is any.
    heartbeats: dict[tuple[Any, ...], dict[datetime, MetricResult]] = {}
    # One pass to split the batch by (model, kind, source), then each rule works on whole
    # lists with comprehensions: per-result Python work is what costs at 100,000 results.
    groups: dict[tuple[Any, ...], list[MetricResult]] = {}
    for res in new_results:
        ck = (res.model, res.kind, res.source)
        g = groups.get(ck)
        if g is None:
            groups[ck] = [res]
        else:
            g.append(res)
    known_rules = {k[0] for k in known}
    for group in groups.values():
        for i, rule, residual in _candidates(rules, group[0]):
            rows = (
                [r for r in group if all(m(getattr(r, a)) for a, m in residual)]
                if residual
                else group
            )
            if rule.kind == "missing_data":
                _heartbeats(i, rows, heartbeats)
                continue
            cond = rule.condition
            if cond.op is None:
                statuses = cond.statuses  # never holds no_data (Condition.parse refuses it)
                hot = [r for r in rows if r.status in statuses]
                cold = (
                    [r for r in rows if r.status not in statuses] if i in known_rules or hot else []
                )
            else:
                hot = [r for r in rows if r.status != "no_data" and cond.breached(r)]
                cold = (
                    [r for r in rows if r.status == "no_data" or not cond.breached(r)]
                    if i in known_rules or hot
                    else []
                )
            for res in hot:
                skey = _result_key(i, res)
                bucket = series.get(skey)
                if bucket is None:
                    series[skey] = [res]
                else:
                    bucket.append(res)
            # A quiet result matters only to a series that breached in this batch or has an
            # alert; a cheap (tenant, column) filter skips most of them before the full key.
            near = {(r.tenant_id, r.column) for r in hot}
            near.update((k[2], k[6]) for k in known if k[0] == i)
            for res in cold:
                if (res.tenant_id, res.column) not in near:
                    continue
                skey = _result_key(i, res)
                bucket = series.get(skey)
                if bucket is not None:
                    bucket.append(res)
                elif skey in known:
                    series[skey] = [res]
    for hkey, per in heartbeats.items():
        series[hkey] = list(per.values())
    outcome = Evaluation()
    for skey, results in series.items():
        rule = rules[skey[0]]
        latest = known.get(skey)
        labels = series_labels(rule, results[0])
        fp = latest.fingerprint if latest is not None else fingerprint(labels)
        if rule.kind == "missing_data":
            outcome.seen[fp] = _heartbeat(rule, fp, labels, results)
        per_window: dict[datetime, list[MetricResult]] = {}
        for r in results:
            per_window.setdefault(r.window_start, []).append(r)
        ordered = sorted(per_window.items())
        _advance(rule, fp, labels, latest, ordered, now, outcome.transitions)
    return outcome


def _heartbeat(
    rule: Rule, fp: str, labels: dict[str, str], results: Sequence[MetricResult]
) -> SeriesSeen:
    if not rule.label_wait(results[0].kind):
        return SeriesSeen(rule.name, fp, labels, max(r.window_end for r in results))
    # Computed from labels: the silence runs from the newest window that had them.
    ends = [r.window_end for r in results if has_data(r)]
    if ends:
        return SeriesSeen(rule.name, fp, labels, max(ends))
    return SeriesSeen(rule.name, fp, labels, min(r.window_start for r in results), False)


def _heartbeats(
    i: int, rows: Sequence[MetricResult], out: dict[tuple[Any, ...], dict[datetime, MetricResult]]
) -> None:
    for res in rows:
        hkey = (i, res.model or "", res.tenant_id, res.source_name, res.kind)
        per = out.get(hkey)
        if per is None:
            out[hkey] = {res.window_start: res}
            continue
        rep = per.get(res.window_start)
        if rep is None or (not has_data(rep) and has_data(res)):
            per[res.window_start] = res


def _result_key(i: int, res: MetricResult) -> tuple[Any, ...]:
    return (
        i,
        res.model or "",
        res.tenant_id,
        res.source_name,
        res.kind,
        res.metric,
        res.column,
        res.model_version,
    )


def _candidates(
    rules: Sequence[Rule], res: MetricResult
) -> list[tuple[int, Rule, tuple[tuple[str, Any], ...]]]:
    """Rules whose model/kind/source fields accept ``res``, with the checks left to do per
    result (only the fields a rule restricts)."""
    out = []
    for i, rule in enumerate(rules):
        m = rule.match
        if not (m["model"](res.model or "") and m["kind"](res.kind) and m["source"](res.source)):
            continue
        residual = tuple((attr, m[field]) for field, attr in _RESIDUAL if not m[field].any)
        out.append((i, rule, residual))
    return out


_RESIDUAL = (
    ("metric", "metric"),
    ("monitor", "source_name"),
    ("tenant", "tenant_id"),
    ("column", "column"),
)


def _record_key(rules: Sequence[Rule], a: AlertRecord) -> tuple[Any, ...] | None:
    """The series key of a stored alert (the inverse of the keys built from results)."""
    for i, rule in enumerate(rules):
        if rule.name != a.rule:
            continue
        lb = a.labels
        if rule.kind == "threshold":
            return (
                i,
                lb.get("model", ""),
                lb.get("tenant", ""),
                lb.get("monitor", ""),
                lb.get("kind", ""),
                lb.get("metric", ""),
                lb.get("column", ""),
                lb.get("model_version", ALL),
            )
        return (
            i,
            lb.get("model", ""),
            lb.get("tenant", ""),
            lb.get("monitor", ""),
            lb.get("kind", ""),
        )
    return None


def evaluate(
    rule: Rule,
    new_results: Iterable[MetricResult],
    previous_state: Mapping[str, AlertRecord],
    now: datetime,
) -> list[Transition]:
    """Evaluate one rule: ``evaluate_all([rule], ...)`` without the series bookkeeping.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from alerts.rules import Rule, is_url_annotation
    >>> from storage.types import MetricResult
    >>> rule = Rule.from_dict({"name": "auc", "match": {"metric": "roc_auc"}, "for": 2})
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def res(h, status):
    ...     s = t0 + timedelta(hours=h)
    ...     return MetricResult("monitor", "perf", "performance", "churn", s,
    ...                         s + timedelta(hours=1), "acme", "*", "", "roc_auc", 0.6, 0.7,
    ...                         status)
    >>> [t.change for t in evaluate(rule, [res(0, "alert")], {}, t0)]
    ['pending']
    >>> [t.change for t in evaluate(rule, [res(0, "alert"), res(1, "alert")], {}, t0)]
    ['firing']
    """
    return evaluate_all([rule], new_results, previous_state, now).transitions


def evaluate_missing(
    rule: Rule,
    last_seen: Mapping[str, SeriesSeen],
    previous_state: Mapping[str, AlertRecord],
    now: datetime,
) -> list[Transition]:
    """Fire ``missing_data`` alerts for series whose newest window ended more than the rule's
    ``max_silence`` ago (a monitor that stopped running, a model or tenant without logs), or
    ``max_silence + label_delay`` for realized performance (its newest labelled window).

    A stale series fires at once (the silence itself is the evidence); the next window with
    data resolves it through :func:`evaluate_all`.
    """
    if rule.kind != "missing_data" or rule.max_silence is None:
        return []
    out: list[Transition] = []
    for fp, seen in last_seen.items():
        allowed = rule.max_silence + rule.label_wait(seen.labels.get("kind", ""))
        if seen.rule != rule.name or seen.last_window_end + allowed > now:
            continue
        latest = previous_state.get(fp)
        if latest is not None and latest.state == "firing":
            continue
        since = seen.last_window_end.isoformat()
        values = {**seen.labels, "last_window_end": since}
        templates = dict(DEFAULT_ANNOTATIONS["missing_data"])
        templates.update(rule.annotations)
        alert = AlertRecord(
            fingerprint=fp,
            rule=rule.name,
            state="firing",
            severity=rule.severity,
            tenant_id=seen.labels.get("tenant", ALL),
            model=seen.labels.get("model", ""),
            labels=dict(seen.labels),
            annotations=render_annotations(templates, values),
            value=None,
            threshold=None,
            breach_streak=rule.for_windows,
            clear_streak=0,
            last_window_end=seen.last_window_end,
            # Data has been missing since the newest window's end: that is when it started.
            active_at=seen.last_window_end,
            starts_at=seen.last_window_end,
            ends_at=None,
            updated_at=now,
            context={"last_window_end": since, "max_silence_s": allowed.total_seconds()},
            fired_at=now,
        )
        if latest is not None and latest.state == "pending":
            alert = replace(
                alert, id=latest.id, active_at=latest.active_at, starts_at=latest.active_at
            )
            out.append(Transition(fp, latest, alert, "firing"))
        else:
            out.append(Transition(fp, latest, alert, "firing"))
    return out
