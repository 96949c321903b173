"""Results of performance estimation without labels (CBPE, DLE) and their comparison."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from detectors.errors import UnknownNameError

__all__ = [
    "EstimatedMetric",
    "EstimationResult",
    "ExpectedConfusion",
    "ExpectedConfusionMatrix",
    "MetricComparison",
    "compare_realized",
]


@dataclass(frozen=True)
class EstimatedMetric:
    """One estimated metric with its band (sampling error and estimator error).

    Attributes
    ----------
    name
        Metric name, e.g. ``"accuracy"``.
    value
        The estimate; ``None`` when it is undefined on this window (``no_data``).
    sampling_error
        Standard error of the *realized* metric on a window of this size, estimated from the
        reference; the band is ``value ± band_width · sampling_error``.
    lower, upper
        The band, clipped to the metric's range: ``value ± band_width · √(sampling_error² +
        estimator_error²)``.
    estimator_error
        Standard error of the estimate itself from fitting the estimator on a finite reference
        (CBPE: calibrators refitted on bootstrap resamples; DLE: a delete-a-group jackknife of
        the loss models), on this window.
    """

    name: str
    value: float | None
    sampling_error: float | None
    lower: float | None
    upper: float | None
    estimator_error: float = 0.0

    @property
    def no_data(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class ExpectedConfusion:
    """Expected counts of a binary confusion matrix (sums of calibrated probabilities).

    ``tp + fp + tn + fn`` equals the window's row count; the values are expectations, hence
    floats. Multiplied by a value per outcome they give the expected business value.
    """

    tp: float
    fp: float
    tn: float
    fn: float

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.tn + self.fn


@dataclass(frozen=True)
class ExpectedConfusionMatrix:
    """Expected multiclass confusion matrix: ``matrix[i][j]`` = expected rows of true class
    ``classes[i]`` predicted as ``classes[j]``."""

    classes: tuple[Any, ...]
    matrix: tuple[tuple[float, ...], ...]

    def one_vs_rest(self, cls: Any) -> ExpectedConfusion:
        """The binary expected confusion of ``cls`` against all other classes."""
        if cls not in self.classes:
            raise UnknownNameError("class", cls, [str(c) for c in self.classes])
        k = self.classes.index(cls)
        total = sum(map(sum, self.matrix))
        tp = self.matrix[k][k]
        fn = sum(self.matrix[k]) - tp
        fp = sum(row[k] for row in self.matrix) - tp
        return ExpectedConfusion(tp=tp, fp=fp, tn=total - tp - fn - fp, fn=fn)


@dataclass(frozen=True)
class EstimationResult:
    """Estimated performance of one window.

    Attributes
    ----------
    method
        ``"cbpe"`` or ``"dle"``.
    task
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    n
        Rows in the window.
    metrics
        Metric name → :class:`EstimatedMetric`.
    confusion
        Expected confusion (CBPE only).
    details
        E.g. whether the reference needed calibration.
    """

    method: str
    task: str
    n: int
    metrics: Mapping[str, EstimatedMetric]
    confusion: ExpectedConfusion | ExpectedConfusionMatrix | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> EstimatedMetric:
        try:
            return self.metrics[name]
        except KeyError:
            raise UnknownNameError(f"estimated {self.task} metric", name, self.metrics) from None

    @property
    def no_data(self) -> bool:
        return self.n == 0


@dataclass(frozen=True)
class MetricComparison:
    """Realized vs estimated value of one metric.

    ``within_band`` is ``None`` when either side is undefined.
    """

    name: str
    estimated: float | None
    realized: float | None
    lower: float | None
    upper: float | None

    @property
    def difference(self) -> float | None:
        """``realized − estimated``."""
        if self.estimated is None or self.realized is None:
            return None
        return self.realized - self.estimated

    @property
    def within_band(self) -> bool | None:
        if self.realized is None or self.lower is None or self.upper is None:
            return None
        return bool(self.lower <= self.realized <= self.upper)


class _HasMetrics(Protocol):
    @property
    def metrics(self) -> Mapping[str, float | None]: ...


def compare_realized(
    estimated: EstimationResult, realized: Mapping[str, float | None] | _HasMetrics
) -> dict[str, MetricComparison]:
    """Compare an estimate with the realized metrics of the same window, once labels arrived.

    Parameters
    ----------
    estimated
        The estimate made without labels.
    realized
        A :class:`~detectors.performance.PerformanceResult` or a mapping name → value.

    Returns
    -------
    dict
        One :class:`MetricComparison` per metric present in both.
    """
    values = realized if isinstance(realized, Mapping) else realized.metrics
    return {
        name: MetricComparison(name, m.value, values[name], m.lower, m.upper)
        for name, m in estimated.metrics.items()
        if name in values
    }
