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

Nothing here does I/O; ``alerts.engine`` loads the state and stores the transitions. What a
series is and its fingerprint: :mod:`alerts.series`; an alert's annotations and context:
:mod:`alerts.annotations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from alerts.annotations import (
    annotate,
    kpi_unit,
    result_context,
    rule_annotations,
    shown_threshold,
    tenant_text,
)
from alerts.readable import fmt_time
from alerts.rules import Rule
from alerts.series import fingerprint, has_data, series_labels
from alerts.transitions import Evaluation, SeriesSeen, Transition
from storage.types import ALL, AlertRecord, MetricResult

__all__ = [
    "Evaluation",
    "SeriesSeen",
    "Transition",
    "evaluate",
    "evaluate_all",
    "evaluate_missing",
    "fingerprint",
    "has_data",
    "series_labels",
]


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
        threshold=shown_threshold(rule, res),
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
    units: Mapping[str, str] | None = None,
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
                threshold=shown_threshold(rule, shown),
                annotations=annotate(rule, labels, shown, kpi_unit(shown, units)),
                context=result_context(shown, kpi_unit(shown, units)),
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
    units: Mapping[str, str] | None = None,
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
    units : mapping of KPI name → unit, optional
        A KPI alert's value is written with its KPI's unit (``17.6 %``, not ``0.176``).

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
        _advance(rule, fp, labels, latest, ordered, now, outcome.transitions, units)
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
        alert = AlertRecord(
            fingerprint=fp,
            rule=rule.name,
            state="firing",
            severity=rule.severity,
            tenant_id=seen.labels.get("tenant", ALL),
            model=seen.labels.get("model", ""),
            labels=dict(seen.labels),
            annotations=rule_annotations(
                rule,
                {
                    **seen.labels,
                    "last_window_end": fmt_time(seen.last_window_end),  # people read it
                    "last_window_end_iso": since,
                    "tenant_text": tenant_text(seen.labels.get("tenant")),
                },
            ),
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
