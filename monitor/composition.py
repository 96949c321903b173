"""The composition root: what one Driftwatch process contains, built in one place.

Every long-lived object of a process is built here from the settings and the open stores,
and nowhere else: no module-level locator, no registration as an import side effect, no
component started by a router. Read this file to know what a process holds::

    Services                  the stores (DuckDB log store, metadata DB) and the clock
    ├── alerting               AlertingRuntime: rules engine, alert store, delivery worker
    ├── monitors               MonitorService: monitor definitions, the Runner (→ alerting)
    │   └── profile engine     ProfileStore (embedded DuckDB), behind monitor.ports.ProfileEngine
    ├── kpis                   KpiService: KPI definitions and windows (→ alerting)
    │   └── KPI source         KpiQueries (embedded DuckDB), behind monitor.ports.KpiSource
    ├── health                 HealthCollector: model health for /metrics
    ├── login_throttle         LoginThrottle: the dashboard's failed log-ins
    ├── jobs                   JobRunner: backfills and KPI computes (threads; on first use)
    ├── scheduler              MonitorScheduler (APScheduler): only when started with one
    └── delivery worker        alerting's worker threads: only when started with one

Which processes build what:

=====================  ===========  ==============  =========  ===========  ===============
process                stores       use cases       scheduler  worker       entry point
=====================  ===========  ==============  =========  ===========  ===============
``driftwatch serve``   yes          yes             settings   settings     ``create_app``
API in a test          caller's     yes             off        off          ``create_app(...,
                                                                            scheduler=False,
                                                                            worker=False)``
CLI (local mode)       yes          yes             no         no           ``open_process``
``demo build``         yes          yes             no         no           ``open_process``
dashboard              the API's    the API's       --         --           ASGI scope
=====================  ===========  ==============  =========  ===========  ===============

The dashboard is not built here (``monitor`` never imports ``dashboard``): it is found by
entry point and reads the components of the server it is mounted on.

Objects that need each other are given each other here: the runner's and the KPI service's
result sink is the alerting runtime; the alerting runtime asks the KPI service for the KPIs
that moved with a model alert; ``MonitorService.propose`` reads existing rules from the alert
store. Code that has only a :class:`~monitor.service.Services` (the read models, the CLI's
helpers) gets the components with :func:`of`, which returns the ones this root attached.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from monitor.accounts import LoginThrottle
from monitor.alerting import AlertingRuntime
from monitor.health_metrics import Bounds, HealthCollector
from monitor.jobs import JobRunner
from monitor.kpis.service import KpiService
from monitor.monitoring import MonitorService
from monitor.service import Clock, Services
from monitor.settings import Settings
from storage.kpi_sql import KpiQueries
from storage.metadata.jobs import JobStore
from storage.profiles import ProfileStore
from storage.types import AlertRecord

__all__ = ["Components", "compose", "of", "open_process"]

_COMPOSE_LOCK = threading.Lock()


class Components:
    """The object graph of one process over one :class:`Services` (see the module docstring).

    Building it starts no thread; :meth:`start` starts the scheduler and the delivery worker
    when asked, :meth:`stop` stops what was started (jobs first, then the scheduler, then the
    worker), :meth:`close` also closes the stores when this root opened them.
    """

    def __init__(self, services: Services, *, owns_services: bool = False) -> None:
        settings = services.settings
        self.settings: Settings = settings
        self.services = services
        self.owns_services = owns_services
        self.alerting = AlertingRuntime(services, related_kpis=self._related_kpis)
        self.monitors = MonitorService(
            services,
            # the profile engine: the embedded DuckDB one (a lake engine plugs in here)
            profiles=ProfileStore(services.logstore),
            sink=self.alerting,
            rules=self.alerting.store,
            lateness=timedelta(minutes=settings.monitor_lateness_minutes),
            sample_size=settings.monitor_sample_size,
            late_lookback=timedelta(days=settings.monitor_late_lookback_days),
        )
        self.kpis = KpiService(
            services.metadata,
            services.logstore,
            sink=self.alerting,
            clock=services.clock,
            late_lookback=timedelta(days=settings.monitor_late_lookback_days),
            # the KPI source: aggregates pushed down to the embedded DuckDB log store
            queries=KpiQueries(services.logstore),
        )
        self.health = HealthCollector(
            services.metadata, Bounds(settings.metrics_max_tenants, settings.metrics_max_series)
        )
        # the dashboard's log-in throttle: per process, like the server's data
        self.login_throttle = LoginThrottle(
            max_per_user=settings.login_max_failures,
            max_per_address=settings.login_max_failures_per_address,
            lockout=settings.login_lockout_seconds,
        )
        self.scheduler: Any = None  # monitor.scheduler.MonitorScheduler once started
        self._jobs: JobRunner | None = None
        self._jobs_lock = threading.Lock()

    # ------------------------------------------------------------------ parts built on demand
    @property
    def jobs(self) -> JobRunner:
        """The job runner; created on first use, when it also marks the jobs a previous
        process left unfinished ``interrupted`` (so a CLI that never submits a job never
        touches another process's jobs)."""
        with self._jobs_lock:
            if self._jobs is None:
                JobStore(self.services.metadata).interrupt_unfinished()
                self._jobs = JobRunner(self.services)
            return self._jobs

    def _related_kpis(
        self, alert: AlertRecord, until: datetime | None
    ) -> dict[str, Any]:  # the alerting runtime's enrichment of model alerts
        return self.kpis.related_kpis(
            alert.model or "",
            alert.tenant_id,
            alert.active_at,
            until,
            monitor=alert.labels.get("monitor"),
            column=alert.labels.get("column"),
            metric=alert.labels.get("metric"),
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, scheduler: bool, worker: bool) -> Components:
        """Start the monitor scheduler and/or the alert delivery worker."""
        if scheduler and self.scheduler is None:
            from monitor.scheduler import MonitorScheduler  # apscheduler only when scheduling

            self.scheduler = MonitorScheduler(
                self.monitors,
                self.kpis,
                self.settings.metadata_url,
                self.settings.scheduler_tick_seconds,
            )
            self.scheduler.start()
        if worker:
            self.alerting.start_worker()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Stop what runs on our threads: the delivery worker, the jobs (each at its next
        window), then the scheduler."""
        self.alerting.stop_worker()
        with self._jobs_lock:
            jobs, self._jobs = self._jobs, None
        if jobs is not None:
            jobs.shutdown(timeout)
        if self.scheduler is not None:
            self.scheduler.service.runner.stop()
            self.scheduler.shutdown()
            self.scheduler = None

    def close(self) -> None:
        """:meth:`stop`, then close the stores if this root opened them."""
        self.stop()
        if self.owns_services:
            self.services.close()


def compose(services: Services, *, owns_services: bool = False) -> Components:
    """Build the components over open stores and attach them to ``services`` (one graph per
    :class:`Services`; building twice returns the first)."""
    with _COMPOSE_LOCK:
        if services.components is None:
            services.components = Components(services, owns_services=owns_services)
        found: Components = services.components
        return found


def open_process(settings: Settings, clock: Clock | None = None) -> Components:
    """Open the stores (migrating the metadata DB) and build a process's components: what the
    CLI's local mode, ``demo build`` and the server use. Close with :meth:`Components.close`."""
    return compose(Services.open(settings, clock=clock), owns_services=True)


def of(services: Services) -> Components:
    """The components built over ``services`` (built now if nothing built them yet, as when a
    test opens the stores itself)."""
    found = services.components
    return found if isinstance(found, Components) else compose(services)
