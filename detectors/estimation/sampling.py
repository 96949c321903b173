"""What CBPE's estimators share (:mod:`detectors.estimation.cbpe`): the sampling error of a
realized metric, bootstrapped on the reference, and the band around an estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors.errors import InvalidParameterError
from detectors.estimation.result import EstimatedMetric

__all__ = [
    "BOOTSTRAP_SIZE",
    "FIT_BOOTSTRAP",
    "FIT_SIZE",
    "SamplingErrors",
    "band",
    "div",
    "fit_error",
    "mean_or_none",
    "validate_common",
]

# Bootstrap resamples are drawn at most this large: the standard error scales as 1/√n, so the
# spread at this size, scaled by √(size / n), serves any window while fit stays fast on
# multi-million-row references.
BOOTSTRAP_SIZE = 20_000

# The estimator's own error: calibrators refitted on this many bootstrap resamples of the
# reference (at most FIT_SIZE rows each; the spread is scaled to the reference's size).
FIT_BOOTSTRAP = 20
FIT_SIZE = 50_000


def div(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def mean_or_none(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def validate_common(band_width: float, n_bootstrap: int, min_reference: int) -> None:
    if not band_width > 0:
        raise InvalidParameterError("band_width", band_width, "a number > 0")
    if n_bootstrap < 10:
        raise InvalidParameterError("n_bootstrap", n_bootstrap, "an integer >= 10")
    if min_reference < 10:
        raise InvalidParameterError("min_reference", min_reference, "an integer >= 10")


@dataclass(frozen=True)
class SamplingErrors:
    """Standard errors of the realized metrics on bootstrap resamples of the reference, each of
    ``size`` rows (``None``: fewer than two resamples gave a value)."""

    se: dict[str, float | None]
    size: int

    @classmethod
    def bootstrap(
        cls,
        realized: Callable[[NDArray[np.intp]], dict[str, float | None]],
        names: Sequence[str],
        n_rows: int,
        n_bootstrap: int,
        rng: np.random.Generator,
    ) -> SamplingErrors:
        """``realized(rows)`` (metric -> value of those reference rows) on ``n_bootstrap``
        resamples of at most ``BOOTSTRAP_SIZE`` of the ``n_rows`` rows."""
        samples: dict[str, list[float]] = {m: [] for m in names}
        size = min(n_rows, BOOTSTRAP_SIZE)
        for _ in range(n_bootstrap):
            idx = rng.integers(0, n_rows, size)
            for name, value in realized(idx).items():
                if value is not None:
                    samples[name].append(value)
        se = {
            name: float(np.std(v, ddof=1)) if len(v) >= 2 else None for name, v in samples.items()
        }
        return cls(se, size)

    def at(self, name: str, n: int) -> float | None:
        """Standard error of the realized metric ``name`` on a window of ``n`` rows."""
        se = self.se[name]
        if se is None or n <= 0:
            return None
        return se * float(np.sqrt(self.size / n))


def fit_error(
    values: dict[str, float | None], replicas: list[dict[str, float | None]], scale: float
) -> dict[str, float]:
    """Per metric, the standard deviation of the estimate over the refitted calibrators."""
    out = {}
    for name in values:
        v = [x for r in replicas if (x := r.get(name)) is not None]
        out[name] = float(np.std(v, ddof=1)) * scale if len(v) >= 2 else 0.0
    return out


def band(
    name: str, value: float | None, se: float | None, fit: float, width: float
) -> EstimatedMetric:
    """``value ± width · √(se² + fit²)``: sampling noise of the realized metric and the
    estimator's own error, clipped to [0, 1]."""
    if value is None or se is None:
        return EstimatedMetric(name, value, se, None, None, fit)
    total = float(np.hypot(se, fit))
    return EstimatedMetric(
        name, value, se, max(0.0, value - width * total), min(1.0, value + width * total), fit
    )
