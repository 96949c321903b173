"""``feature_drift`` and ``prediction_drift``: each column's drift per segment (methods on
profiles, or on bounded samples), the segment's ``drift_share``, and for drifted columns of all
tenants the tenants and segment values that carry the drift (:mod:`.attribution`)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from detectors.drift import default_method_for_profile, get_method, run_drift
from detectors.drift.run import detect
from detectors.profiles import ColumnProfile
from detectors.result import DetectorResult
from monitor.checks.attribution import segment_drivers, tenant_drivers
from monitor.checks.base import Check, CheckContext, CheckEnv
from monitor.checks.caches import Reference
from monitor.checks.common import num, plain
from monitor.checks.profiled import SegmentProfiles, Segments, profile_spec, profile_window
from monitor.checks.registry import register
from monitor.monitors import MonitorConfig
from storage.metadata.monitoring import MonitorRecord
from storage.profiles import ProfileSpec
from storage.types import ALL, MetricResult, ModelSchema, Status

__all__ = ["DriftCheck"]


@register
class DriftCheck(Check):
    kinds = ("feature_drift", "prediction_drift")

    def profile_spec(
        self, env: CheckEnv, record: MonitorRecord, cfg: MonitorConfig, schema: ModelSchema
    ) -> ProfileSpec:
        return profile_spec(env, record, cfg, schema)

    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        window = profile_window(ctx)
        results: list[MetricResult] = []
        for seg in window.segments:
            results += _drift(ctx, seg, window.raw, window.reference)
        return results, window.scanned


def _methods(
    cfg: MonitorConfig, refp: dict[str, ColumnProfile]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Methods per column: those that run on profiles, those that need samples."""
    methods = cfg.methods
    on_profiles: dict[str, list[str]] = {}
    on_samples: dict[str, list[str]] = {}
    for c, rp in refp.items():
        chosen: list[str]
        if isinstance(methods, dict) and c in methods:
            given = methods[c]
            chosen = [given] if isinstance(given, str) else list(given)
        elif isinstance(methods, list):
            chosen = [m for m in methods if rp.kind in get_method(m).kinds]
        else:
            chosen = [default_method_for_profile(rp)]
        for m in chosen:
            target = on_profiles if get_method(m).works_on_profiles else on_samples
            target.setdefault(c, []).append(m)
    return on_profiles, on_samples


def _drift(
    ctx: CheckContext, sp: SegmentProfiles, segs: Segments, ref: Reference
) -> list[MetricResult]:
    cfg, base = ctx.cfg, ctx.base
    tenant, version = sp.segment
    refp, cur = sp.reference, sp.current
    profile_methods, sample_methods = _methods(cfg, refp)
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
        drift.setdefault(c, []).extend(_sample_drift(ctx, c, ms, ref, tenant))
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
            status: Status = "no_data" if r.drifted is None else ("alert" if r.drifted else "ok")
            judged += r.drifted is not None
            drifted += bool(r.drifted)
            if r.drifted and c not in drifted_columns:
                drifted_columns.append(c)
            details = plain(
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
                details["drivers"] = tenant_drivers(c, r.method, refp[c], segs)
                by_value = segment_drivers(ctx, c, r.method, refp[c])
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
                    value=num(value),
                    threshold=r.threshold,
                    status=status,
                    details=details,
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


def _sample_drift(
    ctx: CheckContext, column: str, methods: list[str], ref: Reference, tenant: str
) -> list[DetectorResult]:
    size = ctx.sample_size
    start: datetime = ctx.start
    sample = ctx.env.logs.sample(
        ctx.model, start, ctx.end, [column], size, tenant_id=None if tenant == ALL else tenant
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
    cfg = ctx.cfg
    return [
        detect(m, rv, cur_values, kind=kind, threshold=cfg.thresholds.get(m), alpha=cfg.alpha)
        for m in methods
    ]
