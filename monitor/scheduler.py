"""The monitor scheduler: APScheduler 3 ``BackgroundScheduler`` inside ``driftwatch serve``.

One job per enabled monitor, id ``monitor:<name>``, in a ``SQLAlchemyJobStore`` in the metadata
database (APScheduler creates its ``apscheduler_jobs`` table). Each job is an interval trigger
(the monitor's ``schedule_minutes``, or the global ``scheduler_tick_seconds`` when it has none)
that calls :meth:`monitor.runner.Runner.tick`, which runs every closed window since the
monitor's last run, oldest first — so catch-up after downtime does not depend on APScheduler's
misfire handling: ``coalesce=True`` folds the fires missed while the server was down into one,
``misfire_grace_time=None`` lets that one run however late, and the run table makes each window
run exactly once. ``max_instances=1`` keeps a slow run from overlapping the next tick.

Jobs are reconciled with the monitors at start-up (missing added, stale removed, intervals
updated) and whenever a monitor is created, changed or deleted through the service: a changed
``schedule_minutes`` replaces the job's trigger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.kpis.service import KpiService
from monitor.monitoring import MonitorService

__all__ = ["JOB_PREFIX", "MonitorScheduler", "run_monitor_job"]

log = logging.getLogger("driftwatch.scheduler")

JOB_PREFIX = "monitor:"
KPI_JOB = "kpis"
# The scheduler whose service runs the stored jobs. Jobs in a persistent store are pickled and
# refer to this module-level function by name, never to a live object, so the running
# scheduler is found here (the one module-level slot of a process; the composition root starts
# and stops the scheduler that fills it).
_ACTIVE: list[MonitorScheduler] = []
_ACTIVE_LOCK = threading.Lock()


def run_kpi_job() -> None:
    """APScheduler job body: every closed KPI window since each KPI's last run (issue 5)."""
    with _ACTIVE_LOCK:
        sched = _ACTIVE[0] if _ACTIVE else None
    if sched is None:
        return
    try:
        sched.kpis.run_due(grace=sched.service.runner.lateness)
    except Exception:  # never kill the scheduler thread; KPI runs record their errors
        log.exception("KPI tick failed")


def run_monitor_job(name: str) -> None:
    """APScheduler job body: one tick of the named monitor (errors are recorded per run)."""
    with _ACTIVE_LOCK:
        sched = _ACTIVE[0] if _ACTIVE else None
    if sched is None:
        return
    try:
        sched.service.tick(name)
    except Exception:  # never kill the scheduler thread; the run table has the details
        log.exception("tick of monitor %s failed", name)


class MonitorScheduler:
    """Owns the BackgroundScheduler and keeps its jobs in step with the monitors."""

    def __init__(
        self, service: MonitorService, kpis: KpiService, url: str, tick_seconds: int = 60
    ) -> None:
        self.service = service
        self.kpis = kpis
        self.tick_seconds = int(tick_seconds)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=url)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._lock = threading.Lock()

    def start(self) -> None:
        # the first windows need profiles: load the compiled counting loops meanwhile
        self.service.runner.profiles.warm_up(wait=False)
        self.service.runner.resume()  # a previous server on these services may have stopped it
        with _ACTIVE_LOCK:
            _ACTIVE[:] = [self]
        self.scheduler.start()
        # told of changes before the first reconcile lists the monitors: `driftwatch serve`
        # starts the scheduler once its port is open, so the API may create a monitor
        # meanwhile, and one created between that list and this line would get no job
        self.service.on_change.append(self.reconcile_one)
        self.reconcile()

    def shutdown(self) -> None:
        if self.reconcile_one in self.service.on_change:
            self.service.on_change.remove(self.reconcile_one)
        self.scheduler.shutdown(wait=True)
        with _ACTIVE_LOCK:
            if _ACTIVE and _ACTIVE[0] is self:
                _ACTIVE.clear()

    def job_ids(self) -> list[str]:
        return sorted(j.id for j in self.scheduler.get_jobs() if j.id.startswith(JOB_PREFIX))

    def reconcile(self) -> None:
        """Add a job per enabled monitor, drop jobs of monitors that are gone or disabled, and
        run every job once now (catch-up after downtime starts at once)."""
        with self._lock:
            wanted = {JOB_PREFIX + m.name: m for m in self.service.list() if m.enabled}
            for job_id in set(self.job_ids()) - set(wanted):
                self._remove(job_id)
            for job_id, rec in sorted(wanted.items()):
                self._add(job_id, self.interval_seconds(rec.config), first=datetime.now(UTC))
            # One job computes every KPI (same windows, catch-up and lateness as monitors).
            self.scheduler.add_job(
                run_kpi_job,
                trigger=IntervalTrigger(seconds=self.tick_seconds, timezone=UTC),
                id=KPI_JOB,
                name=KPI_JOB,
                replace_existing=True,
                next_run_time=datetime.now(UTC),
            )

    def reconcile_one(self, name: str) -> None:
        job_id = JOB_PREFIX + name
        rec = self.service.store.get_monitor(name)
        with self._lock:
            if rec is None or not rec.enabled:
                self._remove(job_id)
            else:
                self._add(
                    job_id,
                    self.interval_seconds(rec.config),
                    first=datetime.now(UTC) + timedelta(seconds=1),
                )

    def interval_seconds(self, config: Mapping[str, Any]) -> int:
        """Seconds between a monitor's ticks: its ``schedule_minutes``, else the global tick."""
        minutes = config.get("schedule_minutes")
        return int(minutes) * 60 if minutes else self.tick_seconds

    def _add(self, job_id: str, seconds: int, first: datetime) -> None:
        # replace_existing swaps the stored job whole, trigger included, so a changed
        # schedule_minutes takes effect here
        self.scheduler.add_job(
            run_monitor_job,
            trigger=IntervalTrigger(seconds=seconds, timezone=UTC),
            args=[job_id.removeprefix(JOB_PREFIX)],
            id=job_id,
            name=job_id,
            replace_existing=True,
            next_run_time=first,
        )

    def _remove(self, job_id: str) -> None:
        with suppress(JobLookupError):
            self.scheduler.remove_job(job_id)
