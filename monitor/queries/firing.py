"""Firing alerts as people count them: those that notify, and apart from them the inhibited
ones (firing, their notifications held while the alert that stands for them fires: an
all-tenants alert behind its tenant's, a drift behind a critical data-quality alert).

One drift usually fires for its tenant and for all tenants together; counting both said
"15 firing" on the overview of a demo with 8 problems on-call hears about. The overview's
totals and grid count with :func:`split_firing`; the alert list marks each inhibited row
(``monitor.alert_pages.find_inhibitors``, the same rules for one page's rows). Which alerts
are inhibited is the engine's answer (its inhibit rules over every firing alert), as
notifications apply it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from alerts.silences import InhibitIndex, Labelled
from monitor.composition import of
from monitor.queries.common import alert_store
from monitor.service import Services
from storage.types import FiringAlert

A = TypeVar("A", bound=Labelled)

__all__ = ["FiringSplit", "firing_alerts", "inhibit_index", "split_firing"]


@dataclass(frozen=True)
class FiringSplit(Generic[A]):
    """Firing ``alerts`` split: ``notifying`` (what "firing" counts) and ``inhibited``."""

    notifying: list[A]
    inhibited: list[A]


def firing_alerts(services: Services) -> list[FiringAlert]:
    """Every firing alert, as much of it as counting and inhibition need (a light read)."""
    return alert_store(services).firing_labels()


def inhibit_index(services: Services, firing: Sequence[Labelled] | None = None) -> InhibitIndex:
    """The engine's inhibit rules over every firing alert (``firing`` when the caller read
    them already; else one read, as a notification flush does)."""
    if firing is None:
        firing = firing_alerts(services)
    return InhibitIndex(firing, of(services).alerting.engine.inhibit_rules)


def split_firing(
    services: Services, alerts: Sequence[A], index: InhibitIndex | None = None
) -> FiringSplit[A]:
    """The firing ones of ``alerts``, split into those that notify and the inhibited."""
    index = index or inhibit_index(services)
    notifying: list[A] = []
    inhibited: list[A] = []
    for a in alerts:
        if a.state == "firing":
            (inhibited if index.inhibited_by(a) else notifying).append(a)
    return FiringSplit(notifying, inhibited)
