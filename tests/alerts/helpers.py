"""Builders shared by the alerting tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storage.types import MetricResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def result(
    hour: int,
    status: str = "alert",
    *,
    value: float | None = 0.5,
    threshold: float | None = 0.2,
    tenant: str = "acme",
    model: str | None = "churn",
    monitor: str = "drift",
    kind: str = "feature_drift",
    metric: str = "psi",
    column: str = "age",
    source: str = "monitor",
    details: dict[str, Any] | None = None,
) -> MetricResult:
    start = T0 + timedelta(hours=hour)
    return MetricResult(
        source=source,  # type: ignore[arg-type]
        source_name=monitor,
        kind=kind,
        model=model,
        window_start=start,
        window_end=start + timedelta(hours=1),
        tenant_id=tenant,
        model_version="*",
        column=column,
        metric=metric,
        value=value,
        threshold=threshold,
        status=status,  # type: ignore[arg-type]
        details=details or {},
    )
