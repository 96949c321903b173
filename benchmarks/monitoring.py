"""Benchmark: incremental profiles and monitor runs over a month of logs, with Evidently beside.

Data: ``--rows`` inference rows (default 10,000,000), 25 features (20 numeric, 5 categorical),
3 tenants, ``--days`` days (default 30) in one DuckDB file; a 100,000-row reference dataset.
One ``feature_drift`` monitor (daily window, all 25 columns, segments: all tenants + each
tenant = 4, default methods: Wasserstein / Jensen-Shannon with null-calibrated thresholds).

Printed, in one run:

* initial profile build over all days (rows/s; target >= 2,000,000),
* one incremental hour (new rows appended, that hour profiled),
* a daily window drift run once its hours are profiled (cold: first run, null calibration
  computed; warm: re-run; target <= 0.2 s),
* a 30-day daily backfill once profiled (target <= 10 s),
* peak RSS while profiling the first third of the days and while profiling the rest (memory
  must not grow with the number of days),
* Evidently 0.7 ``Report([DataDriftPreset()])`` on the same 1-day window (all tenants), the
  reference being the same 100,000 rows.

Usage::

    python benchmarks/monitoring.py                      # full size
    python benchmarks/monitoring.py --rows 1000000 --days 10 --skip-evidently

``--case windows`` measures many small windows instead (issue 17): a backfill of the default
monitors of a model with a labelled reference (feature drift, prediction drift, data quality,
realized and estimated performance: 5 monitors) over ``--days`` daily windows (default 365) of
``--rows-per-day`` rows (default 10,000) from 3 tenants, through the service layer the API and
CLI use (``MonitorService.backfill``, the alert engine as its result sink, default alert rules).
A window-run is one monitor on one window for one tenant (5 x 365 x 3 = 5,475; target: the
whole backfill, hourly profiles included, in <= 60 s, i.e. >= 90 window-runs/s). Printed
beside the figure: its ratio to the target, and the CPU seconds of the process (all threads)
per window-run, which other work on a loaded machine barely moves (the wall clock it does).
``--compare DIR`` runs the same case on the same data with the code checked out in ``DIR``
(e.g. ``git worktree add --detach /tmp/dw-main main``) in a subprocess, and prints both::

    python benchmarks/monitoring.py --case windows --compare /tmp/dw-main
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

# --code DIR: import the project from DIR (the previous code, for --compare)
sys.path.insert(
    0,
    sys.argv[sys.argv.index("--code") + 1]
    if "--code" in sys.argv
    else str(Path(__file__).resolve().parents[1]),
)

if "--code" in sys.argv:
    # only that checkout: an editable install would supply modules it lacks from its own tree
    sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in str(f)]

# only what every version since the windows case exists has (--compare imports older code)
from monitor.monitors import parse_monitor
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.types import FeatureSpec, ModelSchema

N_NUM, N_CAT = 20, 5
TENANTS = ("acme", "globex", "initech")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakRSS:
    """Samples the resident set size every 20 ms while the block runs."""

    def __enter__(self) -> PeakRSS:
        self.base = rss_mb()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())


def schema() -> ModelSchema:
    feats = [FeatureSpec(f"n{i}", "numeric") for i in range(N_NUM)]
    feats += [FeatureSpec(f"c{i}", "categorical", segment=i == 0) for i in range(N_CAT)]
    return ModelSchema("binary", tuple(feats), scores=("score",))


def columns(
    rng: np.random.Generator, n: int, n_num: int = N_NUM, n_cat: int = N_CAT
) -> dict[str, object]:
    cols: dict[str, object] = {}
    for i in range(n_num):
        cols[f"n{i}"] = rng.normal(i, 1 + i / 10, n)
    for i in range(n_cat):
        k = 3 + 10 * i
        vocab = np.array([f"v{j}" for j in range(k)], dtype=object)
        cols[f"c{i}"] = pa.array(vocab[rng.integers(0, k, n)], pa.string())
    score = rng.random(n)
    cols["prediction"] = pa.array((score > 0.5).astype(np.int32))
    cols["score"] = score
    return cols


def day_batch(
    rng: np.random.Generator,
    day: int,
    n: int,
    first_id: int,
    n_num: int = N_NUM,
    n_cat: int = N_CAT,
) -> pa.Table:
    secs = np.sort(rng.uniform(0, 86400, n))
    ts = (T0 + timedelta(days=day)).timestamp() * 1e6 + secs * 1e6
    data = {
        "request_id": pa.array([f"r{i}" for i in range(first_id, first_id + n)], pa.string()),
        "ts": pa.array(ts.astype(np.int64), TS),
        "tenant_id": pa.array(np.array(TENANTS, dtype=object)[rng.integers(0, 3, n)], pa.string()),
        "model_version": pa.array(["v1"] * n, pa.string()),
    }
    data.update(columns(rng, n, n_num, n_cat))  # type: ignore[arg-type]
    return pa.table(data)


def load(ls: LogStore, rows: int, days: int) -> None:
    """Bulk-load the logs (setup, not measured): straight INSERTs on the store's write
    connection, skipping the per-batch idempotency check of ``append_inferences``."""
    rng = np.random.default_rng(0)
    per_day = rows // days
    next_id = 0
    with ls._wlock:
        for d in range(days):
            for part in range(0, per_day, 500_000):
                n = min(500_000, per_day - part)
                batch = day_batch(rng, d, n, next_id).append_column(
                    "received_at", pa.array([T0 + timedelta(days=d + 1)] * n, TS)
                )
                next_id += n
                ls._con.register("__bench", batch)
                ls._con.execute("INSERT INTO inferences__bench BY NAME SELECT * FROM __bench")
                ls._con.unregister("__bench")
            print(f"  loaded day {d + 1}/{days}", end="\r", file=sys.stderr)
    print(file=sys.stderr)


def load_windows_case(path: Path, days: int, per_day: int) -> None:
    """The windows case's logs (setup, not measured): ``per_day`` rows a day from 3 tenants,
    two thirds of them labelled, and a labelled 20,000-row reference ``base``."""
    sch = windows_schema()
    ls = LogStore(path)
    ls.ensure_model("wbench", sch)
    rng = np.random.default_rng(0)
    for first in range(0, days, 30):
        parts = []
        for d in range(first, min(days, first + 30)):
            b = day_batch(rng, d, per_day, d * per_day, n_num=WIN_NUM, n_cat=WIN_CAT)
            parts.append(b)
        batch = pa.concat_tables(parts)
        ls.append_inferences("wbench", batch)
        score = np.asarray(batch.column("score"))
        keep = rng.random(batch.num_rows) < 2 / 3
        labels = pa.table(
            {
                "request_id": batch.column("request_id").filter(pa.array(keep)),
                "label": pa.array((rng.random(int(keep.sum())) < score[keep]).astype(np.int32)),
            }
        )
        ls.append_labels("wbench", labels)
        print(f"  loaded day {min(days, first + 30)}/{days}", end="\r", file=sys.stderr)
    print(file=sys.stderr)
    ref = pa.table(columns(np.random.default_rng(1), 20_000, n_num=WIN_NUM, n_cat=WIN_CAT))
    y = (np.random.default_rng(2).random(ref.num_rows) < np.asarray(ref.column("score"))).astype(
        np.int32
    )
    ls.put_reference("wbench", "base", ref.append_column("label", pa.array(y)))
    ls.checkpoint()
    ls.close()


WIN_NUM, WIN_CAT = 8, 2
# issue 17: 5 monitors x 365 daily windows x 3 tenants in <= 60 s
TARGET_RUNS_PER_S = 90.0


def windows_schema() -> ModelSchema:
    feats = [FeatureSpec(f"n{i}", "numeric") for i in range(WIN_NUM)]
    feats += [FeatureSpec(f"c{i}", "categorical", segment=i == 0) for i in range(WIN_CAT)]
    return ModelSchema("binary", tuple(feats), scores=("score",))


def measure_windows(seed: Path, work: Path, days: int) -> dict[str, object]:
    """Copy the loaded logs to ``work``, open the services there, apply the default monitors
    and alert rules, then time the hourly profile build and each monitor's backfill."""
    from monitor.service import Services
    from monitor.settings import Settings
    from storage.metadata import MetadataStore

    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=work, database_url="", alert_allowed_hosts="127.0.0.1")
    shutil.copy(seed, settings.duckdb_path)
    meta = MetadataStore(settings.metadata_url)
    meta.upgrade()
    meta.create_model("wbench", windows_schema())
    meta.dispose()
    services = Services.open(settings, clock=lambda: T0 + timedelta(days=days + 1))
    try:
        try:
            from monitor.composition import of

            svc, engine = of(services).monitors, of(services).alerting.engine
        except ImportError:  # code from before the composition root (--compare)
            from monitor.alerting import alerting  # type: ignore[attr-defined]
            from monitor.monitoring import monitoring  # type: ignore[attr-defined]

            svc, engine = monitoring(services), alerting(services).engine
        doc = svc.propose("wbench", "base")
        svc.apply(doc["monitors"])
        for rule in doc["rules"]:
            engine.put_rule(rule)
        names = [m["name"] for m in doc["monitors"]]
        runner = svc.runner
        t = time.perf_counter()
        runner.profiles.warm_up()
        warm = time.perf_counter() - t
        end = T0 + timedelta(days=days)
        # CPU seconds of the whole process (every thread, DuckDB's included): unlike the wall
        # clock, barely moved by other work on a loaded machine
        cpu0 = time.process_time()
        t = time.perf_counter()
        # the hourly profiles of the range, built once (a backfill's first step)
        rec = svc.get(names[0])
        cfg = parse_monitor(rec.config)
        runner.profiles.register("wbench", runner._spec(rec, cfg))
        runner.profiles.ensure("wbench", T0, end)
        build = time.perf_counter() - t
        per_monitor: dict[str, float] = {}
        runs = 0
        bad: list[str] = []
        t0 = time.perf_counter()
        for name in names:
            t = time.perf_counter()
            out = svc.backfill(name, T0, end)
            per_monitor[name.removeprefix("wbench-")] = round(time.perf_counter() - t, 3)
            runs += len(out)
            bad += [f"{name} {r.window_start:%Y-%m-%d}: {r.error}" for r in out if r.status != "ok"]
        backfill = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        services.close()
    if bad:
        raise SystemExit("failed runs:\n" + "\n".join(bad[:10]))
    window_runs = runs * len(TENANTS)
    total = build + backfill
    return {
        "monitors": len(names),
        "windows": runs // max(1, len(names)),
        "tenants": len(TENANTS),
        "window_runs": window_runs,
        "warm_up_s": round(warm, 2),
        "profile_build_s": round(build, 2),
        "backfill_s": round(backfill, 2),
        "total_s": round(total, 2),
        "window_runs_per_s": round(window_runs / total, 1),
        "target_ratio": round(window_runs / total / TARGET_RUNS_PER_S, 3),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_window_run": round(1000 * cpu / window_runs, 2),
        "per_monitor_s": per_monitor,
    }


