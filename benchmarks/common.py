"""Shared by the benchmark scripts: ``--repeat N`` medians and the closing JSON line.

Every benchmark ends with one JSON object on its last line (its figures, the repeat count and
the machine's load average), so a run can be compared with the last one by a script.
"""

from __future__ import annotations

import json
import os
import statistics
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


def print_figures(figures: dict[str, Any], repeat: int = 1) -> None:
    """The closing line: one JSON object of ``figures`` plus the repeat count and the load."""
    out = {**figures, "repeat": max(1, repeat), "load_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(out, sort_keys=False))
