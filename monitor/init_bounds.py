"""The performance bounds ``driftwatch init`` proposes, derived from the model's reference.

A performance or estimated-performance monitor without bounds never alerts. ``init`` reads the
labelled reference it proposes the monitors against and asks
:func:`detectors.performance_bounds.reference_bounds` for ``centre ∓ 3 spreads`` of each
default metric, at the size of one window of the performance monitor:

* the median labelled rows per window in the logs already ingested (all rows when no label
  arrived yet), because that is how many rows each realized window will be judged on;
* without logs, a tenth of the reference (NannyML's default of 10 chunks).

The result is written into the proposed YAML (``bounds`` and a ``description`` saying where
they come from), where the user can read and edit them before ``driftwatch apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.monitors import estimated_metrics, window_delta
from storage.logstore import LogStore
from storage.types import ModelSchema

__all__ = ["DEFAULT_CHUNKS", "ProposedBounds", "proposed_bounds"]

DEFAULT_CHUNKS = 10
MIN_CHUNK = 30  # a monitor's default min_rows: smaller windows are no_data anyway


@dataclass(frozen=True)
class ProposedBounds:
    """Metric → ``(lower, upper)`` and a sentence saying how they were derived."""

    bounds: dict[str, tuple[float | None, float | None]]
    note: str


def _column(table: Any, name: str, task: str) -> np.ndarray:
    values = table.column(name).to_pylist()
    if task == "multiclass":
        return np.asarray(values, dtype=object)
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def proposed_bounds(
    logstore: LogStore, model: str, schema: ModelSchema, reference: str, window: str = "day"
) -> ProposedBounds | None:
    """Bounds for the default performance metrics of ``model`` from its reference.

    ``None`` when the reference cannot give them (no label, prediction or score column, or
    too few labelled rows); ``init`` then proposes the monitors without bounds, as before.
    """
    from detectors.performance_bounds import reference_bounds

    try:
        table = logstore.read_reference(model, reference)
    except KeyError:
        return None
    needed = ["label", schema.prediction, *(schema.scores[:1] if schema.task == "binary" else [])]
    if any(c not in table.column_names for c in needed):
        return None
    table = table.filter(table.column("label").is_valid())
    n_ref = table.num_rows
    if n_ref < 2 * MIN_CHUNK:
        return None
    step = window_delta(window)
    per_window = logstore.rows_per_window(model, step, labelled=True) or logstore.rows_per_window(
        model, step
    )
    if per_window:
        chunk = int(np.median(per_window))
        source = f"the median of {len(per_window)} logged {window}s"
    else:
        chunk = n_ref // DEFAULT_CHUNKS
        source = f"a tenth of the reference (no logs yet, {DEFAULT_CHUNKS} chunks)"
    chunk = max(MIN_CHUNK, min(chunk, n_ref))
    metrics = list(estimated_metrics(schema.task, defaults=True))
    scores = _column(table, schema.scores[0], "binary") if schema.task == "binary" else None
    found = reference_bounds(
        schema.task,
        _column(table, "label", schema.task),
        _column(table, schema.prediction, schema.task),
        scores,
        metrics,
        chunk_size=chunk,
    )
    if not found:
        return None
    parts = []
    for m, b in found.items():
        parts.append(f"{m} {b.centre:.4g} ± 3 x {b.spread:.2g}")
    note = (
        f"Bounds derived from reference {reference!r} ({n_ref} labelled rows): "
        + ", ".join(parts)
        + f", the spread of each metric over windows of {chunk} rows ({source}); "
        "alert on the side that hurts."
    )
    return ProposedBounds({m: b.bounds for m, b in found.items()}, note)
