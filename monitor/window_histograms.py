"""A drift monitor's reference and window histograms of one column, read from the stored hourly
profiles (no raw row): what the feature page draws for a window.

The profiles hold histograms on the reference's bin edges (numeric) and every category's count
(categorical), whoever computed them: the embedded store or a lake job that pushed them. So a
lake-fed model, whose server holds no raw rows, and the embedded model with the same rows give
the same bars. The reference side is the monitor's reference dataset profiled on the same bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.checks.base import CheckEnv
from monitor.checks.profiled import column_profile
from monitor.monitors import MonitorConfig
from storage.profiles import ROWS_COLUMN, edges_key
from storage.types import ALL, ModelSchema

__all__ = ["WindowHistograms", "window_histograms"]


@dataclass(frozen=True)
class WindowHistograms:
    """Counts per bucket: numeric ``(-inf, e_0], (e_0, e_1], ..., (e_k, +inf)`` on ``edges``;
    categorical the reference's vocabulary in ``categories`` then "other"."""

    kind: str  # "numeric" or "categorical"
    edges: tuple[float, ...]
    categories: tuple[str, ...]
    reference: list[int]
    current: list[int]


def window_histograms(
    env: CheckEnv,
    model: str,
    cfg: MonitorConfig,
    schema: ModelSchema,
    column: str,
    tenant: str,
    start: datetime,
    end: datetime,
) -> WindowHistograms | None:
    """The histograms of ``column`` in ``[start, end)`` for ``tenant`` (``*``: all), or None
    when they cannot be read from profiles: the reference is not a dataset (its bins come from
    raw rows), the column's profiles on the reference's bins do not hold every row of the window,
    or (embedded model) an hour of the window is not profiled or is dirty."""
    ref_cfg = cfg.reference
    if ref_cfg is None or not ref_cfg.dataset:
        return None
    profiles = env.profiles
    if not profiles.lake_fed(model):
        hours = profiles.hours(model, start, end)
        n_hours = -(-(end - start) // timedelta(hours=1))
        if len(hours) < n_hours or any(h["dirty"] for h in hours.values()):
            return None
    try:
        ref = env.caches.reference(env.logs, model, cfg, schema)
    except KeyError:  # the reference dataset was deleted
        return None
    bins, ref_profile = ref.bins.get(column), ref.profiles.get(column)
    if bins is None or ref_profile is None:
        return None
    key = "" if bins.kind == "categorical" else edges_key(bins.edges)
    window = profiles.window(
        model, start, end, [(column, key)], tenant_id=None if tenant == ALL else tenant
    )
    parts = [cols[(column, key)] for cols in window.values() if (column, key) in cols]
    rows = sum(
        cols[(ROWS_COLUMN, "")].count for cols in window.values() if (ROWS_COLUMN, "") in cols
    )
    # every row of the window is in the column's profiles (an hour profiled on an older spec,
    # without these bins, would leave its rows out of the bars)
    if not parts or sum(p.count + p.missing for p in parts) != rows:
        return None
    raw = parts[0]
    for p in parts[1:]:
        raw = raw + p
    current = [int(c) for c in column_profile(raw, bins).counts]
    if sum(current) == 0:
        return None
    return WindowHistograms(
        bins.kind,
        tuple(bins.edges),
        tuple(bins.categories),
        [int(c) for c in ref_profile.counts],
        current,
    )