def windows_main(args: argparse.Namespace) -> None:
    tmp = args.data_dir or Path(tempfile.mkdtemp(prefix="dw-bench-windows-"))
    tmp.mkdir(parents=True, exist_ok=True)
    seed = tmp / f"seed-{args.days}x{args.rows_per_day}.duckdb"
    if args.measure_only is None and not seed.exists():
        t = time.perf_counter()
        load_windows_case(seed, args.days, args.rows_per_day)
        print(f"setup: loaded in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.measure_only is not None:  # the --compare subprocess
        shutil.rmtree(tmp / "prev", ignore_errors=True)
        print(json.dumps(measure_windows(args.measure_only, tmp / "prev", args.days)))
        return
    shutil.rmtree(tmp / "now", ignore_errors=True)
    now = measure_windows(seed, tmp / "now", args.days)
    prev = None
    if args.compare:
        cmd = [
            sys.executable, __file__, "--case", "windows", "--code", str(args.compare),
            "--days", str(args.days), "--rows-per-day", str(args.rows_per_day),
            "--data-dir", str(tmp), "--measure-only", str(seed),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(args.compare)}
        print("this code: " + json.dumps(now), file=sys.stderr)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"--compare {args.compare} failed:\n{done.stderr[-3000:]}")
        prev = json.loads(done.stdout.strip().splitlines()[-1])
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    print(
        f"\nmany small windows: {args.days} daily windows x {args.rows_per_day:,} rows/day, "
        f"{WIN_NUM + WIN_CAT} features, {len(TENANTS)} tenants, {now['monitors']} monitors; "
        f"cpus={os.cpu_count()}, load={loadavg}\n"
    )
    cols = [("this code", now)] + ([(f"code in {args.compare}", prev)] if prev else [])
    print("| step | " + " | ".join(c for c, _ in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for key, label in (
        ("profile_build_s", "hourly profile build (s)"),
        ("backfill_s", "backfill of all monitors (s)"),
        ("total_s", "total (s), target <= 60"),
        ("window_runs_per_s", "window-runs/s, target >= 90"),
        ("target_ratio", "window-runs/s / target"),
        ("cpu_s", "CPU s, build + backfill (all threads)"),
        ("cpu_ms_per_window_run", "CPU ms per window-run (load-independent)"),
    ):
        print(f"| {label} | " + " | ".join(str(r.get(key)) for _, r in cols) + " |")
    for name in now["per_monitor_s"]:  # type: ignore[attr-defined]
        print(
            f"| {name} backfill (s) | "
            + " | ".join(str(r["per_monitor_s"].get(name)) for _, r in cols)  # type: ignore[union-attr]
            + " |"
        )
    print(
        json.dumps(
            {
                "benchmark": "monitoring-windows",
                "load": float(loadavg),
                "days": args.days,
                "rows_per_day": args.rows_per_day,
                **now,
                "previous": prev,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=("profiles", "windows"), default="profiles")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=None, help="30 (profiles) / 365 (windows)")
    ap.add_argument("--rows-per-day", type=int, default=10_000, help="windows case")
    ap.add_argument("--compare", type=Path, default=None, help="windows case: previous code")
    ap.add_argument("--code", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--measure-only", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit.")
    args = ap.parse_args()
    if args.case == "windows":
        args.days = args.days or 365
        windows_main(args)
        return
    args.days = args.days or 30
    profiles_main(args)


def profiles_main(args: argparse.Namespace) -> None:
    from monitor.runner import Runner
    from storage.log_reads import LogReads
    from storage.metadata.monitoring import MonitoringStore
    from storage.profiles import ProfileStore

    tmp = args.data_dir or Path(tempfile.mkdtemp(prefix="dw-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(f"sqlite:///{tmp / 'meta.sqlite'}")
    meta.upgrade()
    sch = schema()
    if meta.get_model("bench") is None:
        meta.create_model("bench", sch)
    # DuckDB's buffer pool caches every column segment a scan touches (evictable, up to its
    # memory limit); bounding it makes the RSS columns show our own memory, not the cache.
    ls = LogStore(tmp / "bench.duckdb", memory_limit=args.memory_limit)
    ls.ensure_model("bench", sch)
    table: list[tuple[str, str, str]] = []

    if ls.count_inferences("bench") == 0:
        t = time.perf_counter()
        load(ls, args.rows, args.days)
        ref = pa.table(columns(np.random.default_rng(1), 100_000))
        ls.put_reference("bench", "base", ref)
        ls.checkpoint()
        print(
            f"setup: loaded {args.rows:,} rows in {time.perf_counter() - t:.1f} s", file=sys.stderr
        )
    else:  # a reused data dir: start from no profiles, like a fresh deployment
        with ls._wlock:
            ls._con.execute("DROP TABLE IF EXISTS profiles__bench")
            ls._con.execute("DELETE FROM profile_hours WHERE model = 'bench'")
            ls._con.execute("DELETE FROM profile_state WHERE model = 'bench'")
            ls._con.execute(
                "DELETE FROM inferences__bench WHERE ts >= ?", [T0 + timedelta(days=args.days)]
            )
    n_rows = ls.count_inferences("bench")

    ms = MonitoringStore(meta)
    cfg = parse_monitor(
        {"name": "bench-drift", "model": "bench", "kind": "feature_drift", "reference": "base"}
    )
    if ms.get_monitor("bench-drift") is None:
        ms.create_monitor("bench-drift", "bench", "feature_drift", cfg.to_json())
    runner = Runner(meta, LogReads(ls), profiles=ProfileStore(ls), store=MonitoringStore(meta))
    rec = ms.get_monitor("bench-drift")
    assert rec is not None
    runner.profiles.register("bench", runner._spec(rec, cfg))  # reference bins, once

    # 0. the compiled counting loops, loaded once per process (in a server, on a background
    # thread as the scheduler starts); timed apart so the build's rows/s is the throughput
    t = time.perf_counter()
    runner.profiles.warm_up()
    table.append(
        (
            "load compiled kernels",
            f"{time.perf_counter() - t:.2f} s",
            "once per process; the server loads them in the background as its scheduler starts",
        )
    )

    # 1. initial profile build, in two parts to compare memory
    third = max(1, args.days // 3)
    t = time.perf_counter()
    with PeakRSS() as m1:
        s1 = runner.profiles.ensure("bench", T0, T0 + timedelta(days=third))
    with PeakRSS() as m2:
        s2 = runner.profiles.ensure(
            "bench", T0 + timedelta(days=third), T0 + timedelta(days=args.days)
        )
    build = time.perf_counter() - t
    scanned = s1 + s2
    table.append(
        (
            "initial profile build",
            f"{build:.2f} s",
            f"{scanned / build:,.0f} rows/s (target >= 2,000,000)",
        )
    )
    table.append(
        (
            "peak RSS during build",
            f"{m1.peak - m1.base:.0f} MB / {m2.peak - m2.base:.0f} MB",
            f"above start, first {third} days / remaining {args.days - third} days",
        )
    )

    # 2. one incremental hour
    hour = T0 + timedelta(days=args.days)
    new = day_batch(np.random.default_rng(9), args.days, args.rows // args.days // 24, 10**9)
    new = new.set_column(
        1, "ts", pa.array([hour + timedelta(seconds=i % 3600) for i in range(new.num_rows)], TS)
    )
    ls.append_inferences("bench", new)
    t = time.perf_counter()
    s = runner.profiles.ensure("bench", hour, hour + timedelta(hours=1))
    table.append(("one incremental hour", f"{time.perf_counter() - t:.3f} s", f"{s:,} new rows"))

    # 3. one daily window over all columns and 4 segments, hours profiled
    day = T0 + timedelta(days=args.days // 2)
    t = time.perf_counter()
    r = runner.run_window("bench-drift", day)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    r = runner.run_window("bench-drift", day)
    warm = time.perf_counter() - t
    assert r.status == "ok", r.error
    table.append(
        (
            "daily window run, cold",
            f"{cold:.3f} s",
            f"{r.results} results, null calibration computed",
        )
    )
    table.append(("daily window run, warm", f"{warm:.3f} s", "target <= 0.2 s"))
    t = time.perf_counter()
    runner.evaluate(rec, cfg, day, day + timedelta(days=1))
    table.append(
        (
            "  of which evaluate()",
            f"{time.perf_counter() - t:.3f} s",
            "profiles + detectors, no DB write",
        )
    )

    # 4. 30-day backfill once profiled
    t = time.perf_counter()
    with PeakRSS() as m3:
        runs = runner.backfill("bench-drift", T0, T0 + timedelta(days=args.days))
    bf = time.perf_counter() - t
    assert all(x.status == "ok" for x in runs), [x.error for x in runs if x.error]
    table.append(
        (
            f"{args.days}-day daily backfill",
            f"{bf:.2f} s",
            f"{len(runs)} windows, {sum(x.results for x in runs):,} results, "
            f"peak RSS +{m3.peak - m3.base:.0f} MB (target <= 10 s)",
        )
    )

    # 5. Evidently on the same day (all tenants)
    if not args.skip_evidently:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        feats = [f.name for f in sch.features]
        cur = ls.read_inferences("bench", day, day + timedelta(days=1), columns=feats).to_pandas()
        refdf = ls.read_reference("bench", "base").select(feats).to_pandas()
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Report([DataDriftPreset()]).run(cur, refdf)
        table.append(
            (
                "Evidently DataDriftPreset, same day",
                f"{time.perf_counter() - t:.2f} s",
                f"{len(cur):,} x {len(feats)} vs 100,000 rows, all tenants only (1 segment)",
            )
        )

    with open("/proc/loadavg") as f:
        loadavg = f.read().split()[0]
    print(
        f"\nmonitoring benchmark: {n_rows:,} rows, {N_NUM + N_CAT} features, "
        f"{len(TENANTS)} tenants, {args.days} days; cpus={os.cpu_count()}, "
        f"load={loadavg}\n"
    )
    print(f"| {'step':<38} | {'time':>16} | note |")
    print(f"|{'-' * 40}|{'-' * 18}|------|")
    for step, value, note in table:
        print(f"| {step:<38} | {value:>16} | {note} |")
    ls.close()
    meta.dispose()


if __name__ == "__main__":
    main()
