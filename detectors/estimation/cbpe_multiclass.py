"""CBPE for a multiclass classifier (:class:`MulticlassCBPE`); the method, its band and its
assumptions are described in :mod:`detectors.estimation.cbpe`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.errors import InvalidParameterError
from detectors.estimation.calibration import (
    calibrator_for,
    check_calibration,
    estimated_auc,
    fit_isotonic,
    predict_isotonic,
)
from detectors.estimation.cbpe_base import CbpeBase
from detectors.estimation.result import EstimationResult, ExpectedConfusionMatrix
from detectors.estimation.sampling import (
    FIT_BOOTSTRAP,
    FIT_SIZE,
    SamplingErrors,
    div,
    fit_error,
    mean_or_none,
    validate_common,
)
from detectors.performance import roc_auc

if TYPE_CHECKING:  # sklearn loads at the first fit: it was most of the API's import time
    from sklearn.isotonic import IsotonicRegression

__all__ = ["MULTICLASS_ESTIMATED_METRICS", "MulticlassCBPE", "from_confusion"]

MULTICLASS_ESTIMATED_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_weighted",
    "roc_auc_macro",
)

_FloatArray = NDArray[np.float64]


def _multiclass_realized(
    y: NDArray[np.intp], yhat: NDArray[np.intp], s: _FloatArray
) -> dict[str, float | None]:
    k = s.shape[1]
    n = y.size
    confusion = np.bincount(y * k + yhat, minlength=k * k).reshape(k, k).astype(np.float64)
    return from_confusion(confusion, n) | {
        "roc_auc_macro": mean_or_none([roc_auc(y == c, s[:, c]) for c in range(k)])
    }


def from_confusion(confusion: _FloatArray, n: int) -> dict[str, float | None]:
    """Accuracy and per-class-averaged metrics from a (possibly expected) confusion matrix."""
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    # classes absent from both truth and predictions carry no information: leave them out
    present = (support + predicted) > 0
    precision = [div(t, p) for t, p in zip(tp[present], predicted[present], strict=True)]
    recall = [div(t, s) for t, s in zip(tp[present], support[present], strict=True)]
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return {
        "accuracy": div(float(tp.sum()), n),
        "precision_macro": mean_or_none(precision),
        "recall_macro": mean_or_none(recall),
        "f1_macro": float(f1.mean()) if f1.size else None,
        "f1_weighted": div(float(np.sum(f1 * support[present])), n),
    }


class MulticlassCBPE(CbpeBase):
    """CBPE for a multiclass classifier.

    Each class's probability is calibrated one-vs-rest (isotonic, when it helps) and the rows
    renormalised to sum to one, as NannyML does.

    Parameters
    ----------
    classes
        The class labels, in the order of the score columns.
    band_width, calibration, n_bootstrap, n_splits, min_reference, random_state
        As for :class:`BinaryCBPE`.
    """

    task = "multiclass"

    def __init__(
        self,
        classes: Sequence[Any],
        *,
        band_width: float = 3.0,
        calibration: str = "auto",
        n_bootstrap: int = 100,
        n_splits: int = 5,
        min_reference: int = 100,
        random_state: int = 0,
    ) -> None:
        validate_common(band_width, n_bootstrap, min_reference)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise InvalidParameterError("classes", list(classes), "at least 2 distinct labels")
        check_calibration(calibration)
        self.classes = tuple(classes)
        super().__init__(
            band_width=band_width,
            calibration=calibration,
            n_bootstrap=n_bootstrap,
            n_splits=n_splits,
            min_reference=min_reference,
            random_state=random_state,
        )
        self._calibrators: list[IsotonicRegression | None] = []
        self._fit_calibrators: list[list[IsotonicRegression | None]] = []

    def _codes(self, name: str, values: ArrayLike) -> NDArray[np.intp]:
        arr = np.asarray(values).ravel()
        if arr.size == 0:
            return np.zeros(0, dtype=np.intp)
        # map the distinct values once, not every row through a dict
        uniques, inverse = np.unique(arr, return_inverse=True)
        lookup = {c: i for i, c in enumerate(self.classes)}
        unknown = [u for u in uniques.tolist() if u not in lookup]
        if unknown:
            raise InvalidParameterError(
                name, unknown[0], f"one of the classes {list(self.classes)}"
            )
        mapped = np.array([lookup[u] for u in uniques.tolist()], dtype=np.intp)
        out: NDArray[np.intp] = mapped[inverse.ravel()]
        return out

    def _scores(self, scores: ArrayLike) -> _FloatArray:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != len(self.classes):
            raise InvalidParameterError(
                "scores shape", s.shape, f"(n, {len(self.classes)}), one column per class"
            )
        if s.size and (np.nanmin(s) < 0 or np.nanmax(s) > 1):
            raise InvalidParameterError("scores", "outside [0, 1]", "probabilities in [0, 1]")
        return s

    def fit(
        self,
        reference_scores: ArrayLike,
        reference_labels: ArrayLike,
        reference_predictions: ArrayLike,
    ) -> Self:
        """Calibrate per class on the reference and estimate sampling errors.

        Parameters
        ----------
        reference_scores
            ``(n, k)`` class probabilities, columns in the order of ``classes``.
        reference_labels
            True class labels.
        reference_predictions
            Predicted class labels.

        Returns
        -------
        MulticlassCBPE
            ``self``, fitted.
        """
        s = self._scores(reference_scores)
        y = self._codes("reference_labels", reference_labels)
        yhat = self._codes("reference_predictions", reference_predictions)
        if not s.shape[0] == y.size == yhat.size:
            sizes = {"scores": s.shape[0], "labels": y.size, "predictions": yhat.size}
            raise InvalidParameterError("lengths", sizes, "arrays of equal length")
        keep = ~np.isnan(s).any(axis=1)
        s, y, yhat = s[keep], y[keep], yhat[keep]
        if y.size < self.min_reference:
            raise InvalidParameterError(
                "reference rows", y.size, f"at least {self.min_reference} labelled rows"
            )
        self._calibrators = []
        for c in range(len(self.classes)):
            yc = y == c
            one_class = yc.all() or not yc.any()
            self._calibrators.append(
                None
                if one_class
                else calibrator_for(self.calibration, yc, s[:, c], self.n_splits, self.random_state)
            )
        rng = np.random.default_rng(self.random_state)
        self._fit_calibrators, self._fit_scale = [], 0.0
        if any(c is not None for c in self._calibrators):
            m = min(y.size, FIT_SIZE)
            for _ in range(FIT_BOOTSTRAP):
                idx = rng.integers(0, y.size, m)
                self._fit_calibrators.append(
                    [
                        None
                        if c is None or (y[idx] == k).all() or not (y[idx] == k).any()
                        else fit_isotonic(s[idx, k], y[idx] == k)
                        for k, c in enumerate(self._calibrators)
                    ]
                )
            self._fit_scale = float(np.sqrt(m / y.size))
        self._errors = SamplingErrors.bootstrap(
            lambda idx: _multiclass_realized(y[idx], yhat[idx], s[idx]),
            MULTICLASS_ESTIMATED_METRICS,
            y.size,
            self.n_bootstrap,
            rng,
        )
        self._n_reference = int(y.size)
        return self

    @property
    def calibrated(self) -> tuple[bool, ...]:
        """Per class, whether its probabilities got a calibrator."""
        return tuple(c is not None for c in self._calibrators)

    def calibrate(
        self, scores: ArrayLike, calibrators: Sequence[IsotonicRegression | None] | None = None
    ) -> _FloatArray:
        """Calibrated class probabilities (rows sum to one)."""
        s = self._scores(scores).copy()
        for c, iso in enumerate(self._calibrators if calibrators is None else calibrators):
            if iso is not None:
                s[:, c] = predict_isotonic(iso, s[:, c])
        totals = s.sum(axis=1, keepdims=True)
        # a row calibrated to all zeros keeps its raw scores rather than dividing by zero
        raw = self._scores(scores)
        return np.where(totals > 0, s / np.where(totals > 0, totals, 1.0), raw)

    def estimate(
        self, current_scores: ArrayLike, current_predictions: ArrayLike | None = None
    ) -> EstimationResult:
        """Estimate the metrics of a window without labels.

        Parameters
        ----------
        current_scores
            ``(n, k)`` class probabilities.
        current_predictions
            Predicted class labels; the arg-max class when omitted.

        Returns
        -------
        EstimationResult
            Metrics of ``MULTICLASS_ESTIMATED_METRICS`` with bands and the
            :class:`ExpectedConfusionMatrix`.
        """
        self._fitted_errors()
        s = self._scores(current_scores)
        if current_predictions is None:
            yhat = (
                np.argmax(np.nan_to_num(s, nan=-1.0), axis=1)
                if s.shape[0]
                else np.zeros(0, np.intp)
            )
        else:
            yhat = self._codes("current_predictions", current_predictions)
            if yhat.size != s.shape[0]:
                sizes = {"scores": s.shape[0], "predictions": yhat.size}
                raise InvalidParameterError("lengths", sizes, "arrays of equal length")
        keep = ~np.isnan(s).any(axis=1)
        s, yhat = s[keep], yhat[keep]
        n = int(yhat.size)
        k = len(self.classes)
        p = self.calibrate(s) if n else s
        # expected[i, j] = Σ over rows predicted j of P(true class i)
        predicted = np.zeros((n, k))
        predicted[np.arange(n), yhat] = 1.0

        def estimates(p: _FloatArray) -> tuple[dict[str, float | None], _FloatArray]:
            expected = p.T @ predicted
            values = (
                from_confusion(expected, n) if n else dict.fromkeys(MULTICLASS_ESTIMATED_METRICS)
            )
            values["roc_auc_macro"] = (
                mean_or_none([estimated_auc(s[:, c], p[:, c]) for c in range(k)]) if n else None
            )
            return values, expected

        values, expected = estimates(p)
        replicas = [
            estimates(self.calibrate(s, cals))[0] for cals in (self._fit_calibrators if n else [])
        ]
        fit = fit_error(values, replicas, self._fit_scale)
        metrics = self._bands(MULTICLASS_ESTIMATED_METRICS, values, fit, n)
        confusion = ExpectedConfusionMatrix(
            self.classes, tuple(tuple(float(v) for v in row) for row in expected)
        )
        return EstimationResult(
            "cbpe",
            "multiclass",
            n,
            metrics,
            confusion,
            {"calibrated": self.calibrated, "n_reference": self._n_reference},
        )
