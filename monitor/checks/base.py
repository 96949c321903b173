"""What a check is and what it is given: :class:`Check`, :class:`CheckContext`, :class:`CheckEnv`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from storage.profiles import ProfileSpec
from storage.types import MetricResult, ModelSchema

if TYPE_CHECKING:
    from monitor.checks.caches import Caches
    from monitor.monitors import MonitorConfig
    from monitor.ports import LogReader, ProfileEngine
    from storage.metadata.monitoring import MonitorRecord

__all__ = ["Check", "CheckContext", "CheckEnv"]


@dataclass
class CheckEnv:
    """What checks read from, shared by every run of a runner.

    Attributes
    ----------
    profiles
        The profile engine (``monitor.ports.ProfileEngine``).
    logs
        Bounded raw-log reads (``monitor.ports.LogReader``).
    caches
        References and fitted models, kept across windows.
    sample_size
        Rows of a window's bounded sample when the monitor does not set its own.
    """

    profiles: ProfileEngine
    logs: LogReader
    caches: Caches
    sample_size: int = 5000


@dataclass
class CheckContext:
    """One monitor on one window ``[start, end)``."""

    record: MonitorRecord
    cfg: MonitorConfig
    schema: ModelSchema
    start: datetime
    end: datetime
    env: CheckEnv
    base: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        # the fields every result of the run shares
        self.base = {
            "source": "monitor",
            "source_name": self.record.name,
            "kind": self.cfg.kind,
            "model": self.record.model,
            "window_start": self.start,
            "window_end": self.end,
            "definition_version": self.record.version,
        }

    @property
    def model(self) -> str:
        return self.record.model

    @property
    def sample_size(self) -> int:
        """Rows of the window's bounded sample (the monitor's own setting first)."""
        return self.cfg.sample_size or self.env.sample_size


class Check(ABC):
    """How one monitor kind evaluates a window. Stateless: state lives in ``env.caches``.

    Attributes
    ----------
    kinds
        The monitor kinds it evaluates (registry keys).
    uses_labels
        Late labels change its results: the runner re-runs its windows when labels arrive.
    reads_rows
        It reads rows, not hourly profiles: on a lake-fed model (rows in the lake) it gives
        one ``no_data`` result naming the reason (monitor/lake_mode.py).
    """

    kinds: ClassVar[tuple[str, ...]]
    uses_labels: ClassVar[bool] = False
    reads_rows: ClassVar[bool] = False

    def profile_spec(
        self, env: CheckEnv, record: MonitorRecord, cfg: MonitorConfig, schema: ModelSchema
    ) -> ProfileSpec:
        """The hourly profiles it reads (columns and bins); none by default."""
        return ProfileSpec()

    @abstractmethod
    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        """The window's results (not stored) and the raw rows scanned. Too little data is
        ``no_data`` results, not an exception."""
