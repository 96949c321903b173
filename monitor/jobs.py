"""Background jobs: backfills and KPI computes that run after their request has answered.

``POST`` starts a job and answers 202 with its id; ``GET /jobs/{id}`` shows its state and
progress (windows done of total); ``DELETE /jobs/{id}`` cancels it. A job checks for
cancellation between windows (and between profiled ranges), so it stops within one window's
work; :meth:`JobRunner.shutdown` cancels every job when the server stops. Jobs run on daemon
threads (at most ``workers`` at once), so a job can never keep the process alive, and their
rows in the metadata store (``storage.metadata.jobs``) outlive the process: a job that was
running at a stop is marked ``interrupted`` at the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.errors import NotFoundError
from monitor.kpis.service import KpiService
from monitor.monitoring import MonitorService
from monitor.service import Services
from storage.metadata.jobs import FINISHED, JobRecord, JobStore

__all__ = ["Cancelled", "JobContext", "JobRunner", "backfill_job", "kpi_compute_job"]

log = logging.getLogger("driftwatch.jobs")


class Cancelled(Exception):
    """Raised inside a job when it was cancelled (or the server is stopping)."""


@dataclass
class JobContext:
    """What a job's function gets: ``cancelled()``/``check()`` and ``progress(done, total)``."""

    id: int
    _store: JobStore
    _event: threading.Event = field(default_factory=threading.Event)

    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(f"job {self.id} cancelled")

    def progress(self, done: int, total: int | None = None) -> None:
        self._store.progress(self.id, done, total)


JobFn = Callable[[JobContext], dict[str, Any]]


class JobRunner:
    """Runs job functions on ``workers`` daemon threads; one per :class:`Services`."""

    def __init__(self, services: Services, workers: int = 1) -> None:
        self.store = JobStore(services.metadata)
        self._queue: queue.Queue[tuple[JobContext, JobFn, str] | None] = queue.Queue()
        self._running: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"dw-job-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self, kind: str, target: str, params: dict[str, Any], total: int, fn: JobFn, actor: str
    ) -> JobRecord:
        """Queue ``fn``; returns the job as stored (state ``queued``)."""
        rec = self.store.create(kind, target, params, total, actor)
        ctx = JobContext(rec.id, self.store)
        with self._lock:
            self._running[rec.id] = ctx
        if self._stopping.is_set():
            ctx._event.set()
        self._queue.put((ctx, fn, actor))
        return rec

    def get(self, job_id: int) -> JobRecord:
        rec = self.store.get(job_id)
        if rec is None:
            raise NotFoundError(f"job {job_id} not found")
        return rec

    def cancel(self, job_id: int, actor: str) -> JobRecord:
        """Ask a job to stop (it stops at its next check); a queued job never starts."""
        rec = self.get(job_id)
        if rec.state in FINISHED:
            return rec
        with self._lock:
            ctx = self._running.get(job_id)
        if ctx is not None:
            ctx._event.set()  # a running job stops at its next check
            # one still queued ends now (its worker will find it cancelled and skip it)
            return self.store.finish(
                job_id, "cancelled", error="cancelled", actor=actor, only_from=("queued",)
            )
        # not known to this process (started by one that stopped): end it here
        return self.store.finish(job_id, "cancelled", error="cancelled", actor=actor)

    def wait(self, job_id: int, timeout: float) -> JobRecord:
        """The job once finished, or as it is after ``timeout`` seconds (tests, CLI)."""
        deadline = threading.Event()
        for _ in range(max(1, int(timeout / 0.05))):
            rec = self.get(job_id)
            if rec.state in FINISHED:
                return rec
            deadline.wait(0.05)
        return self.get(job_id)

    def shutdown(self, timeout: float = 3.0) -> None:
        """Cancel every job and give them ``timeout`` seconds to stop at a check point."""
        self._stopping.set()
        with self._lock:
            for ctx in self._running.values():
                ctx._event.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout / max(1, len(self._threads)))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            ctx, fn, actor = item
            try:
                self._run(ctx, fn, actor)
            finally:
                with self._lock:
                    self._running.pop(ctx.id, None)

    def _run(self, ctx: JobContext, fn: JobFn, actor: str) -> None:
        store = self.store
        try:
            if ctx.cancelled():
                store.finish(ctx.id, "cancelled", error="cancelled before it started", actor=actor)
                return
            if not store.start(ctx.id):
                return  # cancelled while queued
            result = fn(ctx)
        except Cancelled:
            reason = "server stopping" if self._stopping.is_set() else "cancelled"
            store.finish(ctx.id, "cancelled", error=reason, actor=actor)
            return
        except Exception as exc:  # a failed job says why; the worker carries on
            log.exception("job %s failed", ctx.id)
            store.finish(ctx.id, "failed", error=f"{type(exc).__name__}: {exc}"[:4000])
            return
        if ctx.cancelled():
            store.finish(ctx.id, "cancelled", result=result, error="cancelled", actor=actor)
        else:
            store.finish(ctx.id, "done", result=result)


# ---------------------------------------------------------------------------- the two kinds
KPI_CHUNK_WINDOWS = 24  # windows per KPI compute call: a check point every chunk


def backfill_job(
    runner: JobRunner,
    svc: MonitorService,
    monitor: str,
    start: datetime,
    end: datetime,
    actor: str,
) -> JobRecord:
    """Start a monitor backfill over ``[start, end)`` (already range-checked) as a job."""
    from monitor import windows

    cfg = svc.get(monitor).config  # 404 before anything is queued
    total = max(1, windows.window(str(cfg.get("window", "day"))).count(start, end))

    def run(ctx: JobContext) -> dict[str, Any]:
        done = failed = 0

        def tick(summary: Any) -> None:
            nonlocal done, failed
            done += 1
            failed += summary.status != "ok"
            ctx.progress(done)

        svc.backfill(monitor, start, end, tick, ctx.cancelled)
        ctx.check()
        return {"windows": done, "failed": failed}

    params = {"start": start.isoformat(), "end": end.isoformat()}
    return runner.submit("backfill", monitor, params, total, run, actor)


def kpi_compute_job(
    runner: JobRunner, svc: KpiService, kpi: str, start: datetime, end: datetime, actor: str
) -> JobRecord:
    """Start a KPI compute over ``[start, end)`` (already range-checked) as a job, computed
    :data:`KPI_CHUNK_WINDOWS` windows at a time so it can stop between chunks."""
    from monitor import windows as kinds
    from monitor.kpis.compute import windows_between

    window = svc.definition(kpi).window  # 404 before anything is queued
    windows = windows_between(start, end, window)
    kind = kinds.window(window)

    def run(ctx: JobContext) -> dict[str, Any]:
        rows = 0
        for i in range(0, len(windows), KPI_CHUNK_WINDOWS):
            ctx.check()
            chunk = windows[i : i + KPI_CHUNK_WINDOWS]
            rows += svc.compute(chunk[0], kind.end(chunk[-1]), [kpi], trigger="backfill")
            ctx.progress(i + len(chunk))
        return {"windows": len(windows), "results": rows}

    params = {"start": start.isoformat(), "end": end.isoformat()}
    return runner.submit("kpi_compute", kpi, params, max(1, len(windows)), run, actor)
