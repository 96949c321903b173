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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors.errors import InvalidParameterError, NotFittedError
from detectors.estimation.result import (
    EstimatedMetric,
    EstimationResult,
    ExpectedConfusion,
    ExpectedConfusionMatrix,
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
MULTICLASS_ESTIMATED_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_weighted",
    "roc_auc_macro",
)

_FloatArray = NDArray[np.float64]

# Bootstrap resamples are drawn at most this large: the standard error scales as 1/√n, so the
# spread at this size, scaled by √(size / n), serves any window while fit stays fast on
# multi-million-row references.
_BOOTSTRAP_SIZE = 20_000


def _div(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def _validate_common(band_width: float, n_bootstrap: int, min_reference: int) -> None:
    if not band_width > 0:
        raise InvalidParameterError("band_width", band_width, "a number > 0")
    if n_bootstrap < 10:
        raise InvalidParameterError("n_bootstrap", n_bootstrap, "an integer >= 10")
    if min_reference < 10:
        raise InvalidParameterError("min_reference", min_reference, "an integer >= 10")


def _isotonic(p: _FloatArray, y: NDArray[np.bool_]) -> IsotonicRegression:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    return iso.fit(p, y.astype(np.float64))


def _predict(iso: IsotonicRegression, s: _FloatArray) -> _FloatArray:
    """``iso.predict(s)`` for a fitted ``out_of_bounds="clip"`` isotonic regression, without
    scikit-learn's per-call input validation (~1 ms each, paid for the calibrator and its 20
    bootstrap replicas on every window and segment): the fitted function is linear between its
    thresholds and constant beyond them, which is what ``np.interp`` computes."""
    x, y = iso.X_thresholds_, iso.y_thresholds_
    if x.size == 1:
        return np.full(s.shape, float(y[0]))
    return np.interp(s, x, y)


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's (1982) standard error of a ROC AUC."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)
    return float(np.sqrt(max(var, 0.0) / (n_pos * n_neg)))


def _estimation_errors(y: NDArray[np.bool_], s: _FloatArray, q: _FloatArray) -> list[float]:
    """What CBPE would get wrong on these rows with probabilities ``q`` for scores ``s``:
    expected minus observed positives among rows scored >= 0.5 and < 0.5 (they drive the
    confusion-matrix metrics) and estimated minus realized ROC AUC."""
    out = []
    for side in (s >= 0.5, s < 0.5):
        out.append(float(np.mean(q[side] - y[side])) if side.any() else 0.0)
    realized = roc_auc(y, s)
    estimated = _estimated_auc(s, q)
    out.append(0.0 if realized is None or estimated is None else estimated - realized)
    return out


def _standard_errors(y: NDArray[np.bool_], s: _FloatArray) -> list[float]:
    out = []
    for side in (s >= 0.5, s < 0.5):
        k = int(side.sum())
        out.append(float(np.std(y[side]) / np.sqrt(k)) if k > 1 else np.inf)
    realized = roc_auc(y, s)
    n_pos = int(y.sum())
    out.append(np.inf if realized is None else _auc_se(realized, n_pos, y.size - n_pos))
    return [max(v, 1e-12) for v in out]


def _fit_calibrator(
    y: NDArray[np.bool_], p: _FloatArray, n_splits: int, seed: int
) -> IsotonicRegression | None:
    """Isotonic calibrator of ``P(y | p)``, or ``None`` when calibrating is clearly worse.

    What matters to CBPE is systematic error in the estimates, not row-level calibration:
    per-row noise averages out over a window, a bias does not. So the check cross-validates
    CBPE itself: isotonic regression is fitted on k−1 folds and, on the held-out fold, the
    estimation errors of raw and calibrated probabilities are measured (expected minus observed
    positives on each side of 0.5, estimated minus realized ROC AUC; see
    :func:`_estimation_errors`). Their means over the folds, in standard errors of a fold's
    realized values, add up to a χ²-like score per option. The calibrator is kept unless its
    score exceeds the raw scores' by more than 4 (two standard errors): calibration is the
    default because CBPE inherits any miscalibration one for one (scores slightly
    underconfident, ECE 0.009, move the estimated ROC AUC by about 0.007), while isotonic
    regression on well-calibrated scores costs little. NannyML compares binned ECEs and keeps
    the raw scores on a tie; at realistic sizes that ECE is too noisy to tell a systematic
    0.005 bias from none (issue 14: 0.00896 raw vs 0.00900 isotonic on census scores whose
    estimated ROC AUC then sat 0.0045 below the realized one every week).
    """
    n_pos = int(y.sum())
    if n_pos < n_splits or y.size - n_pos < n_splits:
        return None  # too few of one class to cross-validate; raw scores are all we can trust
    if roc_auc(y, p) == 1.0:
        return None  # perfectly separating scores: isotonic would collapse them to 0/1
    raw_err, cal_err, ses = [], [], []
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(p, y):
        calibrated = np.asarray(_isotonic(p[train], y[train]).predict(p[test]), np.float64)
        raw_err.append(_estimation_errors(y[test], p[test], p[test]))
        cal_err.append(_estimation_errors(y[test], p[test], calibrated))
        ses.append(_standard_errors(y[test], p[test]))
    se_mean = np.sqrt(np.mean(np.square(ses), axis=0) / n_splits)
    raw_score = float(np.sum((np.mean(raw_err, axis=0) / se_mean) ** 2))
    cal_score = float(np.sum((np.mean(cal_err, axis=0) / se_mean) ** 2))
    if cal_score > raw_score + 4.0:
        return None
    return _isotonic(p, y)


def _score_ranks(scores: _FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Rows by decreasing score (stable) and the last position of each run of equal scores:
    what :func:`_estimated_auc` needs of the scores, computed once for many calibrations."""
    order = np.argsort(-scores, kind="mergesort")
    s = scores[order]
    return order, np.r_[np.flatnonzero(np.diff(s)), s.size - 1]


def _estimated_auc(
    scores: _FloatArray,
    calibrated: _FloatArray,
    ranks: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None,
) -> float | None:
    """ROC AUC expected from calibrated probabilities, ranking rows by the model's scores.

    Each row counts as ``calibrated`` of a positive and ``1 − calibrated`` of a negative; rows
    with equal scores move the ROC curve together (a diagonal step), matching tie handling of
    the realized ROC AUC. ``ranks``: :func:`_score_ranks` of ``scores``, when already known.
    """
    pos_total = float(calibrated.sum())
    neg_total = float(calibrated.size - pos_total)
    if pos_total <= 0 or neg_total <= 0:
        return None
    order, ends = ranks if ranks is not None else _score_ranks(scores)
    c = calibrated[order]
    cum_pos = np.cumsum(c)[ends]
    cum_neg = (ends + 1) - cum_pos
    tpr = np.r_[0.0, cum_pos / pos_total]
    fpr = np.r_[0.0, cum_neg / neg_total]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


# The estimator's own error: calibrators refitted on this many bootstrap resamples of the
# reference (at most _FIT_SIZE rows each; the spread is scaled to the reference's size).
_FIT_BOOTSTRAP = 20
_FIT_SIZE = 50_000


def _fit_error(
    values: dict[str, float | None], replicas: list[dict[str, float | None]], scale: float
) -> dict[str, float]:
    """Per metric, the standard deviation of the estimate over the refitted calibrators."""
    out = {}
    for name in values:
        v = [x for r in replicas if (x := r.get(name)) is not None]
        out[name] = float(np.std(v, ddof=1)) * scale if len(v) >= 2 else 0.0
    return out


def _band(
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


# ---------------------------------------------------------------------------------------------
# binary


def _binary_realized(
    y: NDArray[np.bool_], yhat: NDArray[np.bool_], s: _FloatArray
) -> dict[str, float | None]:
    tp = float(np.sum(y & yhat))
    fp = float(np.sum(~y & yhat))
    fn = float(np.sum(y & ~yhat))
    n = y.size
    return {
        "accuracy": _div(n - fp - fn, n),
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, tp + fn),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(y, s),
    }


class BinaryCBPE:
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
        _validate_common(band_width, n_bootstrap, min_reference)
        if calibration not in ("auto", "isotonic", "none"):
            raise InvalidParameterError("calibration", calibration, "'auto', 'isotonic' or 'none'")
        if n_splits < 2:
            raise InvalidParameterError("n_splits", n_splits, "an integer >= 2")
        self.band_width = float(band_width)
        self.calibration = calibration
        self.n_bootstrap = n_bootstrap
        self.n_splits = n_splits
        self.min_reference = min_reference
        self.random_state = random_state
        self._calibrator: IsotonicRegression | None = None
        self._fit_calibrators: list[IsotonicRegression] = []
        self._fit_scale = 0.0
        self._reference_se: dict[str, float | None] | None = None
        self._n_reference = 0
        self._bootstrap_size = 0

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
        if self.calibration == "none":
            self._calibrator = None
        elif self.calibration == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self._calibrator = iso.fit(s, y.astype(np.float64))
        else:
            self._calibrator = _fit_calibrator(y, s, self.n_splits, self.random_state)
        rng = np.random.default_rng(self.random_state)
        self._fit_calibrators, self._fit_scale = [], 0.0
        if self._calibrator is not None:
            m = min(s.size, _FIT_SIZE)
            for _ in range(_FIT_BOOTSTRAP):
                idx = rng.integers(0, s.size, m)
                if y[idx].any() and not y[idx].all():
                    self._fit_calibrators.append(_isotonic(s[idx], y[idx]))
            self._fit_scale = float(np.sqrt(m / s.size))
        samples: dict[str, list[float]] = {m: [] for m in BINARY_ESTIMATED_METRICS}
        size = min(s.size, _BOOTSTRAP_SIZE)
        for _ in range(self.n_bootstrap):
            idx = rng.integers(0, s.size, size)
            for name, value in _binary_realized(y[idx], yhat[idx], s[idx]).items():
                if value is not None:
                    samples[name].append(value)
        self._reference_se = {
            name: float(np.std(v, ddof=1)) if len(v) >= 2 else None for name, v in samples.items()
        }
        self._n_reference = int(s.size)
        self._bootstrap_size = size
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
            "accuracy": _div(tp + tn, n),
            "precision": _div(tp, tp + fp),
            "recall": _div(tp, tp + fn),
            "f1": _div(2 * tp, 2 * tp + fp + fn),
            "roc_auc": _estimated_auc(s, p, ranks) if n else None,
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
        return _predict(self._calibrator, s)

    def sampling_error(self, name: str, n: int) -> float | None:
        """Standard error of the realized metric ``name`` on a window of ``n`` rows."""
        if self._reference_se is None:
            raise NotFittedError(type(self).__name__)
        se = self._reference_se[name]
        if se is None or n <= 0:
            return None
        return se * float(np.sqrt(self._bootstrap_size / n))

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
        if self._reference_se is None:
            raise NotFittedError(type(self).__name__)
        s, yhat, _ = self._arrays(current_scores, current_predictions)
        n = int(s.size)
        p = self.calibrate(s)
        # the scores' order is the same for every calibration: sorted once, not 21 times
        ranks = _score_ranks(s) if n else None
        values, (tp, fp, tn, fn) = self._values(s, yhat, p, ranks)
        replicas = [
            self._values(s, yhat, _predict(c, s), ranks)[0]
            for c in (self._fit_calibrators if n else [])
        ]
        fit = _fit_error(values, replicas, self._fit_scale)
        metrics = {
            name: _band(name, v, self.sampling_error(name, n), fit[name], self.band_width)
            for name, v in values.items()
        }
        return EstimationResult(
            "cbpe",
            "binary",
            n,
            metrics,
            ExpectedConfusion(tp=tp, fp=fp, tn=tn, fn=fn),
            {"calibrated": self.calibrated, "n_reference": self._n_reference},
        )


# ---------------------------------------------------------------------------------------------
# multiclass


def _multiclass_realized(
    y: NDArray[np.intp], yhat: NDArray[np.intp], s: _FloatArray
) -> dict[str, float | None]:
    k = s.shape[1]
    n = y.size
    confusion = np.bincount(y * k + yhat, minlength=k * k).reshape(k, k).astype(np.float64)
    return _from_confusion(confusion, n) | {
        "roc_auc_macro": _mean_or_none([roc_auc(y == c, s[:, c]) for c in range(k)])
    }


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _from_confusion(confusion: _FloatArray, n: int) -> dict[str, float | None]:
    """Accuracy and per-class-averaged metrics from a (possibly expected) confusion matrix."""
    tp = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    # classes absent from both truth and predictions carry no information: leave them out
    present = (support + predicted) > 0
    precision = [_div(t, p) for t, p in zip(tp[present], predicted[present], strict=True)]
    recall = [_div(t, s) for t, s in zip(tp[present], support[present], strict=True)]
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return {
        "accuracy": _div(float(tp.sum()), n),
        "precision_macro": _mean_or_none(precision),
        "recall_macro": _mean_or_none(recall),
        "f1_macro": float(f1.mean()) if f1.size else None,
        "f1_weighted": _div(float(np.sum(f1 * support[present])), n),
    }


class MulticlassCBPE:
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
        _validate_common(band_width, n_bootstrap, min_reference)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise InvalidParameterError("classes", list(classes), "at least 2 distinct labels")
        if calibration not in ("auto", "isotonic", "none"):
            raise InvalidParameterError("calibration", calibration, "'auto', 'isotonic' or 'none'")
        self.classes = tuple(classes)
        self.band_width = float(band_width)
        self.calibration = calibration
        self.n_bootstrap = n_bootstrap
        self.n_splits = n_splits
        self.min_reference = min_reference
        self.random_state = random_state
        self._calibrators: list[IsotonicRegression | None] = []
        self._fit_calibrators: list[list[IsotonicRegression | None]] = []
        self._fit_scale = 0.0
        self._reference_se: dict[str, float | None] | None = None
        self._n_reference = 0
        self._bootstrap_size = 0

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
            if self.calibration == "none" or yc.all() or not yc.any():
                self._calibrators.append(None)
            elif self.calibration == "isotonic":
                from sklearn.isotonic import IsotonicRegression

                iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
                self._calibrators.append(iso.fit(s[:, c], yc.astype(np.float64)))
            else:
                self._calibrators.append(
                    _fit_calibrator(yc, s[:, c], self.n_splits, self.random_state)
                )
        rng = np.random.default_rng(self.random_state)
        self._fit_calibrators, self._fit_scale = [], 0.0
        if any(c is not None for c in self._calibrators):
            m = min(y.size, _FIT_SIZE)
            for _ in range(_FIT_BOOTSTRAP):
                idx = rng.integers(0, y.size, m)
                self._fit_calibrators.append(
                    [
                        None
                        if c is None or (y[idx] == k).all() or not (y[idx] == k).any()
                        else _isotonic(s[idx, k], y[idx] == k)
                        for k, c in enumerate(self._calibrators)
                    ]
                )
            self._fit_scale = float(np.sqrt(m / y.size))
        samples: dict[str, list[float]] = {m: [] for m in MULTICLASS_ESTIMATED_METRICS}
        size = min(y.size, _BOOTSTRAP_SIZE)
        for _ in range(self.n_bootstrap):
            idx = rng.integers(0, y.size, size)
            for name, value in _multiclass_realized(y[idx], yhat[idx], s[idx]).items():
                if value is not None:
                    samples[name].append(value)
        self._reference_se = {
            name: float(np.std(v, ddof=1)) if len(v) >= 2 else None for name, v in samples.items()
        }
        self._n_reference = int(y.size)
        self._bootstrap_size = size
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
                s[:, c] = _predict(iso, s[:, c])
        totals = s.sum(axis=1, keepdims=True)
        # a row calibrated to all zeros keeps its raw scores rather than dividing by zero
        raw = self._scores(scores)
        return np.where(totals > 0, s / np.where(totals > 0, totals, 1.0), raw)

    def sampling_error(self, name: str, n: int) -> float | None:
        """Standard error of the realized metric ``name`` on a window of ``n`` rows."""
        if self._reference_se is None:
            raise NotFittedError(type(self).__name__)
        se = self._reference_se[name]
        if se is None or n <= 0:
            return None
        return se * float(np.sqrt(self._bootstrap_size / n))

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
        if self._reference_se is None:
            raise NotFittedError(type(self).__name__)
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
                _from_confusion(expected, n) if n else dict.fromkeys(MULTICLASS_ESTIMATED_METRICS)
            )
            values["roc_auc_macro"] = (
                _mean_or_none([_estimated_auc(s[:, c], p[:, c]) for c in range(k)]) if n else None
            )
            return values, expected

        values, expected = estimates(p)
        replicas = [
            estimates(self.calibrate(s, cals))[0] for cals in (self._fit_calibrators if n else [])
        ]
        fit = _fit_error(values, replicas, self._fit_scale)
        metrics = {
            name: _band(
                name, values[name], self.sampling_error(name, n), fit[name], self.band_width
            )
            for name in MULTICLASS_ESTIMATED_METRICS
        }
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
