"""Performance estimation without labels: CBPE (classification) and DLE (regression).

Each estimator is fitted on a labelled reference (``fit(...) -> Self``) and then estimates a
window's metrics with a sampling-error band (``estimate(...) -> EstimationResult``).
"""

from __future__ import annotations

from detectors.estimation.cbpe import BinaryCBPE, MulticlassCBPE
from detectors.estimation.dle import DLE
from detectors.estimation.result import (
    EstimatedMetric,
    EstimationResult,
    ExpectedConfusion,
    ExpectedConfusionMatrix,
    MetricComparison,
    compare_realized,
)

__all__ = [
    "DLE",
    "BinaryCBPE",
    "EstimatedMetric",
    "EstimationResult",
    "ExpectedConfusion",
    "ExpectedConfusionMatrix",
    "MetricComparison",
    "MulticlassCBPE",
    "compare_realized",
]
