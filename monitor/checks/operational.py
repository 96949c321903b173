"""Operational metrics of a window (part of ``data_quality``), all with ``column=""``:
``row_count`` and ``row_count_change`` against the previous 7 windows, ``label_coverage`` and
``label_delay_s``, ``quarantined`` rows and ``freshness_s``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from monitor.checks.base import CheckContext
from monitor.checks.common import num, plain
from monitor.checks.profiled import Segments
from monitor.windows import Window
from storage.profiles import ROWS_COLUMN
from storage.types import ALL, MetricResult

__all__ = ["operational_metrics"]


def _row_counts(profiles: Any, model: str, w: Window, ws: datetime) -> dict[Any, list[int]]:
    """Rows in each of the 7 windows before ``ws`` that has profiled hours (calendar months
    differ in length: one read per month)."""
    first = w.shift(ws, -7)
    if w.width is not None:
        return profiles.row_counts(model, first, ws, w.width)  # type: ignore[no-any-return]
    months = [profiles.row_counts(model, s, w.end(s), w.end(s) - s) for s in w.starts(first, ws)]
    covered = [m for m in months if m]
    keys = {k for m in covered for k in m}
    return {k: [(m.get(k) or [0])[0] for m in covered] for k in keys}


def operational_metrics(ctx: CheckContext, current: Segments) -> list[MetricResult]:
    """For all tenants, per tenant, and per model version when the window holds several (the
    version segments of ``current``). Quarantined rows are counted per tenant only: a rejected
    row may not have a readable version."""
    cfg, model, ws, we = ctx.cfg, ctx.model, ctx.start, ctx.end
    logs = ctx.env.logs
    out: list[MetricResult] = []
    history = _row_counts(ctx.env.profiles, model, cfg.windowing, ws)
    labels = logs.label_stats(model, ws, we)
    quarantined = logs.quarantined(model, ws, we)
    # Freshness reads the rows since the baseline's first window, not the whole history (a
    # backfill of a year of daily windows read it 365 times). Every segment reported below has
    # rows there (it comes from this window or the baseline's), except all tenants when neither
    # has any: only then is the whole history read.
    last_ts = logs.last_ts(model, we, since=cfg.windowing.shift(ws, -7))
    segments = {(ALL, ALL)}
    if "tenant" in cfg.segments:
        # tenants of the baseline too: a tenant whose traffic stopped shows row_count 0
        # (change -100 %) instead of vanishing from the results
        segments |= {(t, ALL) for (t, v) in [*current, *history] if t != ALL and v == ALL}
    segments |= {(ALL, v) for (t, v) in current if t == ALL and v != ALL}
    if any(seg not in last_ts for seg in segments):
        last_ts = logs.last_ts(model, we)
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
                    **ctx.base,
                    tenant_id=t,
                    model_version=v,
                    column="",
                    metric=metric,
                    value=num(value),
                    threshold=None,
                    status=status,  # type: ignore[arg-type]
                    details=plain(details),
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
