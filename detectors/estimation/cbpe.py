"""Confidence-based performance estimation (CBPE) for binary and multiclass classifiers.

Without labels, a *calibrated* probability ``p`` says a prediction is right with probability
``p``: summing probabilities gives the expected confusion matrix of a window, and from it the
expected accuracy, precision, recall and F1; ROC AUC is estimated from the score ranking with
calibrated probabilities as expected positives (NannyML's algorithm, see References).

The model's own scores are calibrated on the reference (which has labels) with isotonic
regression (``calibration="auto"``, the default), unless cross-validation on the reference
shows the calibrated scores are worse than the raw ones beyond noise (see
:func:`_fit_calibrator` for why this differs from NannyML's ECE comparison);
``"isotonic"`` always calibrates and ``"none"`` trusts the scores.

The band of each metric is ``estimate ± band_width · √(SE(n)² + fit²)``: ``SE(n)`` is the
standard error of the *realized* metric on a window of ``n`` rows (bootstrapped on the
reference at its own size ``N`` and scaled by ``√(N / n)``), ``fit`` the estimator's own error
on this window: the spread of the estimate when the calibrator is refitted on 20 bootstrap
resamples of the reference. It grows where the window's scores fall in regions the reference
covers thinly, as under covariate shift; without a calibrator it is 0.

CBPE assumes the relation between scores and correctness (``P(y | score)``) is the one seen in
the reference: it follows covariate shift, not concept drift.

References
----------
NannyML, "Confidence-based Performance Estimation (CBPE)", how-it-works documentation, and
``nannyml/performance_estimation/confidence_based/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.errors import InvalidParameterError
from detectors.estimation.calibration import (
    calibrator_for,
    check_calibration,
    estimated_auc,
    fit_isotonic,
    predict_isotonic,
    score_ranks,
)
from detectors.estimation.cbpe_base import CbpeBase
from detectors.estimation.cbpe_multiclass import MULTICLASS_ESTIMATED_METRICS, MulticlassCBPE
from detectors.estimation.result import EstimationResult, ExpectedConfusion
from detectors.estimation.sampling import (
    FIT_BOOTSTRAP,
    FIT_SIZE,
    SamplingErrors,
    div,
    fit_error,
    validate_common,
)
from detectors.performance import roc_auc

if TYPE_CHECKING:  # sklearn loads at the first fit: it was most of the API's import time
    from sklearn.isotonic import IsotonicRegression


__all__ = [
    "BINARY_ESTIMATED_METRICS",
    "MULTICLASS_ESTIMATED_METRICS",
    "BinaryCBPE",
    "MulticlassCBPE",
]

BINARY_ESTIMATED_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc")

_FloatArray = NDArray[np.float64]


def _binary_realized(
    y: NDArray[np.bool_], yhat: NDArray[np.bool_], s: _FloatArray
) -> dict[str, float | None]:
    tp = float(np.sum(y & yhat))
    fp = float(np.sum(~y & yhat))
    fn = float(np.sum(y & ~yhat))
    n = y.size
    return {
        "accuracy": div(n - fp - fn, n),
        "precision": div(tp, tp + fp),
        "recall": div(tp, tp + fn),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(y, s),
    }


class BinaryCBPE(CbpeBase):
    """CBPE for a binary classifier.

    Parameters
    ----------
    band_width
        Half-width of the band in standard errors (NannyML uses 3).
    calibration
        ``"auto"`` (isotonic unless cross-validation shows it worse beyond noise),
        ``"isotonic"`` (always) or ``"none"`` (trust the scores).
    n_bootstrap
        Bootstrap resamples of the reference used to estimate the sampling errors (each of
        ``min(N, 20,000)`` rows).
    n_splits
        Folds of the calibration check.
    min_reference
        Fewest reference rows accepted by :meth:`fit`.
    random_state
        Seed of the bootstrap and the folds.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(2, 2, 5_000)
    >>> y = (rng.random(5_000) < p).astype(int)
    >>> cbpe = BinaryCBPE().fit(p, y, (p >= 0.5).astype(int))
    >>> q = rng.beta(2, 2, 1_000)
    >>> est = cbpe.estimate(q, (q >= 0.5).astype(int))
    >>> round(est["accuracy"].value, 2)
    0.69
    """

    task = "binary"

    def __init__(
        self,
        *,
        band_width: float = 3.0,
        calibration: str = "auto",
        n_bootstrap: int = 100,
        n_splits: int = 5,
        min_reference: int = 100,
        random_state: int = 0,
    ) -> None:
        validate_common(band_width, n_bootstrap, min_reference)
        check_calibration(calibration)
        if n_splits < 2:
            raise InvalidParameterError("n_splits", n_splits, "an integer >= 2")
        super().__init__(
            band_width=band_width,
            calibration=calibration,
            n_bootstrap=n_bootstrap,
            n_splits=n_splits,
            min_reference=min_reference,
            random_state=random_state,
        )
        self._calibrator: IsotonicRegression | None = None
        self._fit_calibrators: list[IsotonicRegression] = []

    @staticmethod
    def _arrays(
        scores: ArrayLike, predictions: ArrayLike | None, labels: ArrayLike | None = None
    ) -> tuple[_FloatArray, NDArray[np.bool_], NDArray[np.bool_] | None]:
        s = np.asarray(scores, dtype=np.float64).ravel()
        yhat = (
            (s >= 0.5).astype(np.float64)
            if predictions is None
            else np.asarray(predictions, dtype=np.float64).ravel()
        )
        y = None if labels is None else np.asarray(labels, dtype=np.float64).ravel()
        sizes = {"scores": s.size, "predictions": yhat.size}
        if y is not None:
            sizes["labels"] = y.size
        if len(set(sizes.values())) > 1:
            raise InvalidParameterError("lengths", sizes, "arrays of equal length")
        keep = ~np.isnan(s) & ~np.isnan(yhat)
        if y is not None:
            keep &= ~np.isnan(y)
        s, yhat = s[keep], yhat[keep]
        if s.size and (s.min() < 0 or s.max() > 1):
            raise InvalidParameterError("scores", (s.min(), s.max()), "probabilities in [0, 1]")
        for name, a in (("predictions", yhat), ("labels", None if y is None else y[keep])):
            if a is not None and not np.isin(a, (0.0, 1.0)).all():
                raise InvalidParameterError(name, np.unique(a)[:5].tolist(), "values 0/1")
        return s, yhat.astype(bool), None if y is None else y[keep].astype(bool)

    def fit(
        self,
        reference_scores: ArrayLike,
        reference_labels: ArrayLike,
        reference_predictions: ArrayLike,
    ) -> Self:
        """Calibrate on the reference and estimate the metrics' sampling errors.

        Parameters
        ----------
        reference_scores
            Positive-class probabilities of the reference.
        reference_labels
            True labels (0/1) of the reference.
        reference_predictions
            Predicted labels (0/1) of the reference.

        Returns
        -------
        BinaryCBPE
            ``self``, fitted.
        """
        s, yhat, y = self._arrays(reference_scores, reference_predictions, reference_labels)
        assert y is not None
        if s.size < self.min_reference:
            raise InvalidParameterError(
                "reference rows", s.size, f"at least {self.min_reference} labelled rows"
            )
        if y.all() or not y.any():
            raise InvalidParameterError("reference_labels", "one class", "both classes present")
        self._calibrator = calibrator_for(self.calibration, y, s, self.n_splits, self.random_state)
        rng = np.random.default_rng(self.random_state)
        self._fit_calibrators, self._fit_scale = [], 0.0
        if self._calibrator is not None:
            m = min(s.size, FIT_SIZE)
            for _ in range(FIT_BOOTSTRAP):
                idx = rng.integers(0, s.size, m)
                if y[idx].any() and not y[idx].all():
                    self._fit_calibrators.append(fit_isotonic(s[idx], y[idx]))
            self._fit_scale = float(np.sqrt(m / s.size))
        self._errors = SamplingErrors.bootstrap(
            lambda idx: _binary_realized(y[idx], yhat[idx], s[idx]),
            BINARY_ESTIMATED_METRICS,
            s.size,
            self.n_bootstrap,
            rng,
        )
        self._n_reference = int(s.size)
        return self

    @staticmethod
    def _values(
        s: _FloatArray,
        yhat: NDArray[np.bool_],
        p: _FloatArray,
        ranks: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None,
    ) -> tuple[dict[str, float | None], tuple[float, float, float, float]]:
        n = int(s.size)
        tp = float(p[yhat].sum())
        fp = float(yhat.sum() - tp)
        fn = float(p[~yhat].sum())
        tn = float(n - tp - fp - fn)
        values: dict[str, float | None] = {
            "accuracy": div(tp + tn, n),
            "precision": div(tp, tp + fp),
            "recall": div(tp, tp + fn),
            "f1": div(2 * tp, 2 * tp + fp + fn),
            "roc_auc": estimated_auc(s, p, ranks) if n else None,
        }
        return values, (tp, fp, tn, fn)

    @property
    def calibrated(self) -> bool:
        """Whether the reference scores needed (and got) a calibrator."""
        return self._calibrator is not None

    def calibrate(self, scores: ArrayLike) -> _FloatArray:
        """Calibrated probabilities for raw scores."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        if self._calibrator is None or s.size == 0:
            return s
        return predict_isotonic(self._calibrator, s)

    def estimate(
        self, current_scores: ArrayLike, current_predictions: ArrayLike | None = None
    ) -> EstimationResult:
        """Estimate the metrics of a window without labels.

        Parameters
        ----------
        current_scores
            Positive-class probabilities of the window.
        current_predictions
            Predicted labels (0/1); ``scores >= 0.5`` when omitted.

        Returns
        -------
        EstimationResult
            Metrics of ``BINARY_ESTIMATED_METRICS`` with bands, and the
            :class:`ExpectedConfusion`. An empty window gives ``None`` values.
        """
        self._fitted_errors()
        s, yhat, _ = self._arrays(current_scores, current_predictions)
        n = int(s.size)
        p = self.calibrate(s)
        # the scores' order is the same for every calibration: sorted once, not 21 times
        ranks = score_ranks(s) if n else None
        values, (tp, fp, tn, fn) = self._values(s, yhat, p, ranks)
        replicas: list[dict[str, float | None]] = []
        if ranks is not None and self._fit_calibrators:
            up = ranks[0][::-1]  # any ascending order: each score's value does not depend on it
            ascending = (up, s[up])
            calibrated = [predict_isotonic(c, s, ascending) for c in self._fit_calibrators]
            replicas = _replica_values(s, yhat, calibrated, ranks)
        fit = fit_error(values, replicas, self._fit_scale)
        metrics = self._bands(BINARY_ESTIMATED_METRICS, values, fit, n)
        return EstimationResult(
            "cbpe",
            "binary",
            n,
            metrics,
            ExpectedConfusion(tp=tp, fp=fp, tn=tn, fn=fn),
            {"calibrated": self.calibrated, "n_reference": self._n_reference},
        )


