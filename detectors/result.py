"""The value every detector returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DetectorResult:
    """Outcome of comparing a current sample or profile with its reference.

    ``statistic`` is the method's own score (a distance, a test statistic); ``p_value`` is set
    for hypothesis tests and ``None`` for distances. ``drifted`` is ``None`` when there was too
    little data to judge (``no_data``), never a guess.
    """

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool | None
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def no_data(self) -> bool:
        return self.drifted is None
