"""Silences and inhibition as :class:`~alerts.engine.AlertEngine` applies them: which alerts
are muted right now and why, and the silence actions (a base class of the engine: callers keep
``AlertEngine.<method>``). The matching rules themselves are :mod:`alerts.silences`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.silences import InhibitIndex, InhibitRule, check_matchers, silence_matches, silenced_by
from storage.metadata.alerting import AlertStore
from storage.types import AlertRecord, SilenceRecord

__all__ = ["Muting", "SilenceView", "Silencing"]


@dataclass(frozen=True)
class Muting:
    """Why an alert's notifications are muted right now: the active silences that match it
    and the firing alerts that inhibit it (either may be empty, not both)."""

    silences: tuple[SilenceRecord, ...] = ()
    inhibitors: tuple[AlertRecord, ...] = ()


@dataclass(frozen=True)
class SilenceView:
    """A silence with the alerts it mutes right now (for listings)."""

    silence: SilenceRecord
    active: bool
    muting: tuple[AlertRecord, ...]


class Silencing:
    """Muting of alerts by silences and inhibition, and the silence actions."""

    store: AlertStore
    inhibit_rules: tuple[InhibitRule, ...]

    def mutings(
        self,
        alerts: Sequence[AlertRecord],
        now: datetime | None = None,
        silences: Sequence[SilenceRecord] | None = None,
        firing: Sequence[AlertRecord] | None = None,
    ) -> dict[str, Muting]:
        """Fingerprint → :class:`Muting` for the ``alerts`` muted at ``now`` (what the API
        and the alert page show: which silences, which inhibiting alerts)."""
        now = now or self.store.now()
        silences, firing, index = self._muting_state(now, silences, firing, None)
        by_fp = {f.fingerprint: f for f in firing}
        out: dict[str, Muting] = {}
        for a in alerts:
            ids = set(silenced_by(a.labels, silences, now))
            fps = index.inhibited_by(a)
            if ids or fps:
                out[a.fingerprint] = Muting(
                    tuple(s for s in silences if s.id in ids),
                    tuple(by_fp[fp] for fp in dict.fromkeys(fps)),
                )
        return out

    def muted(
        self,
        alerts: Sequence[AlertRecord],
        now: datetime,
        silences: Sequence[SilenceRecord] | None = None,
        firing: Sequence[AlertRecord] | None = None,
        index: InhibitIndex | None = None,
    ) -> dict[str, str]:
        """Fingerprint → why it is muted (``silence:<ids>`` or ``inhibited:<fingerprints>``);
        ``index`` (of ``firing``) saves rebuilding it for every group of a flush."""
        silences, firing, index = self._muting_state(now, silences, firing, index)
        out: dict[str, str] = {}
        for a in alerts:
            ids = silenced_by(a.labels, silences, now)
            if ids:
                out[a.fingerprint] = "silence:" + ",".join(map(str, ids))
                continue
            by = index.inhibited_by(a)
            if by:
                out[a.fingerprint] = "inhibited:" + ",".join(by)
        return out

    def _muting_state(
        self,
        now: datetime,
        silences: Sequence[SilenceRecord] | None,
        firing: Sequence[AlertRecord] | None,
        index: InhibitIndex | None,
    ) -> tuple[Sequence[SilenceRecord], Sequence[AlertRecord], InhibitIndex]:
        """What muting is judged against, read where the caller did not pass it: the silences
        active at ``now``, the firing alerts and their inhibition index."""
        if silences is None:
            silences = self.store.list_silences(active_at=now)
        if firing is None:
            firing = self.store.list_alerts(state="firing", limit=1_000_000)
        if index is None:
            index = InhibitIndex(firing, self.inhibit_rules)
        return silences, firing, index

    def silence(
        self,
        matchers: Sequence[Mapping[str, str]],
        reason: str,
        created_by: str,
        ends_at: datetime,
        starts_at: datetime | None = None,
    ) -> SilenceRecord:
        """Create a silence; groups are re-planned so muting (and, at expiry, unmuting)
        takes effect at their next flush."""
        now = self.store.now()
        rec = self.store.create_silence(
            check_matchers(matchers), reason, created_by, starts_at or now, ends_at
        )
        self.store.mark_groups_due(rec.ends_at)
        return rec

    def expire_silence(self, silence_id: int, actor: str) -> SilenceRecord:
        rec = self.store.expire_silence(silence_id, actor)
        self.store.mark_groups_due(self.store.now())
        return rec

    def silences(self, include_expired: bool = False) -> list[SilenceView]:
        """Silences with the alerts each one mutes right now."""
        now = self.store.now()
        open_alerts = self.store.list_alerts(state=["firing", "pending"], limit=100_000)
        out = []
        for s in self.store.list_silences():
            active = s.active(now)
            if not active and not include_expired:
                continue
            muting = tuple(a for a in open_alerts if active and silence_matches(s, a.labels))
            out.append(SilenceView(s, active, muting))
        return out
