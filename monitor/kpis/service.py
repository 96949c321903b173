"""KPI use cases shared by the API, the CLI, the scheduler, the dashboard and alerting.

What callers use
----------------
* definitions: :meth:`KpiService.create`, ``update``, ``delete``, ``get``, ``list``, ``apply``
* computation: :meth:`KpiService.compute` (a range; backfill), :meth:`KpiService.run_due`
  (every closed window since the last run; the scheduler's tick and catch-up)
* reading: :meth:`KpiService.series` (a KPI's values per tenant and window)
* link: :meth:`KpiService.related_signals` (a KPI breach → ranked model signals) and
  :meth:`KpiService.related_kpis` (a model alert → tenant KPIs that moved)
* :meth:`KpiService.summary` (executive summary per tenant and across tenants)

Reading, link and summary live in :mod:`monitor.kpis.reading` (the service's base class);
definitions and computation here.

KPI values are metric results (``source = "kpi"``) stored through the monitoring store, so
the alert engine and the dashboard read them like any monitor's. A computation is always for
every tenant of a KPI: the monitoring store replaces a window's results as a whole.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from monitor import windows
from monitor.errors import ConflictError, FieldError, NotFoundError, ValidationFailed
from monitor.kpis.compute import KpiComputer, windows_between
from monitor.kpis.definition import KpiDefinition, check_against_schema
from monitor.kpis.formula import EventFormula
from monitor.kpis.reading import KpiReading, utc
from monitor.ports import KpiSource
from storage.kpi_sql import KpiQueryError
from storage.logstore import LogStore
from storage.metadata import AlreadyExists, MetadataStore
from storage.metadata import NotFound as MetaNotFound
from storage.metadata.kpis import KpiStore
from storage.metadata.monitoring import MonitoringStore
from storage.types import KpiRecord, MetricResult

__all__ = ["ApplyChange", "KpiService", "parse_kpi"]

log = logging.getLogger("driftwatch.kpis")


def parse_kpi(data: Any, loc: tuple[str | int, ...] = ()) -> KpiDefinition:
    """Validate a KPI definition; :class:`ValidationFailed` names each bad field."""
    try:
        return KpiDefinition.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError((*loc, *(str(p) for p in e["loc"])), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(map(str, e.loc)) or 'kpi'}: {e.msg}" for e in errors)
        raise ValidationFailed(f"invalid KPI: {message}", errors) from exc


@dataclass(frozen=True)
class ApplyChange:
    name: str
    action: str  # create, update, unchanged
    diff: dict[str, Any]


class KpiService(KpiReading):
    """KPI definitions, computation, link and summaries over the process's stores (the
    reading, link and summary methods are :class:`~monitor.kpis.reading.KpiReading`'s).

    Parameters
    ----------
    metadata, logstore
        The open stores (``Services.metadata`` / ``Services.logstore``).
    queries
        The KPI source: the aggregates pushed down to the log store (the composition root
        gives ``storage.kpi_sql.KpiQueries`` over ``logstore``).
    sink
        The alert engine's ``results_written(results, backfill)``.
    clock
        The process's clock (``Services.clock``; the system clock by default).
    """

    def __init__(
        self,
        metadata: MetadataStore,
        logstore: LogStore,
        *,
        queries: KpiSource,
        sink: Any = None,
        clock: Callable[[], datetime] | None = None,
        late_lookback: timedelta = timedelta(days=7),
    ) -> None:
        self.metadata = metadata
        self.late_lookback = late_lookback
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sink = sink  # the alert engine's ``results_written(results, backfill)``
        self.logstore = logstore
        self.store = KpiStore(metadata)
        self.results = MonitoringStore(metadata)
        self.queries = queries
        self.computer = KpiComputer(self.queries, self._schema)

    def _schema(self, model: str) -> Any:
        info = self.metadata.get_model(model)
        return None if info is None else info.schema

    # ------------------------------------------------------------------ definitions
    def validate(self, data: Any, loc: tuple[str | int, ...] = ()) -> KpiDefinition:
        defn = parse_kpi(data, loc)
        problems = check_against_schema(defn, self._schema(defn.model) if defn.model else None)
        if problems:
            errors = [
                FieldError((*loc, p.split(":", 1)[0]), p.split(":", 1)[1].strip()) for p in problems
            ]
            raise ValidationFailed(f"invalid KPI {defn.name!r}: {'; '.join(problems)}", errors)
        return defn

    def get(self, name: str) -> KpiRecord:
        rec = self.store.get(name)
        if rec is None:
            known = [r.name for r in self.store.list()]
            raise NotFoundError(f"KPI {name!r} not found; KPIs: {known}")
        return rec

    def definition(self, name: str) -> KpiDefinition:
        return KpiDefinition.model_validate(self.get(name).spec)

    def list(self) -> list[KpiRecord]:
        return self.store.list()

    def definitions(self) -> builtins.list[KpiDefinition]:
        return [KpiDefinition.model_validate(r.spec) for r in self.store.list()]

    def create(self, data: Any, actor: str) -> KpiRecord:
        defn = self.validate(data)
        try:
            return self.store.create(defn.name, defn.to_spec(), actor, enabled=defn.enabled)
        except AlreadyExists as exc:
            raise ConflictError(f"KPI {defn.name!r} exists; change it with PUT") from exc

    def update(self, name: str, data: Any, actor: str) -> KpiRecord:
        defn = self.validate(data)
        if defn.name != name:
            raise ValidationFailed(
                f"body name {defn.name!r} differs from the URL's {name!r}",
                [FieldError(("name",), f"must be {name!r}")],
            )
        try:
            return self.store.update(name, defn.to_spec(), actor, enabled=defn.enabled)
        except MetaNotFound as exc:
            raise NotFoundError(f"KPI {name!r} not found") from exc

    def delete(self, name: str, actor: str) -> None:
        try:
            self.store.delete(name, actor)
        except MetaNotFound as exc:
            raise NotFoundError(f"KPI {name!r} not found") from exc

    def apply(
        self, items: Sequence[Any], actor: str, dry_run: bool = False
    ) -> builtins.list[ApplyChange]:
        """Create or update KPIs by name (the ``kpis:`` section of ``driftwatch apply``).

        Every item is validated before anything is written; errors carry ``kpis.<i>.<field>``.
        """
        defs = [self.validate(item, ("kpis", i)) for i, item in enumerate(items)]
        names = [d.name for d in defs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValidationFailed(
                f"KPI names repeated in the file: {sorted(dup)}",
                [FieldError(("kpis",), f"{n!r} appears twice") for n in sorted(dup)],
            )
        changes: list[ApplyChange] = []
        for d in defs:
            spec = d.to_spec()
            old = self.store.get(d.name)
            if old is None:
                changes.append(ApplyChange(d.name, "create", {"new": spec}))
                if not dry_run:
                    self.store.create(d.name, spec, actor, enabled=d.enabled)
                continue
            diff = {
                k: [old.spec.get(k), spec.get(k)]
                for k in sorted(set(old.spec) | set(spec))
                if old.spec.get(k) != spec.get(k)
            }
            changes.append(ApplyChange(d.name, "update" if diff else "unchanged", diff))
            if diff and not dry_run:
                self.store.update(d.name, spec, actor, enabled=d.enabled)
        return changes

    # ------------------------------------------------------------------ computation
    def compute(
        self,
        start: datetime,
        end: datetime,
        names: Sequence[str] | None = None,
        *,
        trigger: str = "manual",
    ) -> int:
        """Compute and store every window of ``[start, end)`` of these KPIs (all enabled
        ones by default) for all their tenants; re-running replaces. Returns rows written."""
        records = [self.get(n) for n in names] if names else self.store.list(enabled=True)
        written = 0
        for rec in records:
            d = KpiDefinition.model_validate(rec.spec)
            starts = windows_between(start, end, d.window)
            if not starts:
                continue
            last_end = windows.window(d.window).end(starts[-1])
            t0 = time.perf_counter()
            run = self.results.start_run(
                f"kpi:{d.name}",
                d.model or "",
                starts[0],
                last_end,
                trigger,
                rec.version,
            )
            try:
                rows = self.computer.compute([d], starts[0], last_end, computed_at=self.clock())
                rows = [_versioned(r, rec.version) for r in rows]
                self.results.save_results(rows, [("kpi", d.name, w) for w in starts])
            except (KpiQueryError, ValueError) as exc:
                self.results.finish_run(
                    run, "error", error=str(exc), duration_s=time.perf_counter() - t0
                )
                log.warning("KPI %s failed on %s..%s: %s", d.name, start, end, exc)
                continue
            self.results.finish_run(
                run, "ok", results=len(rows), duration_s=time.perf_counter() - t0
            )
            written += len(rows)
            if self.sink is not None and rows:
                try:  # alert rules over KPI results; a failing sink must not lose the results
                    self.sink.results_written(rows, backfill=trigger == "backfill")
                except Exception:
                    log.exception("result sink failed for KPI %s", d.name)
        return written

    def due_range(
        self, d: KpiDefinition, now: datetime, grace: timedelta = timedelta(minutes=10)
    ) -> tuple[datetime, datetime]:
        """The closed windows (after ``grace``) since the KPI's last run: ``[start, end)``,
        empty when nothing is due. A KPI never run starts with the window before now."""
        kind = windows.window(d.window)
        last = self.results.last_window_end(f"kpi:{d.name}")
        # the same rule as monitors' due windows (monitor.windows.due_windows)
        first = last if last is not None else kind.shift(now - grace, -1)
        due = windows.due_windows(d.window, first, now, grace)
        return (due[0], kind.end(due[-1])) if due else (first, first)

    def run_due(
        self,
        now: datetime | None = None,
        grace: timedelta = timedelta(minutes=10),
        names: Sequence[str] | None = None,
    ) -> int:
        """Compute every closed window (after ``grace``) since each KPI's last run (of
        ``names``, all enabled KPIs by default), oldest first: the scheduler's tick, and its
        catch-up after downtime. A KPI never run starts with the window before now. Then, as
        monitors do, windows computed within ``late_lookback`` whose events (or model rows and
        labels) arrived after their last computation are computed again (trigger ``late``)."""
        now = utc(now or self.clock())
        written = 0
        records = [self.get(n) for n in names] if names else self.store.list(enabled=True)
        for rec in records:
            d = KpiDefinition.model_validate(rec.spec)
            kind = windows.window(d.window)
            start, end = self.due_range(d, now, grace)
            if start < end:
                written += self.compute(start, end, [d.name], trigger="schedule")
            for w in self.late_windows(d, now):
                written += self.compute(w, kind.end(w), [d.name], trigger="late")
        return written

    def late_windows(self, d: KpiDefinition, now: datetime) -> builtins.list[datetime]:
        """Computed windows (within ``late_lookback``) holding rows received after the
        window's last computation finished, oldest first."""
        kind = windows.window(d.window)
        since = kind.floor(now - self.late_lookback)
        finished: dict[datetime, datetime] = {}
        # a run computes a range of windows (a catch-up, a backfill's chunk of 24)
        for run in self.results.last_runs(f"kpi:{d.name}", kind.shift(since, -24)).values():
            if run.finished_at is None or run.window_end <= since:
                continue
            for w in kind.starts(run.window_start, run.window_end):
                if w >= since:
                    finished[w] = max(finished.get(w, run.finished_at), run.finished_at)
        if not finished:
            return []
        model = None if isinstance(d.parsed, EventFormula) else d.model
        hours = self.logstore.received_per_hour(since, kind.end(max(finished)), model)
        late = {
            kind.floor(h)
            for h, received in hours.items()
            if kind.floor(h) in finished and received > finished[kind.floor(h)]
        }
        return sorted(late)


def _versioned(r: MetricResult, version: int) -> MetricResult:
    return replace(r, definition_version=version)
