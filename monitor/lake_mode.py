"""Lake-fed models in the monitoring core: what a lake job must compute, and how checks that
need rows read a lake-fed model (docs/scale-out.md).

A lake-fed model's hourly profiles are pushed by ``driftwatch profile``; its raw rows are never
in the server's tables. Checks that read profiles run unchanged. Checks that read rows get their
mergeable hourly forms, computed by the same kernel and pushed with the profiles
(``storage.row_kernel``): a window's bounded sample is the bottom-n of its hours' bottom-k
samples (the same rows the embedded store's sample picks), so sample-based drift, multivariate
drift and CBPE/DLE give the embedded results; realized performance is computed from the hourly
label aggregates (its rank metrics are ``no_data`` saying why). What still cannot be served
fails with the reason, never a silent gap: a relative reference (its bins come from a
200,000-row sample of the model's first week), a sample larger than the k the job keeps, a
read of the labelled rows themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pyarrow as pa

from storage.metadata.monitoring import MonitorRecord
from storage.profiles import ProfileSpec
from storage.row_kernel import LabelSpec
from storage.types import ALL, MetricResult, ModelSchema

if TYPE_CHECKING:
    from monitor.checks import CheckContext
    from monitor.monitors import MonitorConfig
    from monitor.ports import LogReader, ProfileEngine

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = ["LakeGuard", "lake_no_data", "lake_reason", "model_spec", "row_spec"]


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
        "labelled": "its labelled rows",
        "first_ts": "a relative reference (bins from a sample of its first week; upload a "
        "reference dataset instead)",
    }

    def __init__(self, logs: LogReader, profiles: ProfileEngine) -> None:
        self._logs = logs
        self._profiles = profiles

    def sample(
        self,
        model: str,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        n: int,
        *,
        tenant_id: str | None = None,
        seed: int = 0,
    ) -> pa.Table:
        """The window's bounded sample; for a lake-fed model from its pushed hourly samples
        (seed 0 only: the one sample a lake job keeps)."""
        if not self._profiles.lake_fed(model):
            return self._logs.sample(model, start, end, columns, n, tenant_id=tenant_id, seed=seed)
        if seed != 0:
            raise LookupError(lake_reason(f"a sample with seed {seed} (the job keeps seed 0)"))
        return self._profiles.lake_sample(model, start, end, columns, n, tenant_id=tenant_id)

    def label_stats(
        self, model: str, start: datetime, end: datetime
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Rows, labelled rows and mean label delay per tenant, per version and overall; for a
        lake-fed model from its profiles' row counts and its pushed label aggregates."""
        if not self._profiles.lake_fed(model):
            return self._logs.label_stats(model, start, end)
        rows = self._profiles.row_counts(model, start, end, end - start)
        aggs = self._profiles.label_aggregates(model, start, end)
        lab: dict[tuple[str, str], list[float]] = {}
        for t, v, name, n, total in zip(
            *(
                aggs.column(c).to_pylist()
                for c in ("tenant_id", "model_version", "name", "n", "value")
            ),
            strict=True,
        ):
            if name != "labelled":
                continue
            for seg in ((t, ALL), (ALL, v), (ALL, ALL)):
                cell = lab.setdefault(seg, [0, 0.0])
                cell[0] += int(n)
                cell[1] += float(total)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for seg, counts in rows.items():
            if not counts or not counts[0]:
                continue
            k, delay = lab.get(seg, [0, 0.0])
            out[seg] = {
                "rows": int(counts[0]),
                "labelled": int(k),
                "delay_s": delay / k if k else None,
            }
        return out

    def last_ts(
        self, model: str, before: datetime, since: datetime | None = None
    ) -> dict[tuple[str, str], datetime]:
        """Newest row ``ts`` before ``before`` per tenant, per version and overall; for a
        lake-fed model from its profiles (the rows pseudo column's max is the hour's last ts;
        ``since`` and ``before`` are window bounds, on an hour)."""
        if not self._profiles.lake_fed(model):
            return self._logs.last_ts(model, before, since)
        from storage.profiles import ROWS_COLUMN

        window = self._profiles.window(model, since or _EPOCH, before, [(ROWS_COLUMN, "")])
        out: dict[tuple[str, str], datetime] = {}
        for (t, v), cols in window.items():
            raw = cols.get((ROWS_COLUMN, ""))
            if raw is None or raw.max is None or not raw.count:
                continue
            last = datetime.fromtimestamp(raw.max, UTC)
            for seg in ((t, ALL), (ALL, v or ""), (ALL, ALL)):
                if seg not in out or last > out[seg]:
                    out[seg] = last
        return out

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


def row_spec(cfg: MonitorConfig, schema: ModelSchema, sample_size: int) -> ProfileSpec:
    """What a monitor needs of a lake job beyond profiles (spec format 2): a bottom-k sample
    of every schema column (k = its sample size) for multivariate drift, estimated
    performance, drift methods that run on samples and segment attribution; label aggregates
    for realized performance."""
    from detectors.drift import get_method

    needs_sample = cfg.kind in ("multivariate_drift", "estimated_performance")
    if cfg.kind in ("feature_drift", "prediction_drift"):
        methods = cfg.methods
        names: list[str] = []
        if isinstance(methods, dict):
            for v in methods.values():
                names += [v] if isinstance(v, str) else list(v)
        elif isinstance(methods, list):
            names = list(methods)
        on_samples = any(not get_method(m).works_on_profiles for m in names)
        segments = cfg.attribution and any(
            f.segment and f.kind in ("categorical", "boolean") for f in schema.features
        )
        needs_sample = on_samples or segments
    spec = ProfileSpec()
    if needs_sample:
        columns = (*(f.name for f in schema.features), schema.prediction, *schema.scores)
        spec = ProfileSpec(
            sample_k=cfg.sample_size or sample_size,
            sample_columns=tuple(dict.fromkeys(columns)),
        )
    if cfg.kind == "performance":
        spec = spec.merged(
            ProfileSpec(labels=LabelSpec(schema.task, schema.prediction, schema.scores))
        )
    return spec


class SpecSource(Protocol):
    """What :func:`model_spec` needs of the runner."""

    @property
    def profiles(self) -> ProfileEngine: ...

    def monitor_spec(self, record: MonitorRecord) -> ProfileSpec: ...

    def monitor_row_spec(self, record: MonitorRecord) -> ProfileSpec: ...


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
            spec = spec.merged(runner.monitor_spec(record)).merged(runner.monitor_row_spec(record))
        except Exception as exc:  # that monitor's runs say the same
            skipped[record.name] = f"{type(exc).__name__}: {exc}"
    return runner.profiles.register(model, spec), skipped
