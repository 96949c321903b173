"""Benchmark: Driftwatch univariate drift against Evidently, alibi-detect and a scipy loop.

25 columns (20 numeric, 5 categorical of cardinality 3 to 1,000, given as Python strings as a
CSV reader gives them), reference and current of N rows each. Measured in one run:

* ``driftwatch full``: reference bins + reference profiles + current profiles + every column's
  default method (``run_drift``), calibration cache cold;
* ``driftwatch new window``: a new current window profiled + methods against the cached
  reference profiles (their null distributions cached too, as the runner keeps them); the
  same with ``fdr=True`` (what the default drift monitors run: small null p-values refined
  with more draws, see ``detectors.drift.calibration``);
* ``driftwatch prepare_reference``: drawing the reference's large-sample null distributions,
  once per reference (the "cold ref" rows include it);
* ``driftwatch merge 24h``: summing 24 hourly profiles per column + methods (cached reference;
  then once more with the calibration cache cleared);
* peers: Evidently ``Report([DataDriftPreset()])``, alibi-detect ``TabularDrift`` (strings
  integer-coded first, which it needs), and a plain scipy loop (``ks_2samp`` /
  ``chi2_contingency``).

Each step runs in a fresh process and peak memory is the peak resident set size above the RSS
before the step, i.e. above the input data; Driftwatch's memory comes from a second run with
glibc told to map and return every large block, as it allocates and frees much less than the
peers and would otherwise show the reuse of freed heap rather than its peak
(Linux: the peak is reset through ``/proc/self/clear_refs``; elsewhere ``tracemalloc`` is used).
Driftwatch steps report the median of ``--repeat`` runs (each in the same fresh
process; peers run once), with their CPU seconds (a busy machine inflates wall time far more than
CPU time) and the target next to the figure. ``--previous REV`` runs the same Driftwatch steps
with the code at git revision ``REV`` in the same run. The last line is one JSON object of the
seconds per step and row count, the targets at 1,000,000 rows (full run ≤ 1.5 s, new window vs
cached reference ≤ 0.5 s), the previous code's figures and the load.

Usage::

    python benchmarks/drift.py                       # 100,000 and 1,000,000 rows, all peers
    python benchmarks/drift.py --rows 1000000 --peers scipy,alibi
    python benchmarks/drift.py --skip-peers
    python benchmarks/drift.py --rows 1000000 --skip-peers --previous main   # vs the code at main
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_figures
from detectors.drift import clear_cache, prepare_reference, run_drift
from detectors.profile_columns import profile_columns, profile_references
from detectors.profiles import ColumnKind, ColumnProfile, ReferenceBins

CARDINALITIES = (3, 10, 50, 200, 1000)
N_NUMERIC = 20
PEERS = ("evidently", "alibi", "scipy")


# ---------------------------------------------------------------- data ---------------------
def make_frame(n: int, seed: int, drift: bool) -> pd.DataFrame:
    """20 numeric columns of mixed shapes and 5 string columns; ``drift`` shifts a few."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        shift = 0.1 if drift and i % 5 == 0 else 0.0
        kind = i % 4
        if kind == 0:
            x = rng.normal(shift, 1.0, n)
        elif kind == 1:
            x = rng.lognormal(shift, 0.8, n)
        elif kind == 2:
            x = rng.integers(0, 100, n).astype(np.float64) + (shift * 10 if shift else 0.0)
        else:
            x = np.round(rng.gamma(2.0 + shift, 2.0, n), 2)
        x[rng.random(n) < 0.01] = np.nan
        cols[f"num_{i:02d}"] = x
    for j, k in enumerate(CARDINALITIES):
        labels = np.array([f"cat{j}_{v}" for v in range(k)], dtype=object)
        w = 1.0 / np.arange(1, k + 1) ** 0.8  # Zipf-like category shares
        if drift and j % 2 == 0:
            w = w[::-1] ** 0.05 * w
        cols[f"cat_{k}"] = labels[rng.choice(k, n, p=w / w.sum())]
    return pd.DataFrame(cols)


