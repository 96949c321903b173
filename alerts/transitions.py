"""What an alert evaluation (:mod:`alerts.evaluate`) gives back: the alert records it wrote
(:class:`Transition`) and the newest window it saw of each series (:class:`SeriesSeen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storage.types import AlertRecord

__all__ = ["Evaluation", "SeriesSeen", "Transition"]


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
