"""Grouped notifications as :class:`~alerts.engine.AlertEngine` writes them: a group whose
flush time has come is planned (:func:`alerts.grouping.plan_flush`) and its notification and
outbox rows (one per channel) are written in one transaction (a base class of the engine:
callers keep ``AlertEngine.flush_due``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from alerts.channels import channel_type
from alerts.grouping import Timing, plan_flush
from alerts.rules import Rule
from alerts.silences import InhibitIndex, silence_matches
from alerts.silencing import Silencing
from storage.types import (
    AlertRecord,
    ChannelRecord,
    GroupRecord,
    NotificationRecord,
    OutboxItem,
    SilenceRecord,
)

__all__ = ["NotificationFlush", "group_channels", "render_outbox"]

log = logging.getLogger("driftwatch.alerts")


class NotificationFlush(Silencing):
    """Plans due groups and writes their notifications and outbox rows."""

    base_url: str
    on_enqueue: Callable[[], None] | None
    enrich: Callable[[AlertRecord], Mapping[str, Any]] | None

    def rules(self) -> list[Rule]:
        """The enabled rules (:meth:`alerts.engine.AlertEngine.rules`)."""
        raise NotImplementedError

    def flush_due(self, now: datetime | None = None) -> list[NotificationRecord]:
        """Plan every group whose flush time has come; write notifications and outbox rows."""
        now = now or self.store.now()
        groups = self.store.due_groups(now)
        if not groups:
            return []
        rules = {r.name: r for r in self.rules()}
        silences = self.store.list_silences(active_at=now)
        firing = self.store.list_alerts(state="firing", limit=1_000_000)
        index = InhibitIndex(firing, self.inhibit_rules)
        channels = {c.name: c for c in self.store.list_channels()}
        written: list[NotificationRecord] = []
        for group in groups:
            note = self._flush_group(group, rules, silences, firing, index, channels, now)
            if note is not None:
                written.append(note)
        if written and self.on_enqueue is not None:
            self.on_enqueue()
        return written

    def _flush_group(
        self,
        group: GroupRecord,
        rules: Mapping[str, Rule],
        silences: Sequence[SilenceRecord],
        firing: Sequence[AlertRecord],
        index: InhibitIndex,
        channels: Mapping[str, ChannelRecord],
        now: datetime,
    ) -> NotificationRecord | None:
        rule = rules.get(group.rule) or Rule(name=group.rule)
        alerts = self.store.group_alerts(group.group_key)
        muted = self.muted(alerts, now, silences, firing, index)
        plan = plan_flush(group, alerts, muted, Timing.of(rule), now)
        next_flush = plan.next_flush_at
        # A silence that ends later must bring the group back then, or its alerts would stay
        # unannounced until something else changes.
        ends = [
            s.ends_at
            for s in silences
            for a in alerts
            if a.state == "firing" and a.fingerprint in muted and silence_matches(s, a.labels)
        ]
        if ends:
            next_flush = min([t for t in (next_flush, min(ends)) if t is not None])
        if not plan.send:
            self.store.record_flush(
                group,
                next_flush_at=next_flush,
                notified_firing=plan.notified_firing,
                notified_resolved=plan.notified_resolved,
            )
            return None
        names = group_channels(group, rule)
        targets = [channels[n] for n in names if n in channels]
        if names and not any(ch.enabled for ch in targets):
            # Every channel of the rule is missing or disabled: nothing could be delivered, so
            # nothing is logged as notified. The group waits; engine.reconcile (once a minute)
            # puts it back on the agenda, and the notification goes out once a channel exists.
            self.store.record_flush(
                group,
                next_flush_at=None,
                notified_firing=group.notified_firing,
                notified_resolved=group.notified_resolved,
            )
            return None
        shown = [self._enriched(a) for a in plan.firing] + list(plan.resolved)
        outbox = []
        for ch in targets:
            if not ch.enabled:
                continue
            outbox.extend(
                render_outbox(
                    ch, group, plan.status, shown, plan.reason, self.base_url, plan.announced
                )
            )
        notification = {
            "status": plan.status,
            "group_key": group.group_key,
            "group_labels": group.labels,
            "reason": plan.reason,
            "fingerprints": [a.fingerprint for a in shown],
            "alert_ids": [a.id for a in shown],
            "announced": sorted(plan.announced),
            "muted": dict(plan.muted),
            "channels": [c.name for c in targets],
        }
        return self.store.record_flush(
            group,
            next_flush_at=next_flush,
            notified_firing=plan.notified_firing,
            notified_resolved=plan.notified_resolved,
            notification=notification,
            outbox=outbox,
        )

    def _enriched(self, alert: AlertRecord) -> AlertRecord:
        if self.enrich is None:
            return alert
        try:
            extra = dict(self.enrich(alert))
        except Exception:  # context is a bonus; the notification goes out without it
            log.exception("enriching alert %s failed", alert.id)
            return alert
        return replace(alert, context={**alert.context, **extra}) if extra else alert


def render_outbox(
    channel: ChannelRecord,
    group: GroupRecord,
    status: str,
    alerts: Sequence[AlertRecord],
    reason: str,
    base_url: str,
    announced: frozenset[int] = frozenset(),
) -> list[OutboxItem]:
    """The outbox rows of one notification to one channel, as its kind renders them."""
    kind = channel_type(channel.kind)
    return [
        OutboxItem(channel.id, event, body)
        for event, body in kind.render(channel, group, status, alerts, reason, announced, base_url)
    ]


def group_channels(group: GroupRecord, rule: Rule) -> tuple[str, ...]:
    """The channels a group's notifications go to: its rule's, or (the rule is gone) those
    its group key remembers."""
    if rule.channels:
        return rule.channels
    # The rule is gone: the group key remembers where its notifications went.
    try:
        return tuple(json.loads(group.group_key).get("to", []))
    except (ValueError, AttributeError):
        return ()
