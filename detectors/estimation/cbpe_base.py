"""What both CBPE estimators (:class:`~detectors.estimation.cbpe.BinaryCBPE`,
:class:`~detectors.estimation.cbpe_multiclass.MulticlassCBPE`) share: their settings, the
sampling errors fitted on the reference, and the bands of an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from detectors.errors import NotFittedError
from detectors.estimation.result import EstimatedMetric
from detectors.estimation.sampling import SamplingErrors, band

__all__ = ["CbpeBase"]


class CbpeBase:
    """Settings, fitted sampling errors and bands of a CBPE estimator (a base class; each
    estimator checks its parameters before calling ``__init__``)."""

    def __init__(
        self,
        *,
        band_width: float,
        calibration: str,
        n_bootstrap: int,
        n_splits: int,
        min_reference: int,
        random_state: int,
    ) -> None:
        self.band_width = float(band_width)
        self.calibration = calibration
        self.n_bootstrap = n_bootstrap
        self.n_splits = n_splits
        self.min_reference = min_reference
        self.random_state = random_state
        self._fit_scale = 0.0
        self._errors: SamplingErrors | None = None
        self._n_reference = 0

    def _fitted_errors(self) -> SamplingErrors:
        if self._errors is None:
            raise NotFittedError(type(self).__name__)
        return self._errors

    def sampling_error(self, name: str, n: int) -> float | None:
        """Standard error of the realized metric ``name`` on a window of ``n`` rows."""
        return self._fitted_errors().at(name, n)

    def _bands(
        self,
        names: Sequence[str],
        values: Mapping[str, float | None],
        fit: Mapping[str, float],
        n: int,
    ) -> dict[str, EstimatedMetric]:
        """Each metric of ``names``: its estimate with the band of a window of ``n`` rows."""
        return {
            name: band(name, values[name], self.sampling_error(name, n), fit[name], self.band_width)
            for name in names
        }
