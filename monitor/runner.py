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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from detectors.drift import get_method, run_drift
from detectors.drift.run import detect
from detectors.profiles import ColumnProfile, ReferenceBins, profile_categorical, profile_numeric
from detectors.quality import missing_rate, missing_rate_change, new_categories, out_of_range
from detectors.result import DetectorResult
from monitor.monitors import MonitorConfig, dle_features, monitored_columns, parse_monitor
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore, MonitorRecord
from storage.profiles import ROWS_COLUMN, ProfileSpec, ProfileStore, RawProfile, edges_key
from storage.types import ALL, MetricResult, ModelSchema

__all__ = ["ResultSink", "RunSummary", "Runner", "floor_window"]

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
    """Start of the tumbling UTC window holding ``ts`` (weeks start on Monday)."""
    ts = ts.astimezone(UTC)
    if window == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day
    return day - timedelta(days=day.weekday())


@dataclass
class _Reference:
    bins: dict[str, ReferenceBins]
    profiles: dict[str, ColumnProfile]
    table: dict[str, np.ndarray] = field(default_factory=dict)


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class Runner:
    """Evaluates monitors on windows. Thread-safe: one run per monitor at a time.

    Parameters
    ----------
    metadata, logstore
        The process's stores.
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

    def __init__(
        self,
        metadata: MetadataStore,
        logstore: LogStore,
        *,
        profiles: ProfileStore | None = None,
        sink: ResultSink | None = None,
        lateness: timedelta = timedelta(minutes=10),
        sample_size: int = 5000,
        late_lookback: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.metadata = metadata
        self.logstore = logstore
        self.store = MonitoringStore(metadata)
        self.profiles = profiles or ProfileStore(logstore)
        self.sink = sink
        self.lateness = lateness
        self.sample_size = sample_size
        self.late_lookback = late_lookback
        self.clock = clock or (lambda: datetime.now(UTC))
        self._refs: dict[tuple[Any, ...], _Reference] = {}
        # models fitted on a reference (CBPE/DLE estimators, domain classifiers), by what they
        # were fitted on
        self._fitted: dict[tuple[Any, ...], Any] = {}
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
        out = []
        step = cfg.window_delta
        while start + step + lateness <= now:
            out.append(start)
            start = start + step
        return out

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
        if cfg.kind == "performance":
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
            out = []
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
        # profile the whole range in one scan before evaluating window by window; when that
        # fails (e.g. the reference is gone) each run below records the error itself
        try:
            self.profiles.register(record.model, self._spec(record, cfg))
            self.profiles.ensure(record.model, ws, max(end, ws + cfg.window_delta), stop)
        except Exception as exc:
            log.warning("monitor %s: profiling %s..%s failed: %s", name, ws, end, exc)
        out = []
        # The alert engine gets the whole backfill at once, at its end: evaluated window by
        # window as they are computed, an alert of the replayed history could be announced
        # midway (the delivery loop plans groups while a server-side backfill runs) and then
        # resolved by a later window of the same replay. A stopped backfill hands over what
        # it computed.
        results: list[MetricResult] = []
        try:
            with self._lock(name):
                while ws < end and not stop():
                    summary = self._run(record, ws, "backfill", collect=results)
                    out.append(summary)
                    if progress is not None:
                        progress(summary)
                    ws = ws + cfg.window_delta
        finally:
            self._hand_over(record.name, results, backfill=True)
        return out

    # ------------------------------------------------------------------ one run
    def _hand_over(self, name: str, results: list[MetricResult], backfill: bool) -> None:
        if self.sink is None or not results:
            return
        try:
            self.sink.results_written(results, backfill=backfill)
        except Exception:  # the alert engine's failure must not undo the run
            log.exception("result sink failed for monitor %s", name)

    def _run(
        self,
        record: MonitorRecord,
        ws: datetime,
        trigger: str,
        collect: list[MetricResult] | None = None,
    ) -> RunSummary:
        """Evaluate and store one window; its results go to the sink, or into ``collect``
        for the caller to hand over later (a backfill hands over all its windows at once)."""
        cfg = self._config(record)
        we = ws + cfg.window_delta
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
            err = f"{type(exc).__name__}: {exc}"
            log.warning("monitor %s window %s failed: %s", record.name, ws, err)
            log.debug("%s", traceback.format_exc())
            self.store.finish_run(run_id, "error", error=err[:4000], duration_s=duration)
            return RunSummary(record.name, ws, we, trigger, "error", 0, 0, duration, err)
        if collect is not None:
            collect.extend(results)
        else:
            self._hand_over(record.name, results, backfill=trigger == "backfill")
        return RunSummary(record.name, ws, we, trigger, "ok", len(results), scanned, duration)

    # ------------------------------------------------------------------ evaluation
    def _spec(self, record: MonitorRecord, cfg: MonitorConfig) -> ProfileSpec:
        schema = self._schema(record.model)
        cols = monitored_columns(cfg, schema)
        if cfg.kind in ("performance", "estimated_performance", "multivariate_drift"):
            return ProfileSpec()
        ref = self._reference(record.model, cfg, schema, None)
        numeric = {
            c: (ref.bins[c].edges,) for c, k in cols.items() if k == "numeric" and c in ref.bins
        }
        return ProfileSpec(numeric, tuple(c for c, k in cols.items() if k == "categorical"))

    def evaluate(
        self, record: MonitorRecord, cfg: MonitorConfig, ws: datetime, we: datetime
    ) -> tuple[list[MetricResult], int]:
        """The results of one window (not stored) and the raw rows scanned."""
        schema = self._schema(record.model)
        base = {
            "source": "monitor",
            "source_name": record.name,
            "kind": cfg.kind,
            "model": record.model,
            "window_start": ws,
            "window_end": we,
            "definition_version": record.version,
        }
        if cfg.kind in ("feature_drift", "prediction_drift", "data_quality"):
            return self._profile_kind(record, cfg, schema, ws, we, base)
        if cfg.kind == "performance":
            return self._performance(record, cfg, schema, ws, we, base), 0
        if cfg.kind == "estimated_performance":
            return self._estimated(record, cfg, schema, ws, we, base), 0
        return self._multivariate(record, cfg, schema, ws, we, base), 0

    # -- references -------------------------------------------------------------------------
    def _reference(
        self, model: str, cfg: MonitorConfig, schema: ModelSchema, ws: datetime | None
    ) -> _Reference:
        """Bins (and, for dataset / fixed references, profiles) of the monitor's reference;
        computed once per reference and cached."""
        assert cfg.reference is not None
        ref = cfg.reference
        cols = monitored_columns(cfg.model_copy(update={"columns": None}), schema)
        if ref.dataset:
            versions = [v for n, v, _ in self.logstore.list_references(model) if n == ref.dataset]
            if not versions:
                raise KeyError(f"reference {ref.dataset!r} of model {model!r} not found")
            version = ref.version or max(versions)
            # the columns are part of the key: monitors of other kinds share the dataset
            key: tuple[Any, ...] = ("dataset", model, ref.dataset, version, tuple(sorted(cols)))
            if key not in self._refs:
                table = self.logstore.read_reference(model, ref.dataset, version)
                self._refs[key] = self._reference_from_table(table, cols)
            return self._refs[key]
        if ref.start and ref.end:
            key = ("fixed", model, ref.start, ref.end, tuple(sorted(cols)))
            if key not in self._refs:
                sample = self.profiles.sample(model, ref.start, ref.end, list(cols), 200_000)
                self._refs[key] = self._reference_from_table(sample, cols)
            return self._refs[key]
        # relative: bins from a repeatable sample of the model's first week of logs, so that
        # every window's reference and current profiles share the same (stable) bins
        key = ("relative", model, tuple(sorted(cols)))
        if key not in self._refs:
            first = self.profiles.first_ts(model)
            if first is None:
                raise LookupError(f"model {model!r} has no logs to take reference bins from")
            sample = self.profiles.sample(
                model, first, first + timedelta(days=7), list(cols), 200_000
            )
            self._refs[key] = self._reference_from_table(sample, cols, profiles=False)
        return self._refs[key]

    @staticmethod
    def _reference_from_table(
        table: Any, cols: dict[str, str], profiles: bool = True
    ) -> _Reference:
        bins: dict[str, ReferenceBins] = {}
        profs: dict[str, ColumnProfile] = {}
        values: dict[str, np.ndarray] = {}
        for c, kind in cols.items():
            if c not in table.column_names:
                continue
            arr = table.column(c)
            if kind == "numeric":
                x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
                bins[c] = ReferenceBins.numeric(x)
                if profiles:
                    profs[c] = profile_numeric(x, bins[c])
                values[c] = x
            else:
                arr = arr.cast("string") if str(arr.type) != "string" else arr
                bins[c] = ReferenceBins.categorical(arr)
                if profiles:
                    profs[c] = profile_categorical(arr, bins[c])
                values[c] = np.asarray(arr.to_pylist(), dtype=object)
        return _Reference(bins, profs, values)

    # -- profile conversion -------------------------------------------------------------------
    @staticmethod
    def _column_profile(raw: RawProfile | None, bins: ReferenceBins) -> ColumnProfile:
        if raw is None:
            return ColumnProfile(
                bins, 0, 0, None, None, 0.0, 0.0, np.zeros(bins.n_buckets, np.int64)
            )
        if bins.kind == "numeric":
            counts = raw.counts if raw.counts is not None else np.zeros(bins.n_buckets, np.int64)
            return ColumnProfile(
                bins,
                raw.count,
                raw.missing,
                raw.min,
                raw.max,
                raw.sum,
                raw.sum_sq,
                counts,
                n_finite=raw.n_finite,
            )
        index = {c: i for i, c in enumerate(bins.categories)}
        counts = np.zeros(bins.n_buckets, np.int64)
        unseen = []
        for value, n in (raw.categories or {}).items():
            i = index.get(value)
            if i is None:
                counts[-1] += n
                unseen.append((value, int(n)))
            else:
                counts[i] += n
        unseen.sort(key=lambda t: (-t[1], t[0]))
        return ColumnProfile(
            bins, raw.count, raw.missing, None, None, 0.0, 0.0, counts, unseen=tuple(unseen[:20])
        )

    @staticmethod
    def _segments(
        window: dict[tuple[str, str], dict[tuple[str, str], RawProfile]],
        cfg: MonitorConfig,
    ) -> dict[tuple[str, str], dict[tuple[str, str], RawProfile]]:
        """(tenant or "*", version or "*") -> summed profiles."""
        out: dict[tuple[str, str], dict[tuple[str, str], RawProfile]] = {}

        def add(seg: tuple[str, str], cols: dict[tuple[str, str], RawProfile]) -> None:
            target = out.setdefault(seg, {})
            for k, p in cols.items():
                target[k] = target[k] + p if k in target else p

        versions = {v for _, v in window}
        for (tenant, version), cols in window.items():
            if "all" in cfg.segments:
                add((ALL, ALL), cols)
                if cfg.by_version and len(versions) > 1:
                    add((ALL, version or ""), cols)
            if "tenant" in cfg.segments:
                add((tenant, ALL), cols)
        return out

    def _profile_kind(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        schema: ModelSchema,
        ws: datetime,
        we: datetime,
        base: dict[str, Any],
    ) -> tuple[list[MetricResult], int]:
        cols = monitored_columns(cfg, schema)
        ref = self._reference(record.model, cfg, schema, ws)
        spec = self.profiles.register(record.model, self._spec(record, cfg))
        del spec
        scanned = self.profiles.ensure(record.model, ws, we)
        wanted = [
            (c, edges_key(ref.bins[c].edges) if cols[c] == "numeric" else "")
            for c in cols
            if c in ref.bins
        ]
        current = self._segments(self.profiles.window(record.model, ws, we, wanted), cfg)
        reference_by_segment: dict[tuple[str, str], dict[str, ColumnProfile]] | None = None
        if cfg.reference is not None and cfg.reference.previous_days:
            rs = ws - timedelta(days=cfg.reference.previous_days)
            scanned += self.profiles.ensure(record.model, rs, ws)
            prev = self._segments(self.profiles.window(record.model, rs, ws, wanted), cfg)
            reference_by_segment = {
                seg: {c: self._column_profile(p.get((c, k)), ref.bins[c]) for c, k in wanted}
                for seg, p in prev.items()
            }
        results: list[MetricResult] = []
        segs = current or {(ALL, ALL): {}}
        for seg in sorted(segs):
            raw = segs[seg]
            cur = {c: self._column_profile(raw.get((c, k)), ref.bins[c]) for c, k in wanted}
            if reference_by_segment is not None:
                refp = reference_by_segment.get(seg) or reference_by_segment.get((ALL, ALL), {})
            else:
                refp = {c: ref.profiles[c] for c, _ in wanted if c in ref.profiles}
            if not refp:
                refp = {c: self._column_profile(None, ref.bins[c]) for c, _ in wanted}
            rows = raw.get((ROWS_COLUMN, ""))
            if cfg.kind == "data_quality":
                results += self._quality(cfg, seg, refp, cur, base, rows)
            else:
                results += self._drift(record, cfg, seg, refp, cur, base, ws, we, segs, ref)
        if cfg.kind == "data_quality":
            results += self._operational(record, cfg, ws, we, base, current)
        return results, scanned

    # -- drift --------------------------------------------------------------------------------
    def _drift(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        seg: tuple[str, str],
        refp: dict[str, ColumnProfile],
        cur: dict[str, ColumnProfile],
        base: dict[str, Any],
        ws: datetime,
        we: datetime,
        segs: dict[tuple[str, str], dict[tuple[str, str], RawProfile]],
        ref: _Reference,
    ) -> list[MetricResult]:
        tenant, version = seg
        methods = cfg.methods
        profile_methods: dict[str, list[str]] = {}
        sample_methods: dict[str, list[str]] = {}
        from detectors.drift import default_method_for_profile

        for c, rp in refp.items():
            if isinstance(methods, dict) and c in methods:
                chosen = [methods[c]] if isinstance(methods[c], str) else list(methods[c])
            elif isinstance(methods, list):
                chosen = [m for m in methods if rp.kind in get_method(m).kinds]
            else:
                chosen = [default_method_for_profile(rp)]
            for m in chosen:
                target = profile_methods if get_method(m).works_on_profiles else sample_methods
                target.setdefault(c, []).append(m)
        out: list[MetricResult] = []
        drift = run_drift(
            {c: refp[c] for c in profile_methods},
            {c: cur[c] for c in profile_methods if cur[c].count > 0},
            methods=profile_methods,
            thresholds=cfg.thresholds,
            alpha=cfg.alpha,
            fdr=cfg.fdr,
        )
        for c, ms in sample_methods.items():
            drift.setdefault(c, []).extend(
                self._sample_drift(record, cfg, c, ms, ref, ws, we, tenant)
            )
        drifted = 0
        judged = 0
        drifted_columns: list[str] = []
        for c in sorted(drift):
            for r in drift[c]:
                if cur.get(c) is not None and cur[c].count < cfg.min_rows and r.drifted is not None:
                    r = DetectorResult(
                        r.method,
                        r.statistic,
                        r.p_value,
                        r.threshold,
                        None,
                        r.n_reference,
                        r.n_current,
                        {**r.details, "reason": "too few rows"},
                    )
                status = "no_data" if r.drifted is None else ("alert" if r.drifted else "ok")
                judged += r.drifted is not None
                drifted += bool(r.drifted)
                if r.drifted and c not in drifted_columns:
                    drifted_columns.append(c)
                details = _json(
                    {
                        **r.details,
                        "statistic": r.statistic,
                        "p_value": r.p_value,
                        "n_reference": r.n_reference,
                        "n_current": r.n_current,
                        "direction": "below" if r.p_value is not None else "above",
                    }
                )
                if r.drifted and tenant == ALL and version == ALL and cfg.attribution:
                    details["drivers"] = self._attribute(c, r.method, refp[c], segs, cfg)
                    by_value = self._segment_attribution(record, cfg, c, r.method, refp[c], ws, we)
                    if by_value:
                        details["segment_drivers"] = by_value
                value = r.p_value if r.p_value is not None else r.statistic
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=tenant,
                        model_version=version,
                        column=c,
                        metric=r.method,
                        value=_num(value),
                        threshold=r.threshold,
                        status=status,
                        details=details,  # type: ignore[arg-type]
                    )
                )
        share = drifted / judged if judged else None
        out.append(
            MetricResult(
                **base,
                tenant_id=tenant,
                model_version=version,
                column="",
                metric="drift_share",
                value=share,
                threshold=None,
                status="no_data" if share is None else ("warn" if drifted else "ok"),
                details={"drifted": drifted, "columns": judged, "drifted_columns": drifted_columns},
            )
        )
        return out

    def _attribute(
        self,
        column: str,
        method: str,
        ref: ColumnProfile,
        segs: dict[tuple[str, str], dict[tuple[str, str], RawProfile]],
        cfg: MonitorConfig,
    ) -> list[dict[str, Any]]:
        """Rank tenants by how much of the all-tenant drift each one carries: the drop of the
        statistic when the tenant is left out (leave-one-out), with its own statistic."""
        k = "" if ref.kind == "categorical" else edges_key(ref.bins.edges)
        per_tenant = {
            t: cols.get((column, k)) for (t, v), cols in segs.items() if t != ALL and v == ALL
        }
        per_tenant = {t: p for t, p in per_tenant.items() if p is not None}
        if len(per_tenant) < 2:
            return []
        total = sum(per_tenant.values(), RawProfile())
        m = get_method(method)
        if m.on_profiles is None:
            return []

        def stat(raw: RawProfile) -> float | None:
            cp = self._column_profile(raw, ref.bins)
            if cp.count == 0:
                return None
            return float(m.on_profiles(ref, cp).statistic)  # type: ignore[misc]

        full = stat(total)
        ranked = []
        for t, p in per_tenant.items():
            rest = _subtract(total, p)
            without = stat(rest)
            own = stat(p)
            if full is None:
                continue
            if m.is_test:
                contribution = None if without is None else (full - without)
            else:
                contribution = None if without is None else (full - without)
            ranked.append(
                {
                    "tenant_id": t,
                    "rows": int(p.count + p.missing),
                    "statistic": own,
                    "statistic_without": without,
                    "contribution": contribution,
                }
            )
        ranked.sort(key=lambda d: -(d["contribution"] or 0.0))
        return ranked

    def _segment_attribution(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        column: str,
        method: str,
        ref: ColumnProfile,
        ws: datetime,
        we: datetime,
    ) -> dict[str, list[dict[str, Any]]]:
        """For each categorical feature marked ``segment``: its values ranked by how much of
        the column's drift they carry (leave-one-out on the window sample; hourly profiles do
        not cross columns)."""
        m = get_method(method)
        schema = self._schema(record.model)
        seg_cols = [
            f.name
            for f in schema.features
            if f.segment and f.kind in ("categorical", "boolean") and f.name != column
        ]
        if not seg_cols or m.on_profiles is None:
            return {}
        size = cfg.sample_size or self.sample_size
        sample = self.profiles.sample(record.model, ws, we, [column, *seg_cols], size, seed=1)
        if sample.num_rows < cfg.min_rows:
            return {}
        if ref.kind == "numeric":
            values: Any = np.asarray(
                sample.column(column).to_numpy(zero_copy_only=False), dtype=np.float64
            )

            def prof(mask: np.ndarray) -> ColumnProfile:
                return profile_numeric(values[mask], ref.bins)
        else:
            values = np.asarray(sample.column(column).cast("string").to_pylist(), dtype=object)

            def prof(mask: np.ndarray) -> ColumnProfile:
                return profile_categorical(values[mask], ref.bins)

        def stat(mask: np.ndarray) -> float | None:
            p = prof(mask)
            if p.count < cfg.min_rows:
                return None
            return float(m.on_profiles(ref, p).statistic)  # type: ignore[misc]

        everything = np.ones(sample.num_rows, dtype=bool)
        full = stat(everything)
        out: dict[str, list[dict[str, Any]]] = {}
        for seg in seg_cols:
            labels = np.asarray(
                [str(v) if v is not None else "" for v in sample.column(seg).to_pylist()],
                dtype=object,
            )
            names, counts = np.unique(labels, return_counts=True)
            ranked = []
            for name in names[np.argsort(-counts)][:10]:
                mask = labels == name
                without = stat(~mask)
                own = stat(mask)
                ranked.append(
                    {
                        "value": name,
                        "rows": int(mask.sum()),
                        "statistic": own,
                        "statistic_without": without,
                        "contribution": None if full is None or without is None else full - without,
                    }
                )
            ranked.sort(key=lambda d: -(d["contribution"] or 0.0))
            out[seg] = ranked
        return out

    def _sample_drift(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        column: str,
        methods: list[str],
        ref: _Reference,
        ws: datetime,
        we: datetime,
        tenant: str,
    ) -> list[DetectorResult]:
        size = cfg.sample_size or self.sample_size
        sample = self.profiles.sample(
            record.model, ws, we, [column], size, tenant_id=None if tenant == ALL else tenant
        )
        cur = sample.column(column)
        ref_values = ref.table.get(column)
        if ref_values is None:
            raise LookupError(f"no reference sample for column {column!r}")
        kind = ref.bins[column].kind
        cur_values = (
            np.asarray(cur.to_numpy(zero_copy_only=False), dtype=np.float64)
            if kind == "numeric"
            else np.asarray(cur.cast("string").to_pylist(), dtype=object)
        )
        rv = ref_values[: max(size, 1)] if ref_values.size > size else ref_values
        return [
            detect(m, rv, cur_values, kind=kind, threshold=cfg.thresholds.get(m), alpha=cfg.alpha)
            for m in methods
        ]

    # -- data quality and operational metrics --------------------------------------------------------
    def _quality(
        self,
        cfg: MonitorConfig,
        seg: tuple[str, str],
        refp: dict[str, ColumnProfile],
        cur: dict[str, ColumnProfile],
        base: dict[str, Any],
        rows: RawProfile | None,
    ) -> list[MetricResult]:
        tenant, version = seg
        out = []
        for c in sorted(cur):
            checks = [
                missing_rate(cur[c], column=c),
                missing_rate_change(refp[c], cur[c], column=c),
            ]
            if cur[c].kind == "numeric":
                checks.append(out_of_range(refp[c], cur[c], column=c))
            else:
                checks.append(new_categories(refp[c], cur[c], column=c))
            for q in checks:
                metric = "missing_change" if q.check == "missing_change" else q.check
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=tenant,
                        model_version=version,
                        column=c,
                        metric=metric,
                        value=_num(q.value),
                        threshold=q.threshold,
                        status=q.status,  # type: ignore[arg-type]
                        details=_json({**dict(q.details), "n": q.n}),
                    )
                )
        return out

    def _operational(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        ws: datetime,
        we: datetime,
        base: dict[str, Any],
        current: dict[tuple[str, str], dict[tuple[str, str], RawProfile]],
    ) -> list[MetricResult]:
        """Row count and its change against the previous 7 windows, label coverage and delay,
        quarantined rows and freshness: for all tenants, per tenant, and per model version
        when the window holds several (the version segments of ``current``). Quarantined rows
        are counted per tenant only: a rejected row may not have a readable version."""
        out: list[MetricResult] = []
        step = cfg.window_delta
        history = self.profiles.row_counts(record.model, ws - 7 * step, ws, step)
        labels = self.profiles.label_stats(record.model, ws, we)
        quarantined = self.profiles.quarantined(record.model, ws, we)
        last_ts = self.profiles.last_ts(record.model, we)
        segments = {(ALL, ALL)}
        if "tenant" in cfg.segments:
            # tenants of the baseline too: a tenant whose traffic stopped shows row_count 0
            # (change -100 %) instead of vanishing from the results
            segments |= {(t, ALL) for (t, v) in [*current, *history] if t != ALL and v == ALL}
        segments |= {(ALL, v) for (t, v) in current if t == ALL and v != ALL}
        for seg in sorted(segments):
            t, v = seg
            raw = current.get(seg, {}).get((ROWS_COLUMN, ""))
            n = int(raw.count) if raw is not None else 0

            def res(
                metric: str,
                value: float | None,
                status: str,
                t: str = t,
                v: str = v,
                **details: Any,
            ) -> None:
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=t,
                        model_version=v,
                        column="",
                        metric=metric,
                        value=_num(value),
                        threshold=None,
                        status=status,  # type: ignore[arg-type]
                        details=_json(details),
                    )
                )

            res("row_count", n, "ok")
            past = history.get(seg, [])
            if past:
                mean = float(np.mean(past))
                change = (n - mean) / mean if mean > 0 else None
                status = "no_data" if change is None else ("warn" if abs(change) > 0.5 else "ok")
                res("row_count_change", change, status, baseline=mean, windows=len(past))
            else:
                res("row_count_change", None, "no_data", reason="no baseline windows")
            lab = labels.get(seg)
            if lab and lab["rows"]:
                res(
                    "label_coverage",
                    lab["labelled"] / lab["rows"],
                    "ok",
                    rows=lab["rows"],
                    labelled=lab["labelled"],
                )
                res("label_delay_s", lab["delay_s"], "ok" if lab["labelled"] else "no_data")
            else:
                res("label_coverage", None, "no_data")
            if v == ALL:
                res("quarantined", float(quarantined.get(t, 0)), "ok")
            last = last_ts.get(seg)
            fresh = None if last is None else (we - last).total_seconds()
            res("freshness_s", fresh, "no_data" if fresh is None else "ok")
        return out

    # -- performance ----------------------------------------------------------------------------
    def _perf_segments(
        self, cfg: MonitorConfig, table: Any
    ) -> list[tuple[tuple[str, str], np.ndarray]]:
        tenants = np.asarray(table.column("tenant_id").to_pylist(), dtype=object)
        versions = np.asarray(
            [v or "" for v in table.column("model_version").to_pylist()], dtype=object
        )
        segs: list[tuple[tuple[str, str], np.ndarray]] = []
        if "all" in cfg.segments:
            segs.append(((ALL, ALL), np.ones(len(tenants), bool)))
            uv = sorted(set(versions.tolist()))
            if cfg.by_version and len(uv) > 1:
                segs += [((ALL, v), versions == v) for v in uv]
        if "tenant" in cfg.segments:
            segs += [((t, ALL), tenants == t) for t in sorted(set(tenants.tolist()))]
        return segs

    def _performance(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        schema: ModelSchema,
        ws: datetime,
        we: datetime,
        base: dict[str, Any],
    ) -> list[MetricResult]:
        from detectors.performance import TASK_METRICS, realized_performance

        table = self.profiles.labelled(record.model, ws, we, schema.prediction, schema.scores)
        metrics = cfg.metrics or list(TASK_METRICS[schema.task])
        out: list[MetricResult] = []
        for (t, v), mask in self._perf_segments(cfg, table) or [((ALL, ALL), np.zeros(0, bool))]:
            sub = table.filter(mask) if mask.size else table
            labels = np.asarray(sub.column("label").to_pylist(), dtype=object)
            preds = np.asarray(sub.column(schema.prediction).to_pylist(), dtype=object)
            scores = (
                _floats(sub.column(schema.scores[0]))
                if schema.task == "binary" and schema.scores
                else None
            )
            if schema.task != "multiclass":
                labels, preds = labels.astype(float), preds.astype(float)
            n = len(labels)
            if n < cfg.min_rows or (schema.task == "binary" and scores is None):
                out += [
                    _no_data(base, t, v, m, {"n": n, "reason": "too few labelled rows"})
                    for m in metrics
                ]
                continue
            perf = realized_performance(schema.task, labels, preds, scores, metrics=metrics)
            for m in metrics:
                value = perf.metrics.get(m)
                lo, hi = cfg.bounds.get(m, (None, None))
                status = "no_data" if value is None else "ok"
                if value is not None and (
                    (lo is not None and value < lo) or (hi is not None and value > hi)
                ):
                    status = "alert"
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=t,
                        model_version=v,
                        column="",
                        metric=m,
                        value=_num(value),
                        threshold=lo if lo is not None else hi,
                        status=status,  # type: ignore[arg-type]
                        details=_json({"n": perf.n, "estimated": False, "bounds": [lo, hi]}),
                    )
                )
        return out

    def _estimator(
        self, record: MonitorRecord, cfg: MonitorConfig, schema: ModelSchema
    ) -> tuple[Any, tuple[str, ...], str]:
        """The estimator fitted on the monitor's labelled reference (CBPE for binary and
        multiclass, DLE for regression), the feature columns it reads, and the reference's
        ``name/version``. Fitted once per reference version and model schema, then cached."""
        from detectors.estimation import DLE, BinaryCBPE, MulticlassCBPE

        ref = cfg.reference
        if ref is None or not ref.dataset:
            raise LookupError(
                f"estimated_performance monitor {record.name!r}: the reference must be an "
                "uploaded dataset with a label column, not a range of the logs"
            )
        versions = [
            v for n, v, _ in self.logstore.list_references(record.model) if n == ref.dataset
        ]
        if not versions or (ref.version is not None and ref.version not in versions):
            raise KeyError(
                f"estimated_performance monitor {record.name!r}: reference {ref.dataset!r}"
                + (f" version {ref.version}" if ref.version else "")
                + f" of model {record.model!r} not found"
            )
        version = ref.version or max(versions)
        name = f"{ref.dataset}/{version}"
        features = dle_features(schema) if schema.task == "regression" else ()
        calibration = cfg.calibration or "auto"
        key: tuple[Any, ...] = ("estimator", record.model, name, schema, calibration)
        if key in self._fitted:
            return self._fitted[key], features, name
        what = (
            f"estimated_performance monitor {record.name!r}: reference {name!r} "
            f"of model {record.model!r}"
        )
        if schema.task == "regression":
            if not features:
                raise LookupError(f"{what}: DLE needs the model's non-text features; it has none")
            needed = [schema.prediction, *features]
            why = "DLE learns the error from the features and the prediction"
        else:
            if not schema.scores:
                raise LookupError(f"{what}: CBPE needs the model's score columns; it has none")
            needed = [schema.prediction, *schema.scores]
            why = "CBPE calibrates the scores against the labels"
        table = self.logstore.read_reference(record.model, ref.dataset, version)
        if "label" not in table.column_names:
            raise LookupError(
                f"{what} has no 'label' column: the estimator is fitted on a labelled reference "
                f"(upload one with a label column); it has {sorted(table.column_names)}"
            )
        missing = [c for c in needed if c not in table.column_names]
        if missing:
            raise LookupError(
                f"{what} has no column {', '.join(map(repr, missing))} ({why}); "
                f"it has {sorted(table.column_names)}"
            )
        table = table.filter(table.column("label").is_valid())
        if table.num_rows == 0:
            raise LookupError(f"{what}: every value of its 'label' column is missing")
        pred = table.column(schema.prediction)
        estimator: Any
        if schema.task == "binary":
            estimator = BinaryCBPE(calibration=calibration).fit(
                _floats(table.column(schema.scores[0])),
                _floats(table.column("label")),
                _floats(pred),
            )
        elif schema.task == "multiclass":
            if len(schema.classes) != len(schema.scores):
                raise LookupError(
                    f"{what}: model {record.model!r} has {len(schema.scores)} score columns for "
                    f"{len(schema.classes)} classes; CBPE needs one score per class"
                )
            table = table.filter(pred.is_valid())
            estimator = MulticlassCBPE(schema.classes, calibration=calibration).fit(
                _score_matrix(table, schema.scores),
                _strings(table.column("label")),
                _strings(table.column(schema.prediction)),
            )
        else:
            estimator = DLE().fit(
                _feature_table(table, schema, features),
                _floats(pred),
                _floats(table.column("label")),
            )
        self._fitted[key] = estimator
        return estimator, features, name

    def _estimated(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        schema: ModelSchema,
        ws: datetime,
        we: datetime,
        base: dict[str, Any],
    ) -> list[MetricResult]:
        """Performance without labels on the window's bounded sample, per segment: binary and
        multiclass CBPE (scores), regression DLE (features and prediction)."""
        from monitor.monitors import estimated_metrics

        estimator, features, ref_name = self._estimator(record, cfg, schema)
        columns = [schema.prediction, *(features or schema.scores)]
        size = cfg.sample_size or self.sample_size
        sample = self.profiles.sample(record.model, ws, we, columns, size)
        metrics = cfg.metrics or list(estimated_metrics(schema.task, defaults=True))
        method = "dle" if schema.task == "regression" else "cbpe"
        # fewer rows than asked for: the sample is the whole window
        whole = sample.num_rows < size
        out: list[MetricResult] = []
        segments = self._perf_segments(cfg, sample) or [((ALL, ALL), np.zeros(0, bool))]
        for (t, v), mask in segments:
            if t != ALL and not whole:
                # a tenant gets a bounded sample of its own rows, not its share of the window's
                sub = self.profiles.sample(record.model, ws, we, columns, size, tenant_id=t)
            else:
                sub = sample.filter(mask) if mask.size else sample
            dropped = 0
            if schema.task == "multiclass":
                # a prediction that is no class (or none) cannot be placed in the confusion matrix
                classes = set(schema.classes)
                keep = np.array(
                    [p in classes for p in sub.column(schema.prediction).to_pylist()], dtype=bool
                )
                dropped = int((~keep).sum())
                sub = sub.filter(keep)
            n = sub.num_rows
            est = None
            if n >= cfg.min_rows:
                pred = sub.column(schema.prediction)
                if schema.task == "binary":
                    est = estimator.estimate(_floats(sub.column(schema.scores[0])), _floats(pred))
                elif schema.task == "multiclass":
                    est = estimator.estimate(_score_matrix(sub, schema.scores), _strings(pred))
                else:
                    est = estimator.estimate(_feature_table(sub, schema, features), _floats(pred))
            for m in metrics:
                details: dict[str, Any] = {
                    "n": n,
                    "estimated": True,
                    "method": method,
                    "reference": ref_name,
                }
                if dropped:
                    details["dropped_predictions"] = dropped
                if est is not None and "calibrated" in est.details:
                    details["calibrated"] = est.details["calibrated"]
                em = est[m] if est is not None else None
                if em is None or em.value is None:
                    details["reason"] = "too few rows" if n < cfg.min_rows else "not estimable"
                    out.append(_no_data(base, t, v, m, _json(details)))
                    continue
                lo, hi = cfg.bounds.get(m, (None, None))
                outside = (lo is not None and em.value < lo) or (hi is not None and em.value > hi)
                details.update(
                    lower=em.lower,
                    upper=em.upper,
                    sampling_error=em.sampling_error,
                    estimator_error=em.estimator_error,
                    bounds=[lo, hi],
                )
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=t,
                        model_version=v,
                        column="",
                        metric=m,
                        value=_num(em.value),
                        threshold=lo if lo is not None else hi,
                        status="alert" if outside else "ok",
                        details=_json(details),
                    )
                )
        return out

    def _multivariate(
        self,
        record: MonitorRecord,
        cfg: MonitorConfig,
        schema: ModelSchema,
        ws: datetime,
        we: datetime,
        base: dict[str, Any],
    ) -> list[MetricResult]:
        from detectors.multivariate import DomainClassifier

        cols = monitored_columns(cfg, schema)
        ref = self._reference(record.model, cfg, schema, ws)
        size = cfg.sample_size or self.sample_size
        categorical = [c for c, k in cols.items() if k == "categorical"]
        ref_table = {c: ref.table[c][:size] for c in cols if c in ref.table}
        key = ("domain", record.model, repr(cfg.reference), tuple(ref_table))
        if key not in self._fitted:
            self._fitted[key] = DomainClassifier(categorical=categorical, max_samples=size).fit(
                ref_table
            )
        clf = self._fitted[key]
        sample = self.profiles.sample(record.model, ws, we, list(ref_table), size)
        out: list[MetricResult] = []
        for (t, v), mask in self._perf_segments(cfg, sample):
            sub = sample.filter(mask)
            if sub.num_rows < cfg.min_rows:
                continue
            cur = {
                c: (
                    np.asarray(sub.column(c).to_pylist(), dtype=object)
                    if c in categorical
                    else _floats(sub.column(c))
                )
                for c in ref_table
            }
            r = clf.score(cur)
            status = "no_data" if r.drifted is None else ("alert" if r.drifted else "ok")
            out.append(
                MetricResult(
                    **base,
                    tenant_id=t,
                    model_version=v,
                    column="",
                    metric="domain_classifier_auc",
                    value=_num(r.statistic),
                    threshold=r.threshold,
                    status=status,  # type: ignore[arg-type]
                    details=_json({**r.details, "n_current": r.n_current}),
                )
            )
        return out


def _floats(column: Any) -> np.ndarray:
    """A numeric or boolean Arrow column as float64, missing values NaN."""
    return np.asarray(column.cast("double").to_numpy(zero_copy_only=False), dtype=np.float64)


def _strings(column: Any) -> np.ndarray:
    """An Arrow column as an object array of strings (missing values None)."""
    return np.asarray(column.cast("string").to_pylist(), dtype=object)


def _score_matrix(table: Any, scores: Iterable[str]) -> np.ndarray:
    return np.column_stack([_floats(table.column(c)) for c in scores])


def _feature_table(table: Any, schema: ModelSchema, features: Iterable[str]) -> dict[str, Any]:
    """Features as DLE's table: numbers and booleans as float64 (NaN missing), categories as
    strings, the same conversion for the reference and every window."""
    out: dict[str, Any] = {}
    for name in features:
        spec = schema.feature(name)
        kind = spec.kind if spec is not None else "numeric"
        col = table.column(name)
        out[name] = _floats(col) if kind in ("numeric", "boolean") else _strings(col)
    return out


def _subtract(total: RawProfile, part: RawProfile) -> RawProfile:
    counts = None
    if total.counts is not None and part.counts is not None:
        counts = total.counts - part.counts
    cats = None
    if total.categories is not None:
        cats = {k: v - (part.categories or {}).get(k, 0) for k, v in total.categories.items()}
        cats = {k: v for k, v in cats.items() if v > 0}
    # min/max of the rest are unknown from sums; they are not used by distances
    return RawProfile(
        total.count - part.count,
        total.missing - part.missing,
        total.n_finite - part.n_finite,
        total.min,
        total.max,
        total.sum - part.sum,
        total.sum_sq - part.sum_sq,
        counts,
        cats,
    )


def _no_data(
    base: dict[str, Any], tenant: str, version: str, metric: str, details: dict[str, Any]
) -> MetricResult:
    """A model-level metric that could not be computed for this segment (the reason in
    ``details``)."""
    return MetricResult(
        **base,
        tenant_id=tenant,
        model_version=version,
        column="",
        metric=metric,
        value=None,
        threshold=None,
        status="no_data",
        details=details,
    )


def _num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if np.isfinite(v) else None


def _json(value: Any) -> Any:
    """Details as plain JSON: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if np.isfinite(f) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int):
        return value
    return str(value)


def ranked(results: Iterable[MetricResult]) -> list[MetricResult]:
    """Results sorted alert first, then warn, ok, no_data (for listings)."""
    order = {"alert": 0, "warn": 1, "ok": 2, "no_data": 3}
    return sorted(results, key=lambda r: (order[r.status], r.tenant_id, r.column, r.metric))