def _replica_values(
    s: _FloatArray,
    yhat: NDArray[np.bool_],
    probabilities: list[_FloatArray],
    ranks: tuple[NDArray[np.intp], NDArray[np.intp]],
) -> list[dict[str, float | None]]:
    """``BinaryCBPE._values(s, yhat, p, ranks)[0]`` for each ``p`` of ``probabilities`` (the 20
    refitted calibrators of every window and segment), computed on their stacked matrix: the
    same sums and cumulative sums row by row, without 20 rounds of small numpy calls."""
    n = int(s.size)
    p = np.stack(probabilities)
    # np.compress and take give C-ordered rows (p[:, mask] gives Fortran order, whose row sums
    # add in another order): each row is summed as the one-dimensional p[mask].sum() is, to
    # the same bits
    tp = np.compress(yhat, p, axis=1).sum(axis=1)
    fp = float(yhat.sum()) - tp
    fn = np.compress(~yhat, p, axis=1).sum(axis=1)
    tn = n - tp - fp - fn
    # estimated_auc on each row: rows ranked by decreasing score, ties stepping together
    order, ends = ranks
    pos = p.sum(axis=1)
    neg = n - pos
    cum_pos = np.cumsum(p.take(order, axis=1), axis=1).take(ends, axis=1)
    cum_neg = (ends + 1) - cum_pos
    zero = np.zeros((p.shape[0], 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.hstack([zero, cum_pos / pos[:, None]])
        fpr = np.hstack([zero, cum_neg / neg[:, None]])
        steps = np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0
        auc = np.ascontiguousarray(steps).sum(axis=1)
    out: list[dict[str, float | None]] = []
    for i in range(p.shape[0]):
        tpi, fpi, fni, tni = float(tp[i]), float(fp[i]), float(fn[i]), float(tn[i])
        out.append(
            {
                "accuracy": div(tpi + tni, n),
                "precision": div(tpi, tpi + fpi),
                "recall": div(tpi, tpi + fni),
                "f1": div(2 * tpi, 2 * tpi + fpi + fni),
                "roc_auc": float(auc[i]) if pos[i] > 0 and neg[i] > 0 else None,
            }
        )
    return out
