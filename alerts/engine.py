"""``AlertEngine``: the stateful side of alerting, around the pure evaluator and planner.

What the monitor runner calls after every run (and after backfills)::

    engine = AlertEngine(AlertStore(metadata, secret_key), base_url=settings.base_url)
    engine.process(results)                 # evaluate, store transitions, mark groups
    engine.process(old_results, notify=False)   # a backfill: state only, nobody is paged

What the delivery loop calls at each turn: :meth:`AlertEngine.flush_due` (plans due groups and
writes notifications + outbox rows in one transaction each) — ``DeliveryWorker(before_claim=
engine.flush_due)`` does it — and, once a minute, :meth:`AlertEngine.reconcile`.

Every firing alert whose rule has channels is announced once: a change that leaves an alert
firing puts its group on the agenda (live runs and backfills alike: a backfill's alert that
still fires afterwards is announced with its historical start, one that fired and resolved
inside the replayed history is not, since the planner only reports what fires when it looks).
What no change brings back (an inhibition that lifted, a rule that gained channels, a mark lost
to an older version) :meth:`AlertEngine.reconcile` finds by looking at the state itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from alerts.channel_admin import ChannelAdmin
from alerts.channels import channel_type
from alerts.evaluate import SeriesSeen, Transition, evaluate_all, evaluate_missing
from alerts.grouping import (
    Timing,
    group_key,
    group_labels,
    is_logged,
    next_flush_after_change,
)
from alerts.notifications import NotificationFlush
from alerts.rules import Rule, RuleError
from alerts.silences import (
    DEFAULT_INHIBIT_RULES,
    InhibitRule,
)
from alerts.silencing import Muting, SilenceView
from alerts.ssrf import Allowlist, Resolver, system_resolver
from alerts.twins import Twins, relate
from storage.metadata.alerting import AlertStore, GroupMark
from storage.types import (
    AlertRecord,
    MetricResult,
    OutboxItem,
)

__all__ = ["AlertEngine", "Muting", "SilenceView", "utcnow"]

log = logging.getLogger("driftwatch.alerts")


class AlertEngine(NotificationFlush, ChannelAdmin):
    """Evaluates results, keeps alert state, plans grouped notifications and fills the outbox.

    Parameters
    ----------
    store : AlertStore
    base_url : str
        Public URL of Driftwatch; links point at ``{base_url}/alerts/{id}``.
    allowlist : Allowlist
        SSRF allowlist used when channels are saved.
    inhibit_rules : sequence of InhibitRule
    on_enqueue : callable, optional
        Called after deliveries were written (``DeliveryWorker.wake``).
    enrich : callable, optional
        ``alert → extra context`` merged into a firing alert's context when its notification
        is written (``monitor`` adds the tenant KPIs that moved: ``related_kpis``). A failing
        enricher is logged and skipped: context must never cost a notification.
    units : callable, optional
        ``() → {KPI name: unit}``, read when a batch holds KPI results: a KPI alert's texts
        show its value as the KPI pages do (``17.6 %``, not ``0.176``).
    resolver : for tests.
    """

    def __init__(
        self,
        store: AlertStore,
        *,
        base_url: str = "http://127.0.0.1:8000",
        allowlist: Allowlist | None = None,
        inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
        on_enqueue: Callable[[], None] | None = None,
        enrich: Callable[[AlertRecord], Mapping[str, Any]] | None = None,
        units: Callable[[], Mapping[str, str]] | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.allowlist = allowlist or Allowlist()
        self.inhibit_rules = tuple(inhibit_rules)
        self.on_enqueue = on_enqueue
        self.enrich = enrich
        self.units = units
        self.resolver = resolver

    # ------------------------------------------------------------------ rules
    def rules(self) -> list[Rule]:
        """The enabled rules; a stored rule that no longer parses is skipped and logged."""
        out = []
        for rec in self.store.list_rules(enabled_only=True):
            try:
                out.append(Rule.from_dict(rec.spec))
            except RuleError as exc:
                log.error("alert rule %s is invalid and skipped: %s", rec.name, exc)
        return out

    def put_rule(self, spec: Mapping[str, Any], actor: str = "system") -> Rule:
        """Validate and store a rule (create or replace)."""
        rule = Rule.from_dict(spec)
        enabled = bool(spec.get("enabled", True))
        self.store.put_rule(rule.name, rule.to_dict(), enabled, actor)
        return rule

    # ------------------------------------------------------------------ evaluation
    def process(
        self,
        results: Iterable[MetricResult],
        *,
        notify: bool = True,
        now: datetime | None = None,
        rules: Sequence[Rule] | None = None,
    ) -> list[Transition]:
        """Evaluate new results against the enabled rules and store what changed.

        Parameters
        ----------
        results : iterable of MetricResult
            The rows a monitor or KPI run (or a backfill) just wrote.
        notify : bool
            False for backfills: alert state is kept up to date, but the changes do not put
            groups on the notification agenda, so nobody is paged for old windows.
        now : datetime, optional
            Evaluation time (default: the store's clock).

        Returns
        -------
        list of Transition
        """
        now = now or self.store.now()
        rules = list(rules) if rules is not None else self.rules()
        if not rules:
            return []
        by_name = {r.name: r for r in rules}
        previous = self.store.latest_alerts(by_name)
        results = list(results)
        kpi = self.units is not None and any(r.source == "kpi" for r in results)
        units = self.units() if self.units is not None and kpi else None
        outcome = evaluate_all(rules, results, previous, now, units)
        fresh = dict(outcome.seen)
        blank = {s.rule for s in fresh.values() if not s.has_data}
        if blank:
            # A labelled series without data in this batch only starts its heartbeat; a
            # stored one keeps counting from its newest labelled window.
            known = {fp for _rule, fp, _labels, _end in self.store.series(blank)}
            fresh = {fp: s for fp, s in fresh.items() if s.has_data or fp not in known}
        if not notify and fresh:
            fresh = self._live_series(fresh, by_name, now)
        # A backfill replays old windows: its newest window is old by nature, not silent.
        # Silence is judged against the present only, here for live runs and in check_missing,
        # and not for the series this batch reports: they are running (a catch-up of several
        # missed windows would otherwise fire and resolve an alert per window). Their missing
        # data is what the no_data windows say.
        missing = [
            r for r in rules if notify and r.kind == "missing_data" and r.max_silence is not None
        ]
        if missing:
            seen = {fp: s for fp, s in self._seen(missing, {}).items() if fp not in outcome.seen}
            latest = dict(previous)
            for t in outcome.transitions:
                latest[t.fingerprint] = t.after
            for rule in missing:
                outcome.transitions.extend(evaluate_missing(rule, seen, latest, now))
        series = [(s.rule, s.fingerprint, s.labels, s.last_window_end) for s in fresh.values()]
        self._store(outcome.transitions, by_name, notify, now, series)
        return outcome.transitions

    def _live_series(
        self, fresh: dict[str, SeriesSeen], rules: Mapping[str, Rule], now: datetime
    ) -> dict[str, SeriesSeen]:
        """History replay: a series a backfill reports for the first time whose newest window
        is already silent by the present (older than its rule's ``max_silence``) is history,
        not a live series that stopped: it starts no heartbeat, so replaying a past year does
        not end in a "no data since" alert per series. A series seen before, or whose
        replayed windows reach the present, keeps its heartbeat as any other."""

        def history(s: SeriesSeen) -> bool:
            rule = rules.get(s.rule)
            if rule is None or rule.kind != "missing_data" or rule.max_silence is None:
                return False
            wait = rule.max_silence + rule.label_wait(s.labels.get("kind", ""))
            return s.last_window_end + wait <= now

        old = {s.rule for s in fresh.values() if history(s)}
        if not old:
            return fresh
        known = {fp for _rule, fp, _labels, _end in self.store.series(old)}
        return {fp: s for fp, s in fresh.items() if fp in known or not history(s)}

    def check_missing(self, now: datetime | None = None) -> list[Transition]:
        """Fire ``missing_data`` alerts for series that went silent (run it periodically:
        a monitor that stopped running produces no results that would trigger it)."""
        now = now or self.store.now()
        rules = [r for r in self.rules() if r.kind == "missing_data" and r.max_silence]
        if not rules:
            return []
        seen = self._seen(rules, {})
        latest = self.store.latest_alerts([r.name for r in rules])
        transitions: list[Transition] = []
        for rule in rules:
            transitions.extend(evaluate_missing(rule, seen, latest, now))
        self._store(transitions, {r.name: r for r in rules}, True, now, [])
        return transitions

    def _seen(
        self, rules: Sequence[Rule], fresh: Mapping[str, SeriesSeen]
    ) -> dict[str, SeriesSeen]:
        seen = {
            fp: SeriesSeen(rule, fp, labels, last)
            for rule, fp, labels, last in self.store.series([r.name for r in rules])
        }
        for fp, s in fresh.items():
            if fp not in seen or s.last_window_end > seen[fp].last_window_end:
                seen[fp] = s
        return seen

    def _store(
        self,
        transitions: Sequence[Transition],
        rules: Mapping[str, Rule],
        notify: bool,
        now: datetime,
        series: Sequence[tuple[str, str, dict[str, str], datetime]],
    ) -> None:
        if not transitions and not series:
            return
        afters: list[AlertRecord] = []
        keys: dict[str, tuple[Rule, dict[str, str]]] = {}
        notifying: set[str] = set()
        for t in transitions:
            rule = rules[t.after.rule]
            key = group_key(rule, t.after.labels)
            afters.append(replace(t.after, group_key=key))
            keys.setdefault(key, (rule, group_labels(rule, t.after.labels)))
            # A backfill (notify=False) puts groups on the agenda too: what still fires when
            # the planner looks is announced (with its historical start), what fired and
            # resolved inside the replayed windows is not (never reported, so nothing to say).
            # Before, a backfill's alert that kept firing was never announced at all.
            if t.notifies:
                notifying.add(key)
        groups = self.store.get_groups(list(keys)) if keys else {}
        marks = []
        for key, (rule, labels) in keys.items():
            flush_at = (
                next_flush_after_change(groups.get(key), Timing.of(rule), now)
                if key in notifying
                else None
            )
            marks.append(GroupMark(key, rule.name, labels, flush_at))
        self.store.apply_evaluation(afters, marks, series)
        if any(m.flush_at is not None and m.flush_at <= now for m in marks):
            self.flush_due(now)

    def reconcile(self, now: datetime | None = None) -> int:
        """Put on the agenda every group that owes an announcement; returns how many.

        Alert changes put their groups on the agenda as they happen; this looks at the state
        instead (run it periodically): a firing, unmuted alert whose rule has channels and
        that its group's log has not reported — an inhibition lifted, the rule gained
        channels or changed ``group_by`` (the alert moves to its new group), or a mark was
        never written. Only the ``group_key`` column of alerts is written, so a concurrent
        evaluation is never overwritten.
        """
        now = now or self.store.now()
        rules = {r.name: r for r in self.rules()}
        firing = self.store.list_alerts(state="firing", limit=1_000_000)
        if not firing:
            return 0
        muted = self.muted(firing, now, firing=firing)
        moved: dict[int, str] = {}
        owed: dict[str, list[AlertRecord]] = {}
        for a in firing:
            rule = rules.get(a.rule)
            if rule is None:
                continue
            key = group_key(rule, a.labels)
            if key != a.group_key and a.id is not None:
                moved[a.id] = key
            if rule.channels and a.fingerprint not in muted:
                owed.setdefault(key, []).append(a)
        groups = self.store.get_groups(list(owed)) if owed else {}
        marks = []
        for key, alerts in owed.items():
            group = groups.get(key)
            logged = set(group.notified_firing) if group is not None else set()
            if all(is_logged(a, logged) for a in alerts):
                continue
            rule = rules[alerts[0].rule]
            flush_at = next_flush_after_change(group, Timing.of(rule), now)
            marks.append(GroupMark(key, rule.name, group_labels(rule, alerts[0].labels), flush_at))
        if moved:
            self.store.set_group_keys(moved)
        if marks:
            self.store.apply_evaluation([], marks)
            if any(m.flush_at is not None and m.flush_at <= now for m in marks):
                self.flush_due(now)
        return len(marks)

    def twins(self, alerts: Sequence[AlertRecord]) -> dict[int, Twins]:
        """Alert id → its :class:`~alerts.twins.Twins`: the all-tenants alert of a per-tenant
        alert's series, or the per-tenant alerts of an all-tenants one (newest instances of
        the same rules: open ones, and resolved ones when they are the newest)."""
        if not alerts:
            return {}
        candidates: list[AlertRecord] = []
        for rule in sorted({a.rule for a in alerts}):
            candidates.extend(self.store.list_alerts(rule=rule, limit=100_000))
        return relate(alerts, candidates)

    # ------------------------------------------------------------------ user actions
    # (silences: alerts.silencing; channels: alerts.channel_admin; notifications:
    # alerts.notifications; base classes of this one)
    def acknowledge(self, alert_id: int, actor: str) -> AlertRecord:
        """Acknowledge a firing alert; PagerDuty channels of its rule get an ``acknowledge``."""
        alert = self.store.get_alert(alert_id)
        outbox: list[OutboxItem] = []
        if alert is not None and alert.state == "firing" and alert.acknowledged_at is None:
            rec = self.store.get_rule(alert.rule)
            names = Rule.from_dict(rec.spec).channels if rec is not None else ()
            for name in names:
                ch = self.store.get_channel(name)
                if ch is None or not ch.enabled:
                    continue
                body = channel_type(ch.kind).acknowledge(alert, self.base_url)
                if body is not None:
                    outbox.append(OutboxItem(ch.id, "acknowledge", body))
        out = self.store.acknowledge(alert_id, actor, outbox)
        if outbox and self.on_enqueue is not None:
            self.on_enqueue()
        return out


def utcnow() -> datetime:
    return datetime.now(UTC)
