"""``estimated_performance``: performance without labels on the window's bounded sample, per
segment: binary and multiclass CBPE (scores), regression DLE (features and prediction), fitted
on the monitor's labelled reference dataset once per reference version and schema."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.checks.base import Check, CheckContext
from monitor.checks.common import (
    feature_table,
    floats,
    no_data,
    num,
    plain,
    row_segments,
    score_matrix,
    strings,
)
from monitor.checks.registry import register
from monitor.monitors import dle_features
from storage.types import ALL, MetricResult

__all__ = ["EstimatedPerformanceCheck"]


@register
class EstimatedPerformanceCheck(Check):
    kinds = ("estimated_performance",)

    def evaluate(self, ctx: CheckContext) -> tuple[list[MetricResult], int]:
        from monitor.monitors import estimated_metrics

        cfg, schema, base, logs = ctx.cfg, ctx.schema, ctx.base, ctx.env.logs
        estimator, features, ref_name = _estimator(ctx)
        columns = [schema.prediction, *(features or schema.scores)]
        size = ctx.sample_size
        sample = logs.sample(ctx.model, ctx.start, ctx.end, columns, size)
        metrics = cfg.metrics or list(estimated_metrics(schema.task, defaults=True))
        method = "dle" if schema.task == "regression" else "cbpe"
        # fewer rows than asked for: the sample is the whole window
        whole = sample.num_rows < size
        out: list[MetricResult] = []
        segments = row_segments(cfg, sample) or [((ALL, ALL), np.zeros(0, bool))]
        for (t, v), mask in segments:
            if t != ALL and not whole:
                # a tenant gets a bounded sample of its own rows, not its share of the window's
                sub = logs.sample(ctx.model, ctx.start, ctx.end, columns, size, tenant_id=t)
            else:
                sub = sample.filter(mask) if mask.size else sample
            dropped = 0
            if schema.task == "multiclass":
                # a prediction that is no class (or none) cannot be placed in the confusion matrix
                classes = set(schema.classes)
                keep = np.array(
                    [p in classes for p in sub.column(schema.prediction).to_pylist()], dtype=bool
                )
                dropped = int((~keep).sum())
                sub = sub.filter(keep)
            n = sub.num_rows
            est = None
            if n >= cfg.min_rows:
                pred = sub.column(schema.prediction)
                if schema.task == "binary":
                    est = estimator.estimate(floats(sub.column(schema.scores[0])), floats(pred))
                elif schema.task == "multiclass":
                    est = estimator.estimate(score_matrix(sub, schema.scores), strings(pred))
                else:
                    est = estimator.estimate(feature_table(sub, schema, features), floats(pred))
            for m in metrics:
                details: dict[str, Any] = {
                    "n": n,
                    "estimated": True,
                    "method": method,
                    "reference": ref_name,
                }
                if dropped:
                    details["dropped_predictions"] = dropped
                if est is not None and "calibrated" in est.details:
                    details["calibrated"] = est.details["calibrated"]
                em = est[m] if est is not None else None
                if em is None or em.value is None:
                    details["reason"] = "too few rows" if n < cfg.min_rows else "not estimable"
                    out.append(no_data(base, t, v, m, plain(details)))
                    continue
                lo, hi = cfg.bounds.get(m, (None, None))
                outside = (lo is not None and em.value < lo) or (hi is not None and em.value > hi)
                details.update(
                    lower=em.lower,
                    upper=em.upper,
                    sampling_error=em.sampling_error,
                    estimator_error=em.estimator_error,
                    bounds=[lo, hi],
                )
                out.append(
                    MetricResult(
                        **base,
                        tenant_id=t,
                        model_version=v,
                        column="",
                        metric=m,
                        value=num(em.value),
                        threshold=lo if lo is not None else hi,
                        status="alert" if outside else "ok",
                        details=plain(details),
                    )
                )
        return out, 0


def _estimator(ctx: CheckContext) -> tuple[Any, tuple[str, ...], str]:
    """The estimator fitted on the monitor's labelled reference (CBPE for binary and
    multiclass, DLE for regression), the feature columns it reads, and the reference's
    ``name/version``. Fitted once per reference version and model schema, then cached."""
    cfg, schema, logs, model = ctx.cfg, ctx.schema, ctx.env.logs, ctx.model
    name_ = ctx.record.name
    ref = cfg.reference
    if ref is None or not ref.dataset:
        raise LookupError(
            f"estimated_performance monitor {name_!r}: the reference must be an "
            "uploaded dataset with a label column, not a range of the logs"
        )
    versions = [v for n, v, _ in logs.list_references(model) if n == ref.dataset]
    if not versions or (ref.version is not None and ref.version not in versions):
        raise KeyError(
            f"estimated_performance monitor {name_!r}: reference {ref.dataset!r}"
            + (f" version {ref.version}" if ref.version else "")
            + f" of model {model!r} not found"
        )
    version = ref.version or max(versions)
    name = f"{ref.dataset}/{version}"
    features = dle_features(schema) if schema.task == "regression" else ()
    calibration = cfg.calibration or "auto"
    key: tuple[Any, ...] = ("estimator", model, name, schema, calibration)
    dataset = ref.dataset

    def fit() -> Any:
        return _fit(ctx, dataset, version, name, features, calibration)

    return ctx.env.caches.fit(key, fit), features, name


def _fit(
    ctx: CheckContext,
    dataset: str,
    version: Any,
    name: str,
    features: tuple[str, ...],
    calibration: str,
) -> Any:
    from detectors.estimation import DLE, BinaryCBPE, MulticlassCBPE

    schema, model = ctx.schema, ctx.model
    what = (
        f"estimated_performance monitor {ctx.record.name!r}: reference {name!r} of model {model!r}"
    )
    if schema.task == "regression":
        if not features:
            raise LookupError(f"{what}: DLE needs the model's non-text features; it has none")
        needed = [schema.prediction, *features]
        why = "DLE learns the error from the features and the prediction"
    else:
        if not schema.scores:
            raise LookupError(f"{what}: CBPE needs the model's score columns; it has none")
        needed = [schema.prediction, *schema.scores]
        why = "CBPE calibrates the scores against the labels"
    table = ctx.env.logs.read_reference(model, dataset, version)
    if "label" not in table.column_names:
        raise LookupError(
            f"{what} has no 'label' column: the estimator is fitted on a labelled reference "
            f"(upload one with a label column); it has {sorted(table.column_names)}"
        )
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise LookupError(
            f"{what} has no column {', '.join(map(repr, missing))} ({why}); "
            f"it has {sorted(table.column_names)}"
        )
    table = table.filter(table.column("label").is_valid())
    if table.num_rows == 0:
        raise LookupError(f"{what}: every value of its 'label' column is missing")
    pred = table.column(schema.prediction)
    if schema.task == "binary":
        return BinaryCBPE(calibration=calibration).fit(
            floats(table.column(schema.scores[0])), floats(table.column("label")), floats(pred)
        )
    if schema.task == "multiclass":
        if len(schema.classes) != len(schema.scores):
            raise LookupError(
                f"{what}: model {model!r} has {len(schema.scores)} score columns for "
                f"{len(schema.classes)} classes; CBPE needs one score per class"
            )
        table = table.filter(pred.is_valid())
        return MulticlassCBPE(schema.classes, calibration=calibration).fit(
            score_matrix(table, schema.scores),
            strings(table.column("label")),
            strings(table.column(schema.prediction)),
        )
    return DLE().fit(
        feature_table(table, schema, features), floats(pred), floats(table.column("label"))
    )
