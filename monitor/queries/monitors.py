"""The monitors page: each monitor's state and its failed runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.queries.common import alert_store
from monitor.service import Services
from monitor.timerange import TimeRange
from storage import reads
from storage.metadata.kpis import KpiStore
from storage.metadata.monitoring import MonitoringStore


@dataclass(frozen=True)
class MonitorRow:
    name: str
    model: str
    kind: str
    enabled: bool
    version: int
    last_run: datetime | None
    last_status: str
    last_error: str | None


@dataclass(frozen=True)
class MonitorsView:
    monitors: list[MonitorRow]
    kpis: list[tuple[str, str, bool]]  # (name, formula, enabled)
    rules: list[tuple[str, str, bool]]  # (name, severity, enabled)
    errors: list[tuple[str, datetime, str]]  # (monitor, window start, error)
    computed_at: datetime | None


def monitors_view(services: Services, span: TimeRange | None = None) -> MonitorsView:
    """Monitors with their last run, KPIs, rules, and the failed runs of the windows in
    ``span`` (the 20 newest; any time when None)."""
    ms = MonitoringStore(services.metadata)
    last = reads.last_run_at(services.metadata)
    monitors = [
        MonitorRow(
            m.name,
            m.model,
            m.kind,
            m.enabled,
            m.version,
            *(last.get(m.name) or (None, "never run", None)),
        )
        for m in ms.list_monitors()
    ]
    runs, _ = ms.list_runs(
        status="error",
        start=span.start if span else None,
        end=span.end if span else None,
        limit=20,
    )
    kpis = [
        (k.name, str(k.spec.get("formula", "")), k.enabled)
        for k in KpiStore(services.metadata).list()
    ]
    rules = [
        (r.name, str(r.spec.get("severity", "")), r.enabled)
        for r in alert_store(services).list_rules()
    ]
    return MonitorsView(
        monitors,
        kpis,
        rules,
        [(r.monitor, r.window_start, r.error or "") for r in runs],
        reads.last_computed(services.metadata),
    )
