"""``KpiStore``: tenant KPI definitions behind typed methods (values live in metric results).

Every change writes its audit entry in the same transaction and bumps the version
(:class:`~storage.metadata.definitions.Definitions`), so a result's ``definition_version`` says
which definition produced it.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage.metadata.definitions import Definitions
from storage.metadata.models_kpis import KpiRow
from storage.metadata.models_monitoring import MetricResultRow
from storage.metadata.store import MetadataStore
from storage.types import KpiRecord, MetricResult

__all__ = ["KpiStore"]


def _record(row: KpiRow) -> KpiRecord:
    return KpiRecord(
        name=row.name,
        spec=dict(row.spec),
        version=row.version,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class KpiStore:
    """KPI definitions in the metadata database.

    Parameters
    ----------
    metadata
        An upgraded :class:`MetadataStore`; its engine, clock and audit log are shared.
    """

    def __init__(self, metadata: MetadataStore) -> None:
        self._meta = metadata
        self._defs = Definitions(
            metadata, KpiRow, _record, noun="KPI", action="kpi", object_type="kpi"
        )

    def create(
        self, name: str, spec: dict[str, Any], actor: str = "system", enabled: bool = True
    ) -> KpiRecord:
        """Create a KPI at version 1; :class:`AlreadyExists` for a taken name."""
        return self._defs.create(name, actor, enabled, {"spec": spec}, spec=spec)

    def update(
        self, name: str, spec: dict[str, Any], actor: str = "system", enabled: bool | None = None
    ) -> KpiRecord:
        """Replace a KPI's spec; the version goes up only when something changed."""
        with self._meta.writing() as s:
            row = self._defs.require(s, name)
            old = dict(row.spec)
            if old == spec and (enabled is None or enabled == row.enabled):
                return _record(row)
            row.spec = spec
            return self._defs.bump(s, row, actor, enabled, {"old": old, "new": spec})

    def delete(self, name: str, actor: str = "system") -> None:
        """Delete a KPI definition (its stored results stay for the record)."""
        self._defs.delete(name, actor)

    def get(self, name: str) -> KpiRecord | None:
        return self._defs.get(name)

    def list(self, enabled: bool | None = None) -> list[KpiRecord]:
        return self._defs.list(enabled)

    def result_series(
        self,
        *,
        source: str,
        start: datetime,
        end: datetime,
        tenant_id: str | None = None,
        source_name: str | None = None,
        model: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        model_version: str | None = "*",
    ) -> builtins.list[MetricResult]:
        """Metric results of ``start <= window_start < end`` without their details (empty):
        the link's read of many series' values and statuses in one query, without the count
        and the JSON decoding of :meth:`MonitoringStore.query_results`."""
        t = MetricResultRow.__table__
        cols = [
            t.c.source,
            t.c.source_name,
            t.c.kind,
            t.c.model,
            t.c.window_start,
            t.c.window_end,
            t.c.tenant_id,
            t.c.model_version,
            t.c.column_name,
            t.c.metric,
            t.c.value,
            t.c.threshold,
            t.c.status,
        ]
        stmt = select(*cols).where(
            t.c.source == source, t.c.window_start >= start, t.c.window_start < end
        )
        for col, value in (
            (t.c.tenant_id, tenant_id),
            (t.c.source_name, source_name),
            (t.c.model, model),
            (t.c.column_name, column),
            (t.c.metric, metric),
            (t.c.model_version, model_version),
        ):
            if value is not None:
                stmt = stmt.where(col == value)
        with self._meta.reading() as s:
            rows = s.execute(stmt).all()
        return [
            MetricResult(
                source=r[0],
                source_name=r[1],
                kind=r[2],
                model=r[3],
                window_start=r[4],
                window_end=r[5],
                tenant_id=r[6],
                model_version=r[7],
                column=r[8],
                metric=r[9],
                value=r[10],
                threshold=r[11],
                status=r[12],
            )
            for r in rows
        ]

    def changed_since(self, ts: datetime) -> builtins.list[KpiRecord]:
        """KPIs created or changed at or after ``ts`` (the scheduler's reconcile)."""
        return self._defs.changed_since(ts)
