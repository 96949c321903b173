"""The monitor runner: closed windows → profiles → detectors → metric results → result sink.

For one monitor and one closed window ``[start, end)`` the runner

1. brings the hourly profiles of the window (and of a relative reference) up to date
   (``storage.profiles.ProfileStore.ensure``: missing, dirty and re-binned hours only),
2. sums them per segment — all tenants (``tenant_id="*"``), each tenant, and each model version
   over all tenants when the window holds several — and runs the monitor's methods,
3. replaces the window's stored results in one transaction and records the run, and
4. hands the results to the :class:`ResultSink` (the alert engine).

:meth:`Runner.tick` is what the scheduler calls: it runs every closed window since the last one
(after the lateness grace), oldest first and each once, then re-runs evaluated windows whose
hours received late rows (or, for ``performance``, late labels) since they were evaluated.

Metric names: drift results use the method name (``wasserstein``, ``jensen_shannon``, ``ks``...;
``value`` is the p-value for tests and the statistic for distances), plus ``drift_share`` per
segment. Data quality: ``missing_rate``, ``missing_change``, ``out_of_range``,
``new_categories`` per column, and operational metrics with ``column=""``: ``row_count``,
``row_count_change``, ``label_coverage``, ``label_delay_s``, ``quarantined``, ``freshness_s``.
Performance: the task's metrics (``accuracy``, ``roc_auc``, ``mae``...); estimated performance:
the same names with ``details.estimated = true`` and the band.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor import windows
from monitor.checks import CheckContext, CheckEnv, get_check
from monitor.checks.backfill_scope import backfill_env
from monitor.checks.caches import Caches
from monitor.checks.common import ranked
from monitor.lake_mode import LakeGuard, lake_no_data
from monitor.monitors import MonitorConfig, parse_monitor
from monitor.ports import LogReader, ModelCatalog, MonitorStore, ProfileEngine
from storage.metadata.monitoring import FinishedRun, MonitorRecord
from storage.profiles import ProfileSpec
from storage.types import MetricResult, ModelSchema

__all__ = ["ResultSink", "RunSummary", "Runner", "floor_window", "ranked"]

log = logging.getLogger("driftwatch.runner")


class ResultSink(Protocol):
    """What the runner calls after each run (the alert engine implements it)."""

    def results_written(self, results: list[MetricResult], backfill: bool) -> None: ...


@dataclass(frozen=True)
class RunSummary:
    monitor: str
    window_start: datetime
    window_end: datetime
    trigger: str
    status: str
    results: int
    rows_scanned: int
    duration_s: float
    error: str | None = None


def floor_window(ts: datetime, window: str) -> datetime:
    """Start of the tumbling UTC window holding ``ts`` (``monitor.windows``)."""
    return windows.window(window).floor(ts)


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class Runner:
    """Evaluates monitors on windows. Thread-safe: one run per monitor at a time.

    Parameters
    ----------
    metadata
        Registered models (their schemas).
    logs
        Bounded raw-log reads: samples, labelled rows, operational figures, references.
    profiles
        The profile engine: hourly profiles, kept up to date, summed per window.
    store
        Monitor definitions, runs and results.
    sink
        Receives every run's results (None: nobody).
    lateness
        Grace after a window's end before it is evaluated.
    sample_size
        Rows of the bounded window sample for sample-based and multivariate methods.
    late_lookback
        How far back evaluated windows are re-run when late rows or labels arrive.
    clock
        Returns the current aware UTC time (tests step it).
    """

    BATCH_WINDOWS = 64
    BATCH_SECONDS = 5.0

    def __init__(
        self,
        metadata: ModelCatalog,
        logs: LogReader,
        *,
        profiles: ProfileEngine,
        store: MonitorStore,
        sink: ResultSink | None = None,
        lateness: timedelta = timedelta(minutes=10),
        sample_size: int = 5000,
        late_lookback: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.metadata = metadata
        self.logs = logs
        self.store = store
        self.profiles = profiles
        self.sink = sink
        self.lateness = lateness
        self.sample_size = sample_size
        self.late_lookback = late_lookback
        self.clock = clock or (lambda: datetime.now(UTC))
        # references and fitted models, kept across windows
        self.caches = Caches()
        self.env = CheckEnv(
            self.profiles, LakeGuard(self.logs, self.profiles), self.caches, sample_size
        )
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # set by stop(): ticks and backfills end at the next window (server shutdown)
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make running ticks and backfills end after their current window (shutdown)."""
        self._stopping.set()

    def resume(self) -> None:
        """Undo :meth:`stop` (a new server on the same stores)."""
        self._stopping.clear()

    # ------------------------------------------------------------------ scheduling helpers
    def _lock(self, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def _config(self, record: MonitorRecord) -> MonitorConfig:
        return parse_monitor(record.config)

    def _schema(self, model: str) -> ModelSchema:
        info = self.metadata.get_model(model)
        if info is None:
            raise KeyError(f"model {model!r} is not registered")
        return info.schema

    def monitor_spec(self, record: MonitorRecord) -> ProfileSpec:
        """The hourly profiles a monitor's check reads (what a lake job computes for it)."""
        return self._spec(record, self._config(record))

    def monitor_row_spec(self, record: MonitorRecord) -> ProfileSpec:
        """The samples and label aggregates a lake job computes for a monitor whose check
        reads rows (``monitor.lake_mode.row_spec``)."""
        from monitor.lake_mode import row_spec

        return row_spec(self._config(record), self._schema(record.model), self.sample_size)

    def due_windows(self, record: MonitorRecord, now: datetime | None = None) -> list[datetime]:
        """Starts of closed windows not yet run, oldest first."""
        cfg = self._config(record)
        now = _aware(now or self.clock())
        lateness = (
            timedelta(minutes=cfg.lateness_minutes)
            if cfg.lateness_minutes is not None
            else self.lateness
        )
        # manual runs and backfills do not move the schedule: only its own runs do
        last_end = self.store.last_window_end(record.name, ("schedule", "catchup"))
        start = last_end or floor_window(record.created_at, cfg.window)
        return windows.due_windows(cfg.window, start, now, lateness)

    def late_windows(self, record: MonitorRecord, now: datetime | None = None) -> list[datetime]:
        """Evaluated windows whose hours changed (late rows, late labels) after their last run."""
        cfg = self._config(record)
        now = _aware(now or self.clock())
        since = floor_window(now - self.late_lookback, cfg.window)
        runs = self.store.last_runs(record.name, since)
        if not runs:
            return []
        self.profiles.refresh(record.model)
        hours = self.profiles.hours(record.model, since, now)
        label_hours: dict[datetime, datetime] = {}
        if get_check(cfg.kind).uses_labels:
            first = min(r.finished_at or r.started_at for r in runs.values())
            label_hours = self.profiles.label_hours(record.model, first)
        out = []
        for ws, run in sorted(runs.items()):
            if run.finished_at is None:
                continue
            we = run.window_end
            changed = any(
                info["dirty"] or info["changed_at"] > run.finished_at
                for h, info in hours.items()
                if ws <= h < we
            ) or any(ws <= h < we and t > run.finished_at for h, t in label_hours.items())
            if changed:
                out.append(ws)
        return out

    def tick(self, name: str, now: datetime | None = None) -> list[RunSummary]:
        """Run due windows (catch-up, oldest first) and re-run windows with late data."""
        record = self.store.get_monitor(name)
        if record is None or not record.enabled:
            return []
        with self._lock(name):
            out: list[RunSummary] = []
            for i, ws in enumerate(self.due_windows(record, now)):
                if self._stopping.is_set():
                    return out  # the rest are due again at the next start
                out.append(self._run(record, ws, "schedule" if i == 0 else "catchup"))
            for ws in self.late_windows(record, now):
                if self._stopping.is_set():
                    return out
                out.append(self._run(record, ws, "late"))
            return out

    def run_window(self, name: str, start: datetime, trigger: str = "manual") -> RunSummary:
        """Evaluate one window of a monitor now (``start`` is floored to the window)."""
        record = self.store.get_monitor(name)
        if record is None:
            raise KeyError(f"monitor {name!r} not found")
        cfg = self._config(record)
        with self._lock(name):
            return self._run(record, floor_window(_aware(start), cfg.window), trigger)

    def backfill(
        self,
        name: str,
        start: datetime,
        end: datetime,
        progress: Callable[[RunSummary], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[RunSummary]:
        """Evaluate every window starting in ``[start, end)``, oldest first (results replace).

        ``should_stop`` (a cancelled job) is asked between windows and between profiled
        ranges; the windows evaluated before it said yes keep their results."""

        def stop() -> bool:
            return self._stopping.is_set() or (should_stop is not None and should_stop())

        record = self.store.get_monitor(name)
        if record is None:
            raise KeyError(f"monitor {name!r} not found")
        cfg = self._config(record)
        ws = floor_window(_aware(start), cfg.window)
        end = _aware(end)
        # reference listing and lake mode read once for the whole backfill, profile sums and
        # samples a block of windows at a time (backfill_scope)
        bounds = []
        w = ws
        while w < end:
            bounds.append((w, cfg.window_end(w)))
            w = bounds[-1][1]
        env = backfill_env(self.env, self.logs, bounds)
        # profile the whole range in one scan before evaluating window by window; when that
        # fails (e.g. the reference is gone) each run below records the error itself
        try:
            self.profiles.register(record.model, self._spec(record, cfg))
            env.profiles.ensure(record.model, ws, max(end, cfg.window_end(ws)), stop)
        except Exception as exc:
            log.warning("monitor %s: profiling %s..%s failed: %s", name, ws, end, exc)
        out = []
        # The alert engine gets the whole backfill at once, at its end: evaluated window by
        # window as they are computed, an alert of the replayed history could be announced
        # midway (the delivery loop plans groups while a server-side backfill runs) and then
        # resolved by a later window of the same replay. A stopped backfill hands over what
        # it computed.
        results: list[MetricResult] = []
        # Windows are recorded in batches (runs and results of up to BATCH_WINDOWS windows,
        # or BATCH_SECONDS of evaluation, in one transaction): one commit per window was a
        # large part of a daily backfill's time. ``progress`` hears of a window once stored.
        batch: list[tuple[FinishedRun, list[MetricResult], RunSummary]] = []
        flushed = time.perf_counter()

        def flush() -> None:
            nonlocal flushed
            if batch:
                self._record(batch, results)
                if progress is not None:
                    for _, _, summary in batch:
                        progress(summary)
                batch.clear()
            flushed = time.perf_counter()

        try:
            schema: ModelSchema | None = self._schema(record.model)
        except KeyError:  # each window records the error
            schema = None
        try:
            with self._lock(name):
                while ws < end and not stop():
                    run, res, summary = self._evaluate_window(
                        record, cfg, schema, ws, "backfill", env
                    )
                    out.append(summary)
                    batch.append((run, res, summary))
                    if (
                        len(batch) >= self.BATCH_WINDOWS
                        or time.perf_counter() - flushed >= self.BATCH_SECONDS
                    ):
                        flush()
                    ws = cfg.window_end(ws)
                flush()
        finally:
            if batch:  # stopped by an exception: keep what was evaluated
                self._record(batch, results)
            self._hand_over(record.name, results, backfill=True)
        return out

    def _record(
        self,
        batch: list[tuple[FinishedRun, list[MetricResult], RunSummary]],
        collect: list[MetricResult],
    ) -> None:
        """Store a batch of evaluated windows in one transaction; when that fails, window by
        window, each failing one recorded as a failed run."""
        try:
            self.store.record_runs([r for r, _, _ in batch], [x for _, rs, _ in batch for x in rs])
        except Exception as exc:
            log.warning("recording %d windows at once failed (%s): one by one", len(batch), exc)
            for i, (run, res, summary) in enumerate(batch):
                try:
                    self.store.record_runs([run], res)
                except Exception as one:
                    err = f"{type(one).__name__}: {one}"
                    run = replace(run, status="error", error=err[:4000], results=0)
                    self.store.record_runs([run], [])
                    batch[i] = (run, [], replace(summary, status="error", results=0, error=err))
        for run, res, _ in batch:
            if run.status == "ok":
                collect.extend(res)

    def _evaluate_window(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        schema: ModelSchema | None,
        ws: datetime,
        trigger: str,
        env: CheckEnv | None = None,
    ) -> tuple[FinishedRun, list[MetricResult], RunSummary]:
        """Evaluate one window without storing anything (a failure is a failed run)."""
        we = cfg.window_end(ws)
        t0 = time.perf_counter()
        try:
            schema = schema or self._schema(record.model)
            ctx = CheckContext(record, cfg, schema, ws, we, env or self.env)
            results, scanned = get_check(cfg.kind).evaluate(ctx)
        except Exception as exc:  # a failing run is recorded; the backfill carries on
            duration = time.perf_counter() - t0
            err = _failed(record.name, ws, exc)
            run = FinishedRun(
                record.name, record.model, ws, we, trigger, record.version, "error",
                error=err[:4000], duration_s=duration,
            )  # fmt: skip
            return run, [], RunSummary(record.name, ws, we, trigger, "error", 0, 0, duration, err)
        duration = time.perf_counter() - t0
        run = FinishedRun(
            record.name, record.model, ws, we, trigger, record.version, "ok",
            rows_scanned=scanned, results=len(results), duration_s=duration,
        )  # fmt: skip
        summary = RunSummary(record.name, ws, we, trigger, "ok", len(results), scanned, duration)
        return run, results, summary

    # ------------------------------------------------------------------ one run
    def _hand_over(self, name: str, results: list[MetricResult], backfill: bool) -> None:
        if self.sink is None or not results:
            return
        try:
            self.sink.results_written(results, backfill=backfill)
        except Exception:  # the alert engine's failure must not undo the run
            log.exception("result sink failed for monitor %s", name)

    def _run(self, record: MonitorRecord, ws: datetime, trigger: str) -> RunSummary:
        """Evaluate and store one window (a ``running`` run first), then hand it over."""
        cfg = self._config(record)
        we = cfg.window_end(ws)
        run_id = self.store.start_run(record.name, record.model, ws, we, trigger, record.version)
        t0 = time.perf_counter()
        try:
            results, scanned = self.evaluate(record, cfg, ws, we)
            self.store.save_results(results, windows=[("monitor", record.name, ws)])
            duration = time.perf_counter() - t0
            self.store.finish_run(
                run_id, "ok", rows_scanned=scanned, results=len(results), duration_s=duration
            )
        except Exception as exc:  # a failing run is recorded; the scheduler carries on
            duration = time.perf_counter() - t0
            err = _failed(record.name, ws, exc)
            self.store.finish_run(run_id, "error", error=err[:4000], duration_s=duration)
            return RunSummary(record.name, ws, we, trigger, "error", 0, 0, duration, err)
        self._hand_over(record.name, results, backfill=trigger == "backfill")
        return RunSummary(record.name, ws, we, trigger, "ok", len(results), scanned, duration)

    # ------------------------------------------------------------------ evaluation
    def _spec(self, record: MonitorRecord, cfg: MonitorConfig) -> ProfileSpec:
        """The hourly profiles the monitor's check reads."""
        schema = self._schema(record.model)
        return get_check(cfg.kind).profile_spec(self.env, record, cfg, schema)

    def evaluate(
        self, record: MonitorRecord, cfg: MonitorConfig, ws: datetime, we: datetime
    ) -> tuple[list[MetricResult], int]:
        """The results of one window (not stored) and the raw rows scanned."""
        ctx = CheckContext(record, cfg, self._schema(record.model), ws, we, self.env)
        check = get_check(cfg.kind)
        if check.reads_rows and self.profiles.lake_fed(record.model):
            return [lake_no_data(ctx)], 0  # its rows stay in the lake (monitor/lake_mode.py)
        return check.evaluate(ctx)


def _failed(monitor: str, ws: datetime, exc: Exception) -> str:
    """Log a failed window; the error as stored with its run."""
    err = f"{type(exc).__name__}: {exc}"
    log.warning("monitor %s window %s failed: %s", monitor, ws, err)
    log.debug("%s", traceback.format_exc())
    return err