def numeric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("num_")]


def categorical_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("cat_")]


# ---------------------------------------------------------------- measuring ----------------
def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """Median of ``repeat`` runs: ``(seconds, peak MiB above the start, result)``.

    The median (not the best) is what a re-run reproduces; with an even count the slower of
    the two middle runs is taken.
    """
    runs = []
    for _ in range(max(repeat, 1)):
        runs.append(_measure_once(fn))
    median = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    _LAST_CPU[0] = median[3]
    return median[0], max(r[1] for r in runs), median[2]


# CPU seconds of the median run of the last measure(): on a shared machine wall time includes
# waiting for a core, CPU time mostly does not.
_LAST_CPU = [0.0]


def _row(name: str, seconds: float, peak: float, note: str) -> tuple[str, float, float, str]:
    return (name, seconds, peak, f"cpu {_LAST_CPU[0]:.3f} s; {note}")


def _measure_once(fn: Callable[[], Any]) -> tuple[float, float, Any, float]:
    gc.collect()
    use_proc = _rss_kib("VmRSS") is not None
    if use_proc:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        except OSError:
            use_proc = False
    if use_proc:
        before = _rss_kib("VmRSS") or 0
        cpu, t = time.process_time(), time.perf_counter()
        result = fn()
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        peak = ((_rss_kib("VmHWM") or before) - before) / 1024.0
    else:
        tracemalloc.start()
        cpu, t = time.process_time(), time.perf_counter()
        result = fn()
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return seconds, peak, result, cpu


# ---------------------------------------------------------------- Driftwatch ---------------
def profile_frame(df: pd.DataFrame, bins: dict[str, ReferenceBins]) -> dict[str, ColumnProfile]:
    return profile_columns({c: df[c].to_numpy() for c in bins}, bins)


def reference_profiles(ref: pd.DataFrame) -> dict[str, ColumnProfile]:
    kinds: dict[str, ColumnKind] = {c: "numeric" for c in numeric_columns(ref)}
    kinds |= {c: "categorical" for c in categorical_columns(ref)}
    return profile_references({c: ref[c].to_numpy() for c in kinds}, kinds)


def driftwatch_full(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, Any]:
    clear_cache()
    rp = reference_profiles(ref)
    cp = profile_frame(cur, {c: p.bins for c, p in rp.items()})
    return run_drift(rp, cp)


def drifted_count(results: dict[str, Any]) -> int:
    return sum(1 for rs in results.values() for r in rs if r.drifted)


# ---------------------------------------------------------------- peers --------------------
def run_evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> int:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset()]).run(cur, ref)
    return len(snapshot.dict().get("metrics", []))


