"""Read-only queries behind the dashboard's read models (``monitor.queries``).

Aggregates the generic repositories do not offer: the newest window of every (source, tenant),
results of a time range without a count, the newest ``computed_at``, and the first and last
time each model version was seen in the logs. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select

from storage import tables
from storage.logstore import LogStore
from storage.metadata.models_monitoring import MetricResultRow, MonitorRunRow
from storage.metadata.store import MetadataStore
from storage.types import ALL, MetricResult

__all__ = [
    "last_computed",
    "last_run_at",
    "latest_results",
    "results_between",
    "results_version",
    "version_spans",
]


def _from_row(m: Any) -> MetricResult:
    """A result from a Core row (no ORM instance: about twice as fast for large reads)."""
    return MetricResult(
        source=m.source,
        source_name=m.source_name,
        kind=m.kind,
        model=m.model,
        window_start=m.window_start,
        window_end=m.window_end,
        tenant_id=m.tenant_id,
        model_version=m.model_version,
        column=m.column_name,
        metric=m.metric,
        value=m.value,
        threshold=m.threshold,
        status=m.status,
        details=dict(m.details or {}),
        definition_version=m.definition_version,
        computed_at=m.computed_at,
    )


def _filters(
    stmt: Select,  # type: ignore[type-arg]
    *,
    source: str | None,
    model: str | None,
    kinds: Sequence[str] | None,
    tenant_ids: Sequence[str] | None,
    include_all: bool,
    columns: Sequence[str] | None = None,
    source_name: str | None = None,
    model_version: str | None = None,
) -> Select:  # type: ignore[type-arg]
    r = MetricResultRow
    if model_version is not None:
        stmt = stmt.where(r.model_version == model_version)
    if source is not None:
        stmt = stmt.where(r.source == source)
    if model is not None:
        stmt = stmt.where(r.model == model)
    if kinds is not None:
        stmt = stmt.where(r.kind.in_(list(kinds)))
    if source_name is not None:
        stmt = stmt.where(r.source_name == source_name)
    if columns is not None:
        stmt = stmt.where(r.column_name.in_(list(columns)))
    if tenant_ids is not None:
        allowed = list(tenant_ids) + ([ALL] if include_all else [])
        stmt = stmt.where(r.tenant_id.in_(allowed))
    elif not include_all:
        stmt = stmt.where(r.tenant_id != ALL)
    return stmt


def _starting_from(
    stmt: Select,  # type: ignore[type-arg]
    start: datetime | None,
    reach: timedelta | None,
) -> Select:  # type: ignore[type-arg]
    """``stmt`` limited to windows starting at ``start`` or later; with ``reach`` (the longest
    window), also those starting up to that long before ``start`` and ending after it: the
    windows *overlapping* the range."""
    r = MetricResultRow
    if start is None:
        return stmt
    if reach:
        return stmt.where(r.window_start >= start - reach, r.window_end > start)
    return stmt.where(r.window_start >= start)


def latest_results(
    meta: MetadataStore,
    *,
    source: str | None = "monitor",
    model: str | None = None,
    kinds: Sequence[str] | None = None,
    tenant_ids: Sequence[str] | None = None,
    include_all: bool = True,
    model_version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reach: timedelta | None = None,
) -> list[MetricResult]:
    """Results of the newest window of every (source, source name, tenant); only windows
    starting at ``since`` or later, and before ``until``, are considered when given. With
    ``reach`` (the longest window), a window starting up to that long before ``since`` and
    ending after it counts too: the newest window *overlapping* the range, so a range shorter
    than a window still shows the window it falls in.

    ``tenant_ids`` restricts the tenants (None: every tenant); ``include_all`` keeps the
    results computed over all tenants together (tenant ``"*"``).
    """
    r = MetricResultRow
    newest = _filters(
        select(
            r.source.label("s"),
            r.source_name.label("n"),
            r.tenant_id.label("t"),
            func.max(r.window_start).label("w"),
        ),
        source=source,
        model=model,
        kinds=kinds,
        tenant_ids=tenant_ids,
        include_all=include_all,
        model_version=model_version,
    )
    newest = _starting_from(newest, since, reach)
    if until is not None:
        newest = newest.where(r.window_start < until)
    newest = newest.group_by(r.source, r.source_name, r.tenant_id)
    sub = newest.subquery()
    stmt = _filters(
        select(r).join(
            sub,
            and_(
                r.source == sub.c.s,
                r.source_name == sub.c.n,
                r.tenant_id == sub.c.t,
                r.window_start == sub.c.w,
            ),
        ),
        source=source,
        model=model,
        kinds=kinds,
        tenant_ids=tenant_ids,
        include_all=include_all,
        model_version=model_version,
    )
    core = stmt.with_only_columns(*MetricResultRow.__table__.columns)
    with meta.reading() as s:
        return [_from_row(row) for row in s.execute(core)]


def results_between(
    meta: MetadataStore,
    *,
    start: datetime | None,
    end: datetime | None,
    source: str | None = "monitor",
    model: str | None = None,
    kinds: Sequence[str] | None = None,
    tenant_ids: Sequence[str] | None = None,
    include_all: bool = True,
    columns: Sequence[str] | None = None,
    source_name: str | None = None,
    limit: int = 200_000,
    model_version: str | None = None,
    reach: timedelta | None = None,
) -> list[MetricResult]:
    """Results with ``start <= window_start < end``, oldest window first (of one model
    version, e.g. ``"*"`` for all versions together, when ``model_version`` is given). With
    ``reach`` (the longest window), the windows *overlapping* the range: also those starting
    up to that long before ``start`` and ending after it."""
    r = MetricResultRow
    stmt = _filters(
        select(r),
        source=source,
        model=model,
        kinds=kinds,
        tenant_ids=tenant_ids,
        include_all=include_all,
        columns=columns,
        source_name=source_name,
        model_version=model_version,
    )
    stmt = _starting_from(stmt, start, reach)
    if end is not None:
        stmt = stmt.where(r.window_start < end)
    stmt = stmt.order_by(r.window_start, r.id).limit(limit)
    core = stmt.with_only_columns(*MetricResultRow.__table__.columns)
    with meta.reading() as s:
        return [_from_row(row) for row in s.execute(core)]


def results_version(meta: MetadataStore) -> tuple[int, int]:
    """(newest id, row count) of the stored results: changes whenever results are written or
    replaced, so read models can be cached by it."""
    r = MetricResultRow
    with meta.reading() as s:
        row = s.execute(select(func.max(r.id), func.count())).one()
    return int(row[0] or 0), int(row[1] or 0)


def last_computed(
    meta: MetadataStore, *, source: str | None = None, model: str | None = None
) -> datetime | None:
    """When the newest stored result (of one source / model) was computed: the
    ``computed_at`` of the last row written (a backward scan of the primary key, not a scan
    of the table)."""
    r = MetricResultRow
    stmt = select(r.computed_at)
    if source is not None:
        stmt = stmt.where(r.source == source)
    if model is not None:
        stmt = stmt.where(r.model == model)
    with meta.reading() as s:
        return s.scalar(stmt.order_by(r.id.desc()).limit(1))


def last_run_at(meta: MetadataStore) -> dict[str, tuple[datetime | None, str, str | None]]:
    """Monitor -> (finished_at, status, error) of its newest run."""
    r = MonitorRunRow
    newest = select(func.max(r.id)).group_by(r.monitor).scalar_subquery()
    with meta.reading() as s:
        rows = s.scalars(select(r).where(r.id.in_(newest)))
        return {row.monitor: (row.finished_at, row.status, row.error) for row in rows}


def version_spans(logstore: LogStore, model: str) -> list[tuple[str, datetime, datetime, int]]:
    """(model_version, first ts, last ts, rows) of a model's inference logs, oldest first."""
    if model not in logstore.models():
        return []
    table = tables.inferences(model)
    sql = (
        f"SELECT model_version, min(ts), max(ts), count(*) FROM {tables.quote(table)} "
        "GROUP BY model_version ORDER BY min(ts)"
    )
    rows = logstore.query_arrow(sql).to_pylist()
    out = []
    for row in rows:
        v, first, last, n = row.values()
        out.append((str(v), first, last, int(n)))
    return out
