"""Grouping as in Alertmanager, as a pure planner over the notification log.

Alerts with the same values of the rule's ``group_by`` labels (default tenant, model, rule) and
the same channels form a group; one notification carries all of them:

- a group's first notification waits ``group_wait`` after its first change, so alerts that fire
  together (ten features of one tenant drifting in one run) arrive as one message;
- later changes wait until ``group_interval`` after the previous notification;
- a notification goes out only when the set of firing alerts gained a member the log has not
  reported, when alerts reported as firing resolved (``send_resolved``), or when
  ``repeat_interval`` passed since the last one while alerts still fire;
- silenced or inhibited alerts are left out of the firing set (they are still evaluated); one
  that was announced before it was muted stays in the log, so the end of its silence does not
  announce it twice, and its resolution during the silence is reported when the silence ends.

The log entry of a group is ``GroupRecord.notified_firing`` / ``notified_resolved`` and
``last_notified_at``; ``next_flush_at`` is when the planner must look at the group again. The
log holds alert *instance* ids (as strings): an alert that resolves and breaches again is a new
instance with a new start, announced as such even when no flush happened in between. (Logs
written before migration 0007 held fingerprints; they still count, see :func:`is_logged`.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.rules import Rule
from storage.types import AlertRecord, GroupRecord


@dataclass(frozen=True)
class Timing:
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    send_resolved: bool = True

    @classmethod
    def of(cls, rule: Rule) -> Timing:
        return cls(rule.group_wait, rule.group_interval, rule.repeat_interval, rule.send_resolved)


def group_labels(rule: Rule, labels: Mapping[str, str]) -> dict[str, str]:
    return {k: labels.get(k, "") for k in rule.group_by}


def group_key(rule: Rule, labels: Mapping[str, str]) -> str:
    """Stable key of an alert's group: its group labels and its channels."""
    raw = json.dumps(
        {"by": sorted(group_labels(rule, labels).items()), "to": sorted(rule.channels)},
        separators=(",", ":"),
    )
    if len(raw) <= 480:
        return raw
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def next_flush_after_change(group: GroupRecord | None, timing: Timing, now: datetime) -> datetime:
    """When a group whose alerts just changed should be flushed.

    A group that never notified waits ``group_wait`` from its first change (later changes do
    not push it further out); one that did waits until ``group_interval`` after its last
    notification.
    """
    if group is None or group.last_notified_at is None:
        candidate = now + timing.group_wait
    else:
        candidate = max(now, group.last_notified_at + timing.group_interval)
    if group is not None and group.next_flush_at is not None:
        return min(group.next_flush_at, candidate)
    return candidate


@dataclass(frozen=True)
class Plan:
    """What to do with a due group: send or not, with which alerts, and the new log entry.

    ``announced`` are the ids of the firing alerts this notification reports for the first
    time (the others were reported before: a repeat, or a group that gained a member).
    """

    send: bool
    status: str
    firing: tuple[AlertRecord, ...]
    resolved: tuple[AlertRecord, ...]
    muted: Mapping[str, str] = field(default_factory=dict)
    notified_firing: tuple[str, ...] = ()
    notified_resolved: tuple[str, ...] = ()
    next_flush_at: datetime | None = None
    reason: str = ""
    announced: frozenset[int] = frozenset()


def log_key(alert: AlertRecord) -> str:
    """How the notification log names an alert instance."""
    return str(alert.id)


def is_logged(alert: AlertRecord, log: set[str]) -> bool:
    """Whether a group's notification log names this alert instance."""
    # A log from before migration 0007 names fingerprints; the migration converts stored
    # logs, this keeps a log written by an older process during a rolling upgrade readable.
    return log_key(alert) in log or alert.fingerprint in log


def plan_flush(
    group: GroupRecord,
    alerts: Sequence[AlertRecord],
    muted: Mapping[str, str],
    timing: Timing,
    now: datetime,
) -> Plan:
    """Decide a due group's notification.

    Parameters
    ----------
    group : GroupRecord
        The group and its log entry.
    alerts : sequence of AlertRecord
        The newest instance of each fingerprint in the group (firing, and resolved ones that
        the log reported as firing).
    muted : mapping fingerprint → why (``silence:3``, ``inhibited:<fp>``)
    timing : Timing
    now : datetime

    Returns
    -------
    Plan
    """
    notified = set(group.notified_firing)
    all_firing = [a for a in alerts if a.state == "firing"]
    firing = tuple(a for a in all_firing if a.fingerprint not in muted)
    resolved = tuple(
        a
        for a in alerts
        if a.state == "resolved"
        and a.starts_at is not None
        and is_logged(a, notified)
        and a.fingerprint not in muted
    )
    new_firing = frozenset(a.id for a in firing if a.id is not None and not is_logged(a, notified))
    # Announced alerts that are muted now stay in the log (firing, or resolved during the
    # silence: reported once it ends).
    kept = tuple(
        log_key(a)
        for a in alerts
        if a.fingerprint in muted
        and is_logged(a, notified)
        and (a.state == "firing" or (a.state == "resolved" and a.starts_at is not None))
    )
    repeat_due = bool(
        firing
        and group.last_notified_at is not None
        and now >= group.last_notified_at + timing.repeat_interval
    )
    send_resolved = timing.send_resolved and bool(resolved)
    send = bool(new_firing) or send_resolved or repeat_due
    if send:
        reason = (
            "new firing alerts"
            if new_firing
            else "resolved alerts"
            if send_resolved
            else "repeat interval"
        )
        next_flush = now + timing.repeat_interval if firing or kept else None
        return Plan(
            send=True,
            status="firing" if firing else "resolved",
            firing=firing,
            resolved=resolved if timing.send_resolved else (),
            muted=dict(muted),
            notified_firing=tuple(sorted({log_key(a) for a in firing} | set(kept))),
            notified_resolved=tuple(sorted(log_key(a) for a in resolved)),
            next_flush_at=next_flush,
            reason=reason,
            announced=new_firing,
        )
    keep = tuple(sorted({log_key(a) for a in all_firing if is_logged(a, notified)} | set(kept)))
    next_flush = (
        group.last_notified_at + timing.repeat_interval
        if keep and group.last_notified_at is not None
        else None
    )
    return Plan(
        send=False,
        status="firing" if firing else "resolved",
        firing=firing,
        resolved=(),
        muted=dict(muted),
        notified_firing=keep,
        notified_resolved=group.notified_resolved,
        next_flush_at=next_flush,
        reason="nothing new",
    )
