"""Lake-fed models in the monitoring core: what a lake job must compute, and what a check that
needs rows says when the rows stay in the lake (docs/scale-out.md).

A lake-fed model's hourly profiles are pushed by ``driftwatch profile``; its raw rows are never
in the server's tables. Checks that read profiles run unchanged; checks that read rows
(``Check.reads_rows``: performance, estimated performance, multivariate drift) give one
``no_data`` result naming the reason, and the row reads other checks make (a window sample for
sample-based drift methods, a relative reference's first-week sample) fail their run with the
reason: never a silent gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from storage.metadata.monitoring import MonitorRecord
from storage.profiles import ProfileSpec
from storage.types import ALL, MetricResult

if TYPE_CHECKING:
    from monitor.checks import CheckContext
    from monitor.ports import LogReader, ProfileEngine

__all__ = ["LakeGuard", "lake_no_data", "lake_reason", "model_spec"]


def lake_reason(what: str) -> str:
    """Why a lake-fed model's check cannot have ``what``."""
    return (
        f"lake-fed model: {what} needs rows, which stay in the lake; a lake job pushes hourly "
        "profiles only (docs/scale-out.md)"
    )


def lake_no_data(ctx: CheckContext) -> MetricResult:
    """The one result of a row-reading check on a lake-fed model."""
    return MetricResult(
        **ctx.base,
        tenant_id=ALL,
        model_version=ALL,
        column="",
        metric=ctx.cfg.kind,
        value=None,
        threshold=None,
        status="no_data",
        details={"reason": lake_reason(ctx.cfg.kind.replace("_", " "))},
    )


class LakeGuard:
    """The log reader as checks see it: for a lake-fed model the reads of rows raise
    ``LookupError`` naming the reason (the run records it) instead of reading the server's
    empty table; every other read passes through."""

    _ROWS: ClassVar[dict[str, str]] = {
        "sample": "a sample of its rows",
        "labelled": "its labelled rows",
        "first_ts": "a relative reference (bins from a sample of its first week; upload a "
        "reference dataset instead)",
    }

    def __init__(self, logs: LogReader, profiles: ProfileEngine) -> None:
        self._logs = logs
        self._profiles = profiles

    def __getattr__(self, name: str) -> Any:
        read = getattr(self._logs, name)
        what = self._ROWS.get(name)
        if what is None:
            return read

        def checked(model: str, *args: Any, **kwargs: Any) -> Any:
            if self._profiles.lake_fed(model):
                raise LookupError(lake_reason(what))
            return read(model, *args, **kwargs)

        return checked


class SpecSource(Protocol):
    """What :func:`model_spec` needs of the runner."""

    @property
    def profiles(self) -> ProfileEngine: ...

    def monitor_spec(self, record: MonitorRecord) -> ProfileSpec: ...


def model_spec(
    runner: SpecSource, model: str, records: Sequence[MonitorRecord]
) -> tuple[ProfileSpec, dict[str, str]]:
    """What a profile engine must compute for ``model``: the merged spec of its enabled
    monitors ``records`` (registered with the runner's profile engine, so its key is what pushed
    profiles are checked against), and the monitors left out with the reason (e.g. a relative
    reference, whose bins come from a sample of the model's own logs)."""
    spec = ProfileSpec()
    skipped: dict[str, str] = {}
    for record in records:
        try:
            spec = spec.merged(runner.monitor_spec(record))
        except Exception as exc:  # that monitor's runs say the same
            skipped[record.name] = f"{type(exc).__name__}: {exc}"
    return runner.profiles.register(model, spec), skipped
