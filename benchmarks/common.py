"""Shared by the benchmark scripts: ``--repeat N`` medians and the closing JSON line.

Every benchmark ends with one JSON object on its last line (its figures, the repeat count, the
machine's load average and its speed), so a run can be compared with the last one by a script.

The speed (``loop_10m_s``: seconds of a 10-million-step Python loop, median of 5 shorter runs,
timed at the end) is there because load does not show it: on the 2-core development machine
the same code's figures moved by up to 1.8x within an hour at the same load (Parquet over HTTP
199k and 355k rows/s, 2026-12-03). Compare two runs' figures only where their
``loop_10m_s`` are close (0.39 s on that machine's fast hours).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_figures(runs: list[Any]) -> Any:
    """The element-wise median of ``runs`` (dicts of numbers, nested dicts or lists of the
    same shape); values that are not numbers are taken from the first run."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_figures([r[k] for r in runs if k in r]) for k in first}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first
    values = [r for r in runs if isinstance(r, int | float)]
    med = statistics.median(values)
    return round(med, 4) if isinstance(med, float) else med


def repeated(run: Callable[[], dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Call ``run`` ``repeat`` times; the median of its figures (see :func:`median_figures`)."""
    runs = []
    for i in range(max(1, repeat)):
        if repeat > 1:
            print(f"\n--- run {i + 1} of {repeat}", flush=True)
        runs.append(run())
    return median_figures(runs)


def loop_10m_s() -> float:
    """Seconds a 10-million-step pure-Python loop takes now (median of 5 runs of 2 million
    steps, scaled): the machine's speed for one thread, which its load average does not show."""
    times = []
    for _ in range(5):
        t = time.perf_counter()
        x = 0
        for i in range(2_000_000):
            x += i
        times.append(time.perf_counter() - t)
    return round(5 * statistics.median(times), 3)


def print_figures(figures: dict[str, Any], repeat: int = 1) -> None:
    """The closing line: one JSON object of ``figures`` plus the repeat count, the load and
    the machine's speed (:func:`loop_10m_s`)."""
    speed = loop_10m_s()
    load = round(os.getloadavg()[0], 2)
    print(f"machine now: load {load}, a 10M-step Python loop {speed:.2f} s (lower is faster)")
    out = {**figures, "repeat": max(1, repeat), "load_1min": load, "loop_10m_s": speed}
    print(json.dumps(out, sort_keys=False))