def run_alibi(ref: pd.DataFrame, cur: pd.DataFrame) -> int:
    from alibi_detect.cd import TabularDrift

    num, cat = numeric_columns(ref), categorical_columns(ref)

    def encode(df: pd.DataFrame, vocab: dict[str, pd.Index]) -> np.ndarray:
        x = np.empty((len(df), len(num) + len(cat)), dtype=np.float32)
        x[:, : len(num)] = df[num].to_numpy(dtype=np.float32)
        for j, c in enumerate(cat):
            x[:, len(num) + j] = vocab[c].get_indexer(df[c])
        return np.nan_to_num(x, nan=0.0)

    vocab = {c: pd.Index(pd.unique(pd.concat([ref[c], cur[c]]))) for c in cat}
    x_ref, x_cur = encode(ref, vocab), encode(cur, vocab)
    cats = {len(num) + j: None for j in range(len(cat))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cd = TabularDrift(x_ref, p_val=0.05, categories_per_feature=cats)
        pred = cd.predict(x_cur, drift_type="feature")
    return int(np.sum(pred["data"]["is_drift"]))


def run_scipy(ref: pd.DataFrame, cur: pd.DataFrame) -> int:
    from scipy import stats

    drifted = 0
    for c in numeric_columns(ref):
        r, x = ref[c].dropna().to_numpy(), cur[c].dropna().to_numpy()
        drifted += stats.ks_2samp(r, x).pvalue < 0.05
    for c in categorical_columns(ref):
        table = pd.concat([ref[c].value_counts(), cur[c].value_counts()], axis=1).fillna(0)
        drifted += stats.chi2_contingency(table.to_numpy().T).pvalue < 0.05
    return int(drifted)


PEER_FNS = {"evidently": run_evidently, "alibi": run_alibi, "scipy": run_scipy}


# ---------------------------------------------------------------- main --------------------
def bench_driftwatch(n: int, repeat: int) -> list[tuple[str, float, float, str]]:
    ref, cur = make_frame(n, 1, drift=False), make_frame(n, 2, drift=True)
    rows: list[tuple[str, float, float, str]] = []

    # numba's import and the compiled loops, once per process (from numba's disk cache, which
    # bench() fills first): timed apart, reported as the last row with its CPU split into
    # numba's import, numba's first call (its CPU target: lowering registries, its BLAS probe
    # importing scipy.linalg) and the cached signatures of every kernel
    phases: dict[str, float] = {}

    def warm_up() -> None:
        cpu = time.process_time()
        import numba  # noqa: F401

        phases["import numba"] = time.process_time() - cpu
        from detectors import profile_kernels

        cpu = time.process_time()
        profile_kernels.split_finite(np.zeros(1), np.empty(1))
        phases["numba's first call"] = time.process_time() - cpu
        cpu = time.process_time()
        profile_kernels.warm_up()
        phases["the other cached signatures"] = time.process_time() - cpu

    warm = measure(warm_up)
    split = ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
    warm_row = _row(
        "driftwatch load compiled loops", warm[0], warm[1], f"once per process ({split})"
    )

    s, m, res = measure(lambda: driftwatch_full(ref, cur), repeat)
    rows.append(
        _row("driftwatch full (bins+profiles+methods)", s, m, f"{drifted_count(res)} drifted")
    )

    # the reference is profiled (and its null distributions cached) once, as the runner would
    ref_profiles = reference_profiles(ref)
    bins = {c: p.bins for c, p in ref_profiles.items()}

    def prepare() -> int:
        clear_cache()
        return prepare_reference(ref_profiles)

    s, m, _ = measure(prepare, repeat)
    rows.append(_row("driftwatch prepare_reference (null draws)", s, m, "once per reference"))

    def cold_window() -> dict[str, Any]:
        clear_cache()
        return run_drift(ref_profiles, profile_frame(cur, bins))

    s, m, _ = measure(cold_window, repeat)
    rows.append(
        _row("driftwatch current profile + methods, cold ref", s, m, "null draws not cached")
    )
    window = make_frame(n, 3, drift=True)

    s, m, res = measure(lambda: run_drift(ref_profiles, profile_frame(window, bins)), repeat)
    rows.append(_row("driftwatch new window vs cached ref", s, m, f"{drifted_count(res)} drifted"))

    # what the default drift monitors run (fdr: true): small null p-values refined with
    # 10 m / alpha more draws, cached per reference like the other nulls
    s, m, res = measure(
        lambda: run_drift(ref_profiles, profile_frame(window, bins), fdr=True), repeat
    )
    rows.append(
        _row("driftwatch new window vs cached ref, fdr", s, m, f"{drifted_count(res)} drifted")
    )

    hours = np.array_split(np.arange(n), 24)
    hourly = [profile_frame(window.iloc[idx], bins) for idx in hours]

    def merge_and_run() -> dict[str, Any]:
        merged = {c: ColumnProfile.merge(h[c] for h in hourly) for c in bins}
        return run_drift(ref_profiles, merged)

    s, m, res = measure(merge_and_run, repeat)
    rows.append(_row("driftwatch merge 24 hourly + methods", s, m, f"{drifted_count(res)} drifted"))

    def merge_and_run_cold() -> dict[str, Any]:
        clear_cache()
        return merge_and_run()

    s, m, res = measure(merge_and_run_cold, repeat)
    rows.append(
        _row("driftwatch merge 24 hourly + methods, cold ref", s, m, "null draws not cached")
    )
    return [*rows, warm_row]


def bench_peer(n: int, peer: str) -> list[tuple[str, float, float, str]]:
    ref, cur = make_frame(n, 1, drift=False), make_frame(n, 2, drift=True)
    s, m, res = measure(lambda: PEER_FNS[peer](ref, cur))
    return [_row(peer, s, m, f"result {res}")]


def run_child(
    n: int, step: str, repeat: int, strict_memory: bool = False, script: str = __file__
) -> list[tuple[str, float, float, str]]:
    """One step in a fresh process, so its memory is not reused from an earlier step.

    ``script`` is this file in another checkout for ``--previous`` (it imports that
    checkout's code).

    ``strict_memory`` makes glibc map every block above 128 KiB separately and return it when
    freed, so a step cannot reuse memory a previous step left in the heap and the RSS peak is
    its true peak; it slows allocation-heavy code, so timings come from a normal run.
    """
    env = dict(os.environ)
    if strict_memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    cmd = [sys.executable, script, "--child", step, "--rows", str(n), "--repeat", str(repeat)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return [tuple(r) for r in json.loads(line[len(_MARK) :])]  # type: ignore[misc]
    raise RuntimeError(f"{step} at {n} rows failed:\n{proc.stderr[-3000:]}")


_MARK = "ROWS_JSON:"


# targets at 1,000,000 rows (issue 17), seconds of wall time on a quiet machine
FULL, WINDOW = "driftwatch full (bins+profiles+methods)", "driftwatch new window vs cached ref"
TARGETS = {FULL: 1.5, WINDOW: 0.5}


def _cpu(note: str) -> float | None:
    m = re.match(r"cpu ([0-9.]+) s", note)
    return float(m.group(1)) if m else None


def previous_checkout(rev: str) -> Path:
    """The code at git revision ``rev`` in a temporary directory (``git archive``), for
    running the same steps with the previous code in the same run."""
    root = Path(__file__).resolve().parents[1]
    out = Path(tempfile.mkdtemp(prefix="drift-bench-prev-"))
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "benchmarks", "detectors"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def bench(
    n: int, peers: list[str], repeat: int, previous: tuple[str, Path] | None = None
) -> tuple[list[tuple[str, float, float, str]], dict[str, tuple[float, float | None]]]:
    """The rows of one row count, and ``{step: (seconds, cpu)}`` of the previous code."""
    print(f"\n# {n:,} rows x 25 columns (reference and current)", flush=True)
    sample = make_frame(min(n, 10_000), 1, drift=False)
    per_row = sample.memory_usage(deep=True).sum() / len(sample)
    print(f"input data in memory: ~{2 * per_row * n / 2**20:,.0f} MiB", flush=True)
    prev: dict[str, tuple[float, float | None]] = {}
    # a small run first fills numba's disk cache of each checkout (a fresh clone or the
    # previous code's temporary copy compiles its loops once, ~2.5 s), so that "load compiled
    # loops" is the cache load a process pays, for both codes alike
    run_child(1_000, "driftwatch", 1)
    if previous is not None:
        print(f"running the previous code ({previous[0]}) ...", flush=True)
        script = str(previous[1] / "benchmarks" / "drift.py")
        run_child(1_000, "driftwatch", 1, script=script)
        for name, s, _, note in run_child(n, "driftwatch", repeat, script=script):
            prev[name] = (s, _cpu(note))
    timed = run_child(n, "driftwatch", repeat)
    sized = run_child(n, "driftwatch", 1, strict_memory=True)
    rows = [
        (name, s, m_strict, note)
        for (name, s, _, note), (_, _, m_strict, _) in zip(timed, sized, strict=True)
    ]
    for peer in peers:
        print(f"running {peer} ...", flush=True)
        rows += run_child(n, peer, repeat)

    full = next(s for name, s, _, _ in rows if name == FULL)
    prev_head = f"prev s/cpu ({previous[0]})" if previous else ""
    print(
        f"\n{'step':<46} {'seconds':>8} {'cpu s':>7} {'target':>7} {prev_head:>24} "
        f"{'peak MiB':>9} {'x DW full':>10}  note"
    )
    for name, s, m, note in rows:
        ratio = "" if name.startswith("driftwatch") else f"{s / full:,.1f}x"
        cpu = _cpu(note)
        target = TARGETS.get(name) if n == 1_000_000 else None
        tgt = f"<={target:g}" if target else ""
        was = prev.get(name)
        was_s = f"{was[0]:.3f} / {was[1]:.3f}" if was and was[1] is not None else ""
        rest = note.split("; ", 1)[-1] if cpu is not None else note
        print(
            f"{name:<46} {s:>8.3f} {'' if cpu is None else f'{cpu:.3f}':>7} {tgt:>7} "
            f"{was_s:>24} {m:>9.0f} {ratio:>10}  {rest}"
        )
    if n == 1_000_000:
        print(
            f"(median of {repeat} runs each; targets are wall seconds on a quiet machine, "
            f"load now {os.getloadavg()[0]:.1f}: compare CPU seconds when the machine is busy)"
        )
    return rows, prev


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--peers", default=",".join(PEERS), help="evidently,alibi,scipy")
    parser.add_argument("--skip-peers", action="store_true", help="measure Driftwatch only")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each step; the median is reported"
    )
    parser.add_argument(
        "--previous",
        metavar="REV",
        help="also run the Driftwatch steps with the code at git revision REV (e.g. main)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        n = int(args.rows)
        if args.child == "driftwatch":
            rows = bench_driftwatch(n, args.repeat)
        else:
            rows = bench_peer(n, args.child)
        print(_MARK + json.dumps(rows), flush=True)
        return
    peers = [] if args.skip_peers else [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; valid: {', '.join(PEERS)}")
    previous = (args.previous, previous_checkout(args.previous)) if args.previous else None
    figures: dict[str, Any] = {}
    for n in (int(r) for r in args.rows.split(",")):
        rows, prev = bench(n, peers, args.repeat, previous)
        figures[f"rows_{n}"] = {
            name: {"s": round(sec, 4), "cpu_s": _cpu(note), "peak_mib": round(peak)}
            | ({"previous_s": round(prev[name][0], 4)} if name in prev else {})
            | ({"previous_cpu_s": prev[name][1]} if name in prev else {})
            for name, sec, peak, note in rows
        }
        if n == 1_000_000:
            by_name = {name: (sec, _cpu(note)) for name, sec, _, note in rows}
            full, full_cpu = by_name[FULL]
            window, window_cpu = by_name[WINDOW]
            figures["targets_1m"] = {
                "full_s": round(full, 4),
                "full_cpu_s": full_cpu,
                "full_target_s": TARGETS[FULL],
                "full_ok": full <= TARGETS[FULL],
                "new_window_s": round(window, 4),
                "new_window_cpu_s": window_cpu,
                "new_window_target_s": TARGETS[WINDOW],
                "new_window_ok": window <= TARGETS[WINDOW],
            }
    if previous is not None:
        figures["previous"] = previous[0]
        shutil.rmtree(previous[1], ignore_errors=True)
    print_figures(figures, args.repeat)


if __name__ == "__main__":
    main()
