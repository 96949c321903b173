"""Who carries a column's drift: tenants (leave-one-out on the hourly profiles) and the values
of segment features (leave-one-out on the window sample)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.drift import get_method
from detectors.profiles import ColumnProfile, profile_categorical, profile_numeric
from monitor.checks.base import CheckContext
from monitor.checks.profiled import Segments, column_profile, subtract
from storage.profiles import RawProfile, edges_key
from storage.types import ALL

__all__ = ["segment_drivers", "tenant_drivers"]


def tenant_drivers(
    column: str, method: str, ref: ColumnProfile, segs: Segments
) -> list[dict[str, Any]]:
    """Rank tenants by how much of the all-tenant drift each one carries: the drop of the
    statistic when the tenant is left out (leave-one-out), with its own statistic."""
    k = "" if ref.kind == "categorical" else edges_key(ref.bins.edges)
    per_tenant = {
        t: p
        for (t, v), cols in segs.items()
        if t != ALL and v == ALL and (p := cols.get((column, k))) is not None
    }
    if len(per_tenant) < 2:
        return []
    total = sum(per_tenant.values(), RawProfile())
    m = get_method(method)
    if m.on_profiles is None:
        return []
    on_profiles = m.on_profiles

    def stat(raw: RawProfile) -> float | None:
        cp = column_profile(raw, ref.bins)
        if cp.count == 0:
            return None
        return float(on_profiles(ref, cp).statistic)

    full = stat(total)
    ranked: list[dict[str, Any]] = []
    for t, p in per_tenant.items():
        without = stat(subtract(total, p))
        own = stat(p)
        if full is None:
            continue
        ranked.append(
            {
                "tenant_id": t,
                "rows": int(p.count + p.missing),
                "statistic": own,
                "statistic_without": without,
                "contribution": None if without is None else (full - without),
            }
        )
    ranked.sort(key=lambda d: -(d["contribution"] or 0.0))
    return ranked


def segment_drivers(
    ctx: CheckContext, column: str, method: str, ref: ColumnProfile
) -> dict[str, list[dict[str, Any]]]:
    """For each categorical feature marked ``segment``: its values ranked by how much of
    the column's drift they carry (leave-one-out on the window sample; hourly profiles do
    not cross columns)."""
    m = get_method(method)
    cfg = ctx.cfg
    seg_cols = [
        f.name
        for f in ctx.schema.features
        if f.segment and f.kind in ("categorical", "boolean") and f.name != column
    ]
    if not seg_cols or m.on_profiles is None:
        return {}
    on_profiles = m.on_profiles
    sample = ctx.env.logs.sample(
        ctx.model, ctx.start, ctx.end, [column, *seg_cols], ctx.sample_size
    )  # seed 0: the one sample a lake-fed model keeps (monitor/lake_mode.py)
    if sample.num_rows < cfg.min_rows:
        return {}
    if ref.kind == "numeric":
        values: Any = np.asarray(
            sample.column(column).to_numpy(zero_copy_only=False), dtype=np.float64
        )

        def prof(mask: npt.NDArray[Any]) -> ColumnProfile:
            return profile_numeric(values[mask], ref.bins)
    else:
        values = np.asarray(sample.column(column).cast("string").to_pylist(), dtype=object)

        def prof(mask: npt.NDArray[Any]) -> ColumnProfile:
            return profile_categorical(values[mask], ref.bins)

    def stat(mask: npt.NDArray[Any]) -> float | None:
        p = prof(mask)
        if p.count < cfg.min_rows:
            return None
        return float(on_profiles(ref, p).statistic)

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
