"""The read side of the KPI service: a KPI's series, the links between KPIs and model signals,
and the executive summary.

:class:`KpiReading` is a base of :class:`monitor.kpis.service.KpiService`, which gives it the
stores and the definitions; callers use these methods on the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from monitor import windows
from monitor.errors import NotFoundError
from monitor.kpis.compute import window_delta
from monitor.kpis.definition import KpiDefinition
from monitor.kpis.headline import PERIOD_WINDOWS, headline, headline_dict
from monitor.kpis.link import (
    ASSOCIATION_NOTE,
    deseasonalize,
    kpi_series,
    rank_related_kpis,
    rank_related_signals,
    signal_series,
)
from monitor.kpis.summary import (
    TenantSummary,
    across_tenants,
    model_health,
    summarize_kpi,
    tenant_status,
)
from storage.metadata.kpis import KpiStore
from storage.metadata.monitoring import MonitoringStore, ResultQuery
from storage.types import KpiRecord, MetricResult

__all__ = ["KpiReading", "utc"]

_MAX_ROWS = 500_000


def utc(ts: datetime) -> datetime:
    """``ts`` as aware UTC (a naive time is taken as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _mean(values: Any) -> float | None:
    """The mean of the finite values (None when there are none)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


class KpiReading:
    """Series, links and summaries of the stored KPI results (see the module docstring)."""

    store: KpiStore
    results: MonitoringStore
    clock: Callable[[], datetime]

    # what the service defines: the stored KPIs and their parsed definitions
    def get(self, name: str) -> KpiRecord:
        raise NotImplementedError

    def definition(self, name: str) -> KpiDefinition:
        raise NotImplementedError

    def definitions(self) -> list[KpiDefinition]:
        raise NotImplementedError

    def _query(self, q: ResultQuery) -> list[MetricResult]:
        rows, _ = self.results.query_results(q, limit=_MAX_ROWS)
        return rows

    def series(
        self,
        name: str,
        tenant_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        tenant_scope: str | None = None,
    ) -> list[MetricResult]:
        """The KPI rows (value, status, details) per tenant and window, oldest first."""
        self.get(name)
        if tenant_scope is not None and tenant_id not in (None, tenant_scope):
            raise NotFoundError(f"tenant {tenant_id!r} not found")
        tenant = tenant_scope or tenant_id
        q = ResultQuery(
            source="kpi", source_name=name, metric=name, tenant_id=tenant, start=start, end=end
        )
        return self._query(q)

    def _grid(self, d: KpiDefinition, at: datetime, back: int, ahead: int = 0) -> list[datetime]:
        kind = windows.window(d.window)
        return [kind.shift(at, k) for k in range(-back, ahead + 1)]

    def _latest_window(self, name: str, tenant_id: str, breach: bool) -> datetime | None:
        rows = self._query(
            ResultQuery(source="kpi", source_name=name, metric=name, tenant_id=tenant_id)
        )
        if breach:
            flagged = [r for r in rows if r.status in ("alert", "warn")]
            rows = flagged or rows
        return max((r.window_start for r in rows), default=None)

    def related_signals(
        self,
        name: str,
        tenant_id: str,
        at: datetime | None = None,
        *,
        max_lag: int = 3,
        span: int = 28,
        limit: int = 20,
    ) -> dict[str, Any]:
        """For a KPI breach of one tenant, the model signals that moved with it, ranked.

        ``at`` is the breach's window (the latest flagged window by default). Signals are
        the tenant's monitor results (every model serving it), or the all-tenants ("*")
        results when no monitor is split by tenant.
        """
        d = self.definition(name)
        at = utc(at) if at is not None else self._latest_window(name, tenant_id, breach=True)
        if at is None:
            raise NotFoundError(f"KPI {name!r} has no results for tenant {tenant_id!r}")
        grid = self._grid(d, at, span + max_lag)
        width = window_delta(d.window)
        grid_end = windows.window(d.window).end(grid[-1])
        kpi_rows = self.store.result_series(
            source="kpi",
            source_name=name,
            metric=name,
            tenant_id=tenant_id,
            start=grid[0],
            end=grid_end,
        )
        if not kpi_rows:
            raise NotFoundError(f"KPI {name!r} has no results for tenant {tenant_id!r}")
        kv = kpi_series(kpi_rows, grid).get((name, tenant_id), (np.full(len(grid), np.nan), []))[0]
        kv = deseasonalize(kv, grid, d.window)
        sig_rows = self.store.result_series(
            source="monitor", tenant_id=tenant_id, start=grid[0], end=grid_end
        )
        if not sig_rows:  # monitors not split by tenant: the all-tenants signals serve it
            sig_rows = self.store.result_series(
                source="monitor", tenant_id="*", start=grid[0], end=grid_end
            )
        signals = signal_series(sig_rows, grid, width)
        ranked = rank_related_signals(
            kv, signals, grid, len(grid) - 1, max_lag=max_lag, span=span, limit=limit
        )
        at_row = next((r for r in kpi_rows if r.window_start == grid[-1]), None)
        return {
            "kpi": name,
            "tenant_id": tenant_id,
            "window_start": grid[-1].isoformat(),
            "status": None if at_row is None else at_row.status,
            "value": None if at_row is None else at_row.value,
            "note": ASSOCIATION_NOTE,
            "signals": [s.to_dict() for s in ranked],
        }

    def related_kpis(
        self,
        model: str,
        tenant_id: str,
        since: datetime,
        until: datetime | None = None,
        *,
        monitor: str | None = None,
        column: str | None = None,
        metric: str | None = None,
        max_lag: int = 3,
        span: int = 28,
    ) -> dict[str, Any]:
        """For a model alert (``since`` = its first breaching window, ``until`` = its last),
        the KPIs of the same tenant (every tenant when ``tenant_id`` is ``"*"``) that moved
        in those windows or the ``max_lag`` after, ranked by association with the signal."""
        since = utc(since)
        until = max(utc(until), since) if until is not None else since
        out: list[dict[str, Any]] = []
        for d in self.definitions():
            if not d.enabled:
                continue
            width = window_delta(d.window)
            kind = windows.window(d.window)
            first_w = kind.floor(since)
            n = kind.count(first_w, kind.floor(until))
            grid = self._grid(d, first_w, span, n + max_lag)
            end = kind.end(grid[-1])
            tenant_filter = None if tenant_id == "*" else tenant_id
            kpi_rows = self.store.result_series(
                source="kpi",
                source_name=d.name,
                metric=d.name,
                tenant_id=tenant_filter,
                start=grid[0],
                end=end,
            )
            if not kpi_rows:
                continue
            sig_rows = self.store.result_series(
                source="monitor",
                model=model,
                source_name=monitor,
                column=column,
                metric=metric,
                tenant_id=tenant_id,
                start=grid[0],
                end=end,
            )
            signals = signal_series(sig_rows, grid, width)
            vals = np.full(len(grid), np.nan)
            if signals:  # one alert may cover several columns/metrics: average their values
                stacked = np.vstack([v for v, _ in signals.values()])
                with np.errstate(all="ignore"):
                    counts = np.isfinite(stacked).sum(axis=0)
                    vals = np.where(
                        counts > 0, np.nansum(stacked, axis=0) / np.maximum(counts, 1), np.nan
                    )
            series = {
                k: (deseasonalize(v, grid, d.window), st)
                for k, (v, st) in kpi_series(kpi_rows, grid).items()
            }
            ranked = rank_related_kpis(
                (vals, [""] * len(grid)),
                series,
                grid,
                span,
                span + n,
                max_lag=max_lag,
                span=span,
            )
            raw = kpi_series(kpi_rows, grid)  # the levels users read, not deseasonalized
            hi = min(len(grid) - 1, span + n + max_lag)
            for k in ranked:
                own = raw.get((k.kpi, k.tenant_id))
                if own is not None:
                    k = replace(k, before=_mean(own[0][:span]), during=_mean(own[0][span : hi + 1]))
                item = k.to_dict()
                item.update({"unit": d.unit, "direction": d.direction, "window": d.window})
                out.append(item)
        out.sort(key=lambda x: (-x["score"], x["tenant_id"], x["kpi"]))
        return {
            "model": model,
            "tenant_id": tenant_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "note": ASSOCIATION_NOTE,
            "kpis": out,
        }

    def summary(
        self,
        tenant_id: str | None = None,
        at: datetime | None = None,
        tenant_scope: str | None = None,
    ) -> dict[str, Any]:
        """Executive summary: per tenant each KPI's latest window (at or before ``at``) vs
        the one before and vs target, one sentence each, and the models' health; plus the
        view across tenants."""
        if tenant_scope is not None:
            if tenant_id not in (None, tenant_scope):
                raise NotFoundError(f"tenant {tenant_id!r} not found")
            tenant_id = tenant_scope
        defs = [d for d in self.definitions() if d.enabled]
        at = utc(at) if at is not None else self.clock()
        per_tenant: dict[str, list[Any]] = {}
        for d in defs:
            kind = windows.window(d.window)
            q = ResultQuery(
                source="kpi",
                source_name=d.name,
                metric=d.name,
                tenant_id=tenant_id,
                # two periods of windows: the headline compares the last 7 with the 7 before
                start=kind.shift(at, -(2 * PERIOD_WINDOWS + 2)),
                end=kind.end(kind.floor(at)),
            )
            rows = self._query(q)
            by_tenant: dict[str, list[MetricResult]] = {}
            for r in rows:
                by_tenant.setdefault(r.tenant_id, []).append(r)
            for t, rs in by_tenant.items():
                rs.sort(key=lambda r: r.window_start)
                cur = rs[-1]
                before = kind.shift(cur.window_start, -1)
                prev = next((r for r in rs if r.window_start == before), None)
                summary = summarize_kpi(
                    d.name,
                    t,
                    cur,
                    prev,
                    description=d.description,
                    unit=d.unit,
                    direction=d.direction,
                    window=d.window,
                    target=d.target,
                )
                per_tenant.setdefault(t, []).append(
                    replace(summary, headline=headline_dict(headline(d, t, rs)))
                )
        if tenant_id is not None:
            per_tenant.setdefault(tenant_id, [])
        tenants: list[TenantSummary] = []
        for t in sorted(per_tenant):
            health = model_health(
                self._query(
                    ResultQuery(
                        source="monitor",
                        tenant_id=t,
                        start=at - timedelta(days=8),
                        end=at + timedelta(days=1),
                    )
                )
            )
            kpis = sorted(per_tenant[t], key=lambda k: k.kpi)
            tenants.append(TenantSummary(t, tenant_status(kpis, health), kpis, health))
        return {
            "at": at.isoformat(),
            "tenants": [t.to_dict() for t in tenants],
            "across_tenants": across_tenants(tenants),
        }
