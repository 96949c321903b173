"""``MonitoringStore``: monitors with their version history, runs and metric results.

Built on a :class:`~storage.metadata.store.MetadataStore` (same engine, same audit log). Every
method uses one short transaction; rows are converted to the frozen types below (or to
:class:`storage.types.MetricResult`) before they leave.

Results are idempotent by their key: :meth:`MonitoringStore.save_results` deletes every stored
row of the windows it writes (``source``, ``source_name``, ``window_start``) and inserts the new
rows in the same transaction, so a re-run replaces a window's results and never duplicates
them. KPIs use the same call with ``source="kpi"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, tuple_
from sqlalchemy.orm import Session

from storage.metadata.bulk import BulkInsert
from storage.metadata.definitions import Definitions
from storage.metadata.errors import NotFound
from storage.metadata.models_monitoring import (
    MetricResultRow,
    MonitorRow,
    MonitorRunRow,
    MonitorVersionRow,
)
from storage.metadata.store import MetadataStore
from storage.types import STATUSES, MetricResult, leaf_diff

__all__ = [
    "FinishedRun",
    "MonitorRecord",
    "MonitorVersion",
    "MonitoringStore",
    "ResultQuery",
    "RunRecord",
]

# windows per DELETE of stored results (bound parameters stay well under SQLite's limit)
_DELETE_CHUNK = 500
_RUN_KEYS = (
    "monitor",
    "model",
    "window_start",
    "window_end",
    "trigger",
    "definition_version",
    "started_at",
    "finished_at",
    "status",
    "error",
    "rows_scanned",
    "results",
    "duration_s",
)
_RESULT_KEYS = (
    "source",
    "source_name",
    "kind",
    "model",
    "window_start",
    "window_end",
    "tenant_id",
    "model_version",
    "column_name",
    "metric",
    "value",
    "threshold",
    "status",
    "details",
    "definition_version",
    "computed_at",
)
# columns whose few distinct values repeat over a batch: bound once per value
_MEMO = ("window_start", "window_end", "started_at", "finished_at", "computed_at")


@dataclass(frozen=True)
class MonitorRecord:
    name: str
    model: str
    kind: str
    config: dict[str, Any]
    version: int
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MonitorVersion:
    monitor: str
    version: int
    action: str
    config: dict[str, Any]
    diff: dict[str, Any]
    actor: str
    ts: datetime


@dataclass(frozen=True)
class FinishedRun:
    """A run evaluated before it is recorded (a backfill records its windows in batches)."""

    monitor: str
    model: str
    window_start: datetime
    window_end: datetime
    trigger: str
    definition_version: int
    status: str
    error: str | None = None
    rows_scanned: int = 0
    results: int = 0
    duration_s: float | None = None


@dataclass(frozen=True)
class RunRecord:
    id: int
    monitor: str
    model: str
    window_start: datetime
    window_end: datetime
    trigger: str
    definition_version: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None
    rows_scanned: int
    results: int
    duration_s: float | None


@dataclass(frozen=True)
class ResultQuery:
    """Filters of :meth:`MonitoringStore.query_results` (``None``: any). ``start``/``end``
    select windows with ``start <= window_start < end``; ``tenant_ids`` restricts to a set
    (a tenant-scoped caller)."""

    model: str | None = None
    source: str | None = None
    source_name: str | None = None
    kind: str | None = None
    tenant_id: str | None = None
    tenant_ids: tuple[str, ...] | None = None
    model_version: str | None = None
    column: str | None = None
    metric: str | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _monitor(row: MonitorRow) -> MonitorRecord:
    return MonitorRecord(
        name=row.name,
        model=row.model,
        kind=row.kind,
        config=dict(row.config),
        version=row.version,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _version(
    s: Session, row: MonitorRow, action: str, diff: dict[str, Any], actor: str, now: datetime
) -> None:
    """A monitor's history: its definition as created or updated, or as it was when deleted
    (at the version after its last)."""
    version = row.version + 1 if action == "delete" else row.version
    s.add(
        MonitorVersionRow(
            monitor=row.name,
            version=version,
            action=action,
            config=dict(row.config),
            diff=diff,
            actor=actor,
            ts=now,
        )
    )


def _run(row: MonitorRunRow) -> RunRecord:
    return RunRecord(
        id=row.id,
        monitor=row.monitor,
        model=row.model,
        window_start=row.window_start,
        window_end=row.window_end,
        trigger=row.trigger,
        definition_version=row.definition_version,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        error=row.error,
        rows_scanned=row.rows_scanned,
        results=row.results,
        duration_s=row.duration_s,
    )


def _result(row: MetricResultRow) -> MetricResult:
    return MetricResult(
        source=row.source,  # type: ignore[arg-type]
        source_name=row.source_name,
        kind=row.kind,
        model=row.model,
        window_start=row.window_start,
        window_end=row.window_end,
        tenant_id=row.tenant_id,
        model_version=row.model_version,
        column=row.column_name,
        metric=row.metric,
        value=row.value,
        threshold=row.threshold,
        status=row.status,  # type: ignore[arg-type]
        details=dict(row.details or {}),
        definition_version=row.definition_version,
        computed_at=row.computed_at,
    )


def _finite(value: float | None) -> float | None:
    # NaN/inf are not portable through JSON nor PostgreSQL comparisons: store them as NULL.
    if value is None:
        return None
    v = float(value)
    return v if v == v and v not in (float("inf"), float("-inf")) else None


class MonitoringStore:
    """Monitors, runs and metric results in the metadata database.

    Parameters
    ----------
    metadata
        An upgraded :class:`MetadataStore`; its engine, clock and audit log are shared.
    """

    def __init__(self, metadata: MetadataStore) -> None:
        self._meta = metadata
        self._defs = Definitions(
            metadata,
            MonitorRow,
            _monitor,
            noun="monitor",
            action="monitor",
            object_type="monitor",
            history=_version,
        )
        self._inserts: dict[tuple[str, int], BulkInsert] = {}

    def _insert(
        self, s: Session, table: Any, keys: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert ``rows`` (values of ``keys``) into ``table`` in the session's transaction
        (one driver ``executemany``, see :mod:`storage.metadata.bulk`)."""
        conn = s.connection()
        key = (table.name, id(conn.dialect))
        bulk = self._inserts.get(key)
        if bulk is None:
            bulk = BulkInsert(table, keys, conn.dialect, memo=_MEMO)
            self._inserts[key] = bulk
        bulk.run(conn, rows)

    # ------------------------------------------------------------------ monitors
    def create_monitor(
        self,
        name: str,
        model: str,
        kind: str,
        config: dict[str, Any],
        actor: str = "system",
        enabled: bool = True,
    ) -> MonitorRecord:
        """Create a monitor at version 1. Raises :class:`AlreadyExists` for a taken name."""
        return self._defs.create(
            name, actor, enabled, {"config": config}, model=model, kind=kind, config=config
        )

    def update_monitor(
        self,
        name: str,
        config: dict[str, Any],
        actor: str = "system",
        enabled: bool | None = None,
    ) -> MonitorRecord:
        """Replace a monitor's config; bumps the version (and records the diff) only when
        something changed. Model and kind come from the config's ``model``/``kind`` keys."""
        with self._meta.writing() as s:
            row = self._defs.require(s, name)
            diff = leaf_diff(dict(row.config), config)
            if enabled is not None and enabled != row.enabled:
                diff["enabled"] = [row.enabled, enabled]
            if not diff:
                return _monitor(row)
            row.config = config
            row.model = str(config.get("model", row.model))
            row.kind = str(config.get("kind", row.kind))
            return self._defs.bump(s, row, actor, enabled, {"diff": diff}, diff)

    def delete_monitor(self, name: str, actor: str = "system") -> None:
        """Delete a monitor (its versions, runs and results stay for the record)."""
        self._defs.delete(name, actor)

    def get_monitor(self, name: str) -> MonitorRecord | None:
        return self._defs.get(name)

    def list_monitors(
        self, model: str | None = None, enabled: bool | None = None
    ) -> list[MonitorRecord]:
        return self._defs.list(enabled, None if model is None else MonitorRow.model == model)

    def monitor_versions(self, name: str) -> list[MonitorVersion]:
        """The monitor's definition history, oldest first."""
        stmt = (
            select(MonitorVersionRow)
            .where(MonitorVersionRow.monitor == name)
            .order_by(MonitorVersionRow.version)
        )
        with self._meta.reading() as s:
            return [
                MonitorVersion(
                    r.monitor, r.version, r.action, dict(r.config), dict(r.diff), r.actor, r.ts
                )
                for r in s.scalars(stmt)
            ]

    # ------------------------------------------------------------------ runs
    def start_run(
        self,
        monitor: str,
        model: str,
        window_start: datetime,
        window_end: datetime,
        trigger: str,
        definition_version: int,
    ) -> int:
        """Record a run as ``running``; returns its id for :meth:`finish_run`."""
        with self._meta.writing() as s:
            row = MonitorRunRow(
                monitor=monitor,
                model=model,
                window_start=window_start,
                window_end=window_end,
                trigger=trigger,
                definition_version=definition_version,
                started_at=self._meta.now(),
                finished_at=None,
                status="running",
                error=None,
                rows_scanned=0,
                results=0,
                duration_s=None,
            )
            s.add(row)
            s.flush()
            return int(row.id)

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        rows_scanned: int = 0,
        results: int = 0,
        duration_s: float | None = None,
    ) -> None:
        if status not in ("ok", "error"):
            raise ValueError(f"run status {status!r} must be 'ok' or 'error'")
        with self._meta.writing() as s:
            row = s.get(MonitorRunRow, run_id)
            if row is None:
                raise NotFound(f"run {run_id} not found")
            row.status = status
            row.error = error
            row.rows_scanned = int(rows_scanned)
            row.results = int(results)
            row.duration_s = duration_s
            row.finished_at = self._meta.now()

    def list_runs(
        self,
        monitor: str | None = None,
        model: str | None = None,
        status: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """Runs newest first (by window, then start) and the total count of matches."""
        stmt = select(MonitorRunRow)
        if monitor is not None:
            stmt = stmt.where(MonitorRunRow.monitor == monitor)
        if model is not None:
            stmt = stmt.where(MonitorRunRow.model == model)
        if status is not None:
            stmt = stmt.where(MonitorRunRow.status == status)
        if start is not None:
            stmt = stmt.where(MonitorRunRow.window_start >= start)
        if end is not None:
            stmt = stmt.where(MonitorRunRow.window_start < end)
        with self._meta.reading() as s:
            total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
            rows = s.scalars(
                stmt.order_by(MonitorRunRow.window_start.desc(), MonitorRunRow.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_run(r) for r in rows], total

    def last_runs(self, monitor: str, since: datetime | None = None) -> dict[datetime, RunRecord]:
        """Window start -> the latest finished or running run of that window."""
        stmt = select(MonitorRunRow).where(MonitorRunRow.monitor == monitor)
        if since is not None:
            stmt = stmt.where(MonitorRunRow.window_start >= since)
        out: dict[datetime, RunRecord] = {}
        with self._meta.reading() as s:
            for r in s.scalars(stmt.order_by(MonitorRunRow.id)):
                out[r.window_start] = _run(r)
        return out

    def last_window_end(
        self, monitor: str, triggers: Sequence[str] | None = None
    ) -> datetime | None:
        """End of the newest window this monitor has run (any status), None if never;
        ``triggers`` counts only runs started that way (the scheduler's own runs)."""
        stmt = select(func.max(MonitorRunRow.window_end)).where(MonitorRunRow.monitor == monitor)
        if triggers is not None:
            stmt = stmt.where(MonitorRunRow.trigger.in_(list(triggers)))
        with self._meta.reading() as s:
            return s.scalar(stmt)

    # ------------------------------------------------------------------ results
    def save_results(
        self,
        results: Sequence[MetricResult],
        windows: Iterable[tuple[str, str, datetime]] = (),
    ) -> int:
        """Replace the stored results of every window written, in one transaction.

        Parameters
        ----------
        results
            New results. Each distinct ``(source, source_name, window_start)`` among them
            loses all its previously stored rows first.
        windows
            More ``(source, source_name, window_start)`` to clear (a re-run that produced no
            results must still remove the old ones).

        Returns
        -------
        int
            Rows inserted.
        """
        now = self._meta.now()
        with self._meta.writing() as s:
            self._replace_results(s, results, windows, now)
        return len(results)

    def record_runs(self, runs: Sequence[FinishedRun], results: Sequence[MetricResult]) -> None:
        """Finished runs and their results in one transaction (a batch of a backfill's windows).

        The results replace the stored rows of every window whose run is ``ok``, as
        :meth:`save_results` does; a failed run leaves its window's stored results alone (as a
        run that failed before :meth:`save_results`)."""
        for run in runs:
            if run.status not in ("ok", "error"):
                raise ValueError(f"run status {run.status!r} must be 'ok' or 'error'")
        now = self._meta.now()
        windows = [("monitor", r.monitor, r.window_start) for r in runs if r.status == "ok"]
        with self._meta.writing() as s:
            self._replace_results(s, results, windows, now)
            if runs:
                self._insert(
                    s,
                    MonitorRunRow.__table__,
                    _RUN_KEYS,
                    [
                        (
                            r.monitor,
                            r.model,
                            r.window_start,
                            r.window_end,
                            r.trigger,
                            r.definition_version,
                            now,
                            now,
                            r.status,
                            r.error,
                            int(r.rows_scanned),
                            int(r.results),
                            r.duration_s,
                        )
                        for r in runs
                    ],
                )

    def _replace_results(
        self,
        s: Any,
        results: Sequence[MetricResult],
        windows: Iterable[tuple[str, str, datetime]],
        now: datetime,
    ) -> None:
        scopes: set[tuple[str, str, datetime]] = {
            (r.source, r.source_name, r.window_start) for r in results
        }
        scopes.update(windows)
        for r in results:
            if r.status not in STATUSES:
                raise ValueError(f"result status {r.status!r} is not one of {STATUSES}")
        # one DELETE per source and name for all its windows (a backfill's batch holds up to 64
        # windows of one monitor: one statement each was a large part of recording them)
        starts: dict[tuple[str, str], list[datetime]] = {}
        for source, name, start in sorted(scopes, key=lambda t: (t[0], t[1], t[2])):
            starts.setdefault((source, name), []).append(start)
        for (source, name), when in starts.items():
            for i in range(0, len(when), _DELETE_CHUNK):
                s.execute(
                    delete(MetricResultRow).where(
                        MetricResultRow.source == source,
                        MetricResultRow.source_name == name,
                        MetricResultRow.window_start.in_(when[i : i + _DELETE_CHUNK]),
                    )
                )
        if results:
            self._insert(
                s,
                MetricResultRow.__table__,
                _RESULT_KEYS,
                [
                    (
                        r.source,
                        r.source_name,
                        r.kind,
                        r.model,
                        r.window_start,
                        r.window_end,
                        r.tenant_id,
                        r.model_version,
                        r.column,
                        r.metric,
                        _finite(r.value),
                        _finite(r.threshold),
                        r.status,
                        r.details,
                        r.definition_version,
                        r.computed_at or now,
                    )
                    for r in results
                ],
            )

    def _filtered(self, q: ResultQuery) -> Select[Any]:
        stmt = select(MetricResultRow)
        pairs = [
            (MetricResultRow.model, q.model),
            (MetricResultRow.source, q.source),
            (MetricResultRow.source_name, q.source_name),
            (MetricResultRow.kind, q.kind),
            (MetricResultRow.tenant_id, q.tenant_id),
            (MetricResultRow.model_version, q.model_version),
            (MetricResultRow.column_name, q.column),
            (MetricResultRow.metric, q.metric),
            (MetricResultRow.status, q.status),
        ]
        for col, value in pairs:
            if value is not None:
                stmt = stmt.where(col == value)
        if q.tenant_ids is not None:
            stmt = stmt.where(MetricResultRow.tenant_id.in_(q.tenant_ids))
        if q.start is not None:
            stmt = stmt.where(MetricResultRow.window_start >= q.start)
        if q.end is not None:
            stmt = stmt.where(MetricResultRow.window_start < q.end)
        return stmt

    def query_results(
        self, query: ResultQuery | None = None, limit: int = 1000, offset: int = 0
    ) -> tuple[list[MetricResult], int]:
        """Results matching ``query``, ordered by window then key, and the total count."""
        stmt = self._filtered(query or ResultQuery())
        with self._meta.reading() as s:
            total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
            rows = s.scalars(
                stmt.order_by(
                    MetricResultRow.window_start,
                    MetricResultRow.source_name,
                    MetricResultRow.tenant_id,
                    MetricResultRow.model_version,
                    MetricResultRow.column_name,
                    MetricResultRow.metric,
                )
                .limit(limit)
                .offset(offset)
            )
            return [_result(r) for r in rows], total

    def results_for_windows(
        self, source: str, source_name: str, window_starts: Iterable[datetime]
    ) -> list[MetricResult]:
        """Every stored result of these windows of one monitor or KPI."""
        starts = list(window_starts)
        if not starts:
            return []
        stmt = select(MetricResultRow).where(
            tuple_(MetricResultRow.source, MetricResultRow.source_name) == (source, source_name),
            MetricResultRow.window_start.in_(starts),
        )
        with self._meta.reading() as s:
            return [_result(r) for r in s.scalars(stmt)]
