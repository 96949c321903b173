"""``data_quality``: per column and segment ``missing_rate``, ``missing_change`` and
``out_of_range`` (numeric) or ``new_categories`` (categorical) against the reference, followed by
the operational metrics of :mod:`.operational`."""

from __future__ import annotations

from detectors.quality import missing_rate, missing_rate_change, new_categories, out_of_range
from monitor.checks.base import Check, CheckContext, CheckEnv
from monitor.checks.common import num, plain
from monitor.checks.operational import operational_metrics
from monitor.checks.profiled import SegmentProfiles, profile_spec, profile_window
from monitor.checks.registry import register
from monitor.monitors import MonitorConfig
from storage.metadata.monitoring import MonitorRecord
from storage.profiles import ProfileSpec
from storage.types import MetricResult, ModelSchema

__all__ = ["QualityCheck"]


@register
class QualityCheck(Check):
    kinds = ("data_quality",)

    def profile_spec(
        self, env: CheckEnv, record: MonitorRecord, cfg: MonitorConfig, schema: ModelSchema
    ) -> ProfileSpec:
        return profile_spec(env, record, cfg, schema)

    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        window = profile_window(ctx)
        results: list[MetricResult] = []
        for seg in window.segments:
            results += _quality(ctx, seg)
        results += operational_metrics(ctx, window.current)
        return results, window.scanned


def _quality(ctx: CheckContext, sp: SegmentProfiles) -> list[MetricResult]:
    tenant, version = sp.segment
    refp, cur = sp.reference, sp.current
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
                    **ctx.base,
                    tenant_id=tenant,
                    model_version=version,
                    column=c,
                    metric=metric,
                    value=num(q.value),
                    threshold=q.threshold,
                    status=q.status,  # type: ignore[arg-type]
                    details=plain({**dict(q.details), "n": q.n}),
                )
            )
    return out
