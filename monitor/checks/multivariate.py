"""``multivariate_drift``: a domain classifier told apart the reference and the window's bounded
sample (``domain_classifier_auc``) per segment; the classifier's reference side is fitted once
per reference and cached. A segment with fewer than ``min_rows`` rows is ``no_data``."""

from __future__ import annotations

import numpy as np

from monitor.checks.base import Check, CheckContext
from monitor.checks.common import floats, no_data, num, plain, row_segments
from monitor.checks.registry import register
from monitor.monitors import monitored_columns
from storage.types import ALL, MetricResult

__all__ = ["MultivariateCheck"]


@register
class MultivariateCheck(Check):
    kinds = ("multivariate_drift",)

    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        from detectors.multivariate import DomainClassifier

        cfg, env = ctx.cfg, ctx.env
        cols = monitored_columns(cfg, ctx.schema)
        ref = env.caches.reference(env.logs, ctx.model, cfg, ctx.schema)
        size = ctx.sample_size
        categorical = [c for c, k in cols.items() if k == "categorical"]
        ref_table = {c: ref.table[c][:size] for c in cols if c in ref.table}
        key = ("domain", ctx.model, repr(cfg.reference), tuple(ref_table))
        clf = env.caches.fit(
            key,
            lambda: DomainClassifier(categorical=categorical, max_samples=size).fit(ref_table),
        )
        sample = env.logs.sample(ctx.model, ctx.start, ctx.end, list(ref_table), size)
        out: list[MetricResult] = []
        segments = row_segments(cfg, sample) or [((ALL, ALL), np.zeros(0, bool))]
        for (t, v), mask in segments:
            sub = sample.filter(mask) if mask.size else sample
            if sub.num_rows < cfg.min_rows:
                details = {"n_current": sub.num_rows, "reason": "too few rows"}
                out.append(no_data(ctx.base, t, v, "domain_classifier_auc", details))
                continue
            cur = {
                c: (
                    np.asarray(sub.column(c).to_pylist(), dtype=object)
                    if c in categorical
                    else floats(sub.column(c))
                )
                for c in ref_table
            }
            r = clf.score(cur)
            status = "no_data" if r.drifted is None else ("alert" if r.drifted else "ok")
            out.append(
                MetricResult(
                    **ctx.base,
                    tenant_id=t,
                    model_version=v,
                    column="",
                    metric="domain_classifier_auc",
                    value=num(r.statistic),
                    threshold=r.threshold,
                    status=status,  # type: ignore[arg-type]
                    details=plain({**r.details, "n_current": r.n_current}),
                )
            )
        return out, 0
