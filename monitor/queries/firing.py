"""Firing alerts as people count them: those that notify, and apart from them the inhibited
ones (firing, their notifications held while the alert that stands for them fires: an
all-tenants alert behind its tenant's, a drift behind a critical data-quality alert).

One drift usually fires for its tenant and for all tenants together; counting both said
"15 firing" on the overview of a demo with 8 problems on-call hears about. Every page counts
with :func:`split_firing`: the overview's totals and grid, the alert list's rows and its
summary line. Which alerts are inhibited is the engine's answer (its inhibit rules over every
firing alert), as notifications apply it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.silences import InhibitIndex
from monitor.composition import of
from monitor.queries.common import alert_store
from monitor.service import Services
from storage.types import AlertRecord

__all__ = ["FiringSplit", "inhibit_index", "split_firing"]


@dataclass(frozen=True)
class FiringSplit:
    """Firing ``alerts`` split: ``notifying`` (what "firing" counts) and ``inhibited``."""

    notifying: list[AlertRecord]
    inhibited: list[AlertRecord]


def inhibit_index(services: Services, firing: Sequence[AlertRecord] | None = None) -> InhibitIndex:
    """The engine's inhibit rules over every firing alert (``firing`` when the caller read
    them already; else one read, as a notification flush does)."""
    if firing is None:
        firing = alert_store(services).list_alerts(state="firing", limit=1_000_000)
    return InhibitIndex(firing, of(services).alerting.engine.inhibit_rules)


def split_firing(
    services: Services, alerts: Sequence[AlertRecord], index: InhibitIndex | None = None
) -> FiringSplit:
    """The firing ones of ``alerts``, split into those that notify and the inhibited."""
    index = index or inhibit_index(services)
    notifying: list[AlertRecord] = []
    inhibited: list[AlertRecord] = []
    for a in alerts:
        if a.state == "firing":
            (inhibited if index.inhibited_by(a) else notifying).append(a)
    return FiringSplit(notifying, inhibited)
