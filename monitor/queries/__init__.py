"""Read models of the dashboard: what each page shows, as plain values, from stored results.

Nothing here computes drift: every function reads results the runner, the KPI job and the
alert engine stored. Every function takes the caller's tenant scope (``tenants``: the tenant
ids the user may see, or None for all) and filters by it *here*, so a page cannot forget to:
a tenant-scoped user never receives another tenant's rows, nor the results computed over all
tenants together (tenant ``"*"``), which mix in other tenants' data.

One module per page (``overview``, ``model``, ``feature``, ``alerts``, ``kpis``, ``monitors``)
and ``common`` for what they share; this package re-exports them, so callers keep
``from monitor import queries`` and ``queries.<name>``.
"""

from __future__ import annotations

from monitor.queries.alerts import (
    AlertView,
    Notification,
    acknowledge,
    alert_view,
    alert_window,
    silence,
)
from monitor.queries.common import (
    CACHE_SIZE,
    DRIFT_KINDS,
    LATEST_DAYS,
    PRIMARY_METRICS,
    STATUS_RANK,
    AccessDenied,
    Scope,
    alert_store,
    check_tenant,
    default_tenant,
    last_computed,
    memoised,
    page_tenant,
    parse_range,
    severity_score,
    visible_tenants,
    worst_status,
)
from monitor.queries.feature import (
    Distribution,
    FeatureView,
    binned_distribution,
    distribution,
    feature_view,
    logged_distribution,
)
from monitor.queries.kpis import (
    PERIOD_WINDOWS,
    Incidents,
    KpiCard,
    KpiTenantView,
    ModelHealth,
    Portfolio,
    kpi_portfolio,
    kpi_specs,
    kpi_tenant,
)
from monitor.queries.model import (
    Heatmap,
    ModelView,
    Series,
    VersionChange,
    as_number,
    heatmap,
    model_view,
    results_in_range,
    series_by,
    status_text,
    to_series,
    worst_first,
)
from monitor.queries.monitors import MonitorRow, MonitorsView, monitors_view
from monitor.queries.overview import Cell, Overview, Signal, overview, signal_of
from storage.types import ALL  # the all-tenants row's tenant, as pages name it

__all__ = [
    "ALL",
    "CACHE_SIZE",
    "DRIFT_KINDS",
    "LATEST_DAYS",
    "PERIOD_WINDOWS",
    "PRIMARY_METRICS",
    "STATUS_RANK",
    "AccessDenied",
    "AlertView",
    "Cell",
    "Distribution",
    "FeatureView",
    "Heatmap",
    "Incidents",
    "KpiCard",
    "KpiTenantView",
    "ModelHealth",
    "ModelView",
    "MonitorRow",
    "MonitorsView",
    "Notification",
    "Overview",
    "Portfolio",
    "Scope",
    "Series",
    "Signal",
    "VersionChange",
    "acknowledge",
    "alert_store",
    "alert_view",
    "alert_window",
    "as_number",
    "binned_distribution",
    "check_tenant",
    "default_tenant",
    "distribution",
    "feature_view",
    "heatmap",
    "kpi_portfolio",
    "kpi_specs",
    "kpi_tenant",
    "last_computed",
    "logged_distribution",
    "memoised",
    "model_view",
    "monitors_view",
    "overview",
    "page_tenant",
    "parse_range",
    "results_in_range",
    "series_by",
    "severity_score",
    "signal_of",
    "silence",
    "status_text",
    "to_series",
    "visible_tenants",
    "worst_first",
    "worst_status",
]
