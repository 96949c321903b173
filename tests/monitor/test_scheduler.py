"""The monitor scheduler with the real APScheduler and its SQLAlchemy job store (SQLite and
PostgreSQL): a monitor's ``schedule_minutes`` is its job's interval (the global tick when
unset), a change replaces the stored trigger, and a restart reconciles the stored jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.interval import IntervalTrigger

from monitor.composition import of
from monitor.scheduler import JOB_PREFIX, MonitorScheduler
from monitor.schemas import ModelIn
from monitor.service import Caller, Services
from tests.api.conftest import make_settings
from tests.storage import conftest as _db

metadata_url = _db.migrated_url  # a copy of a database migrated once per session

TICK = 45


@pytest.fixture
def services(tmp_path: Path, metadata_url: str) -> Iterator[Services]:
    svc = Services.open(make_settings(tmp_path, metadata_url, scheduler_tick_seconds=TICK))
    svc.register_model(
        ModelIn(
            name="shop",
            task="binary",
            features=[{"name": "x", "kind": "numeric"}],  # type: ignore[list-item]
            scores=["score"],
        ),
        Caller.local(),
    )
    yield svc
    svc.close()


def _stored_intervals(url: str) -> dict[str, timedelta]:
    """Job id -> interval, read from the job store's table by a store of its own."""
    store = SQLAlchemyJobStore(url=url)
    store.start(None, "default")  # type: ignore[arg-type]
    try:
        out = {}
        for job in store.get_all_jobs():
            assert isinstance(job.trigger, IntervalTrigger)
            out[job.id] = job.trigger.interval
        return out
    finally:
        store.shutdown()


def _monitor(name: str, **more: object) -> dict[str, object]:
    return {"name": name, "model": "shop", "kind": "performance", "segments": ["all"], **more}


def test_schedule_minutes_sets_the_job_interval_and_changes_replace_it(
    services: Services,
) -> None:
    url = services.settings.metadata_url
    mon = of(services).monitors
    mon.create(_monitor("every-ten", schedule_minutes=10))
    mon.create(_monitor("on-tick"))
    sched = MonitorScheduler(mon, of(services).kpis, url, TICK)
    sched.start()
    try:
        live = {j.id: j.trigger.interval for j in sched.scheduler.get_jobs()}
        assert live[JOB_PREFIX + "every-ten"] == timedelta(minutes=10)
        assert live[JOB_PREFIX + "on-tick"] == timedelta(seconds=TICK)
        stored = _stored_intervals(url)
        assert stored[JOB_PREFIX + "every-ten"] == timedelta(minutes=10)
        assert stored[JOB_PREFIX + "on-tick"] == timedelta(seconds=TICK)

        # a change through the service reconciles that job: new trigger, stored too
        mon.update("every-ten", _monitor("every-ten", schedule_minutes=90))
        mon.update("on-tick", _monitor("on-tick", schedule_minutes=2))
        stored = _stored_intervals(url)
        assert stored[JOB_PREFIX + "every-ten"] == timedelta(minutes=90)
        assert stored[JOB_PREFIX + "on-tick"] == timedelta(minutes=2)
        # unsetting it falls back to the global tick
        mon.update("every-ten", _monitor("every-ten"))
        assert sched.scheduler.get_job(JOB_PREFIX + "every-ten").trigger.interval == timedelta(
            seconds=TICK
        )
        # disabling removes the job
        mon.update("on-tick", _monitor("on-tick", schedule_minutes=2, enabled=False))
        assert JOB_PREFIX + "on-tick" not in _stored_intervals(url)
    finally:
        sched.shutdown()


def test_restart_reconciles_stored_triggers_with_changed_monitors(services: Services) -> None:
    url = services.settings.metadata_url
    mon = of(services).monitors
    mon.create(_monitor("hourly-check", schedule_minutes=60))
    first = MonitorScheduler(mon, of(services).kpis, url, TICK)
    first.start()
    first.shutdown()
    assert _stored_intervals(url)[JOB_PREFIX + "hourly-check"] == timedelta(hours=1)
    # changed while no scheduler was running: the stored job still has the old trigger ...
    mon.update("hourly-check", _monitor("hourly-check", schedule_minutes=5))
    assert _stored_intervals(url)[JOB_PREFIX + "hourly-check"] == timedelta(hours=1)
    # ... until the next start reconciles it
    second = MonitorScheduler(mon, of(services).kpis, url, TICK)
    second.start()
    try:
        assert _stored_intervals(url)[JOB_PREFIX + "hourly-check"] == timedelta(minutes=5)
        assert second.job_ids() == [JOB_PREFIX + "hourly-check"]
    finally:
        second.shutdown()
