"""Direct loss estimation (DLE) for regression models, as NannyML does it.

On the labelled reference, a gradient-boosting model learns the loss of each prediction
(``|y − ŷ|`` and ``(y − ŷ)²``) from the features and the prediction itself. On a window without
targets, the mean predicted loss estimates MAE, and the square root of the mean predicted
squared error estimates RMSE. Like CBPE, DLE follows covariate shift (the model moving into
regions where it errs more), not concept drift.

The band is ``estimate ± band_width · √(SE(n)² + fit²)``. ``SE(n)`` is the standard error of
the realized metric on ``n`` rows, from the window's own estimated losses times the
reference's relative spread of the losses (so it widens where the model errs more; delta
method for RMSE). ``fit`` is the estimator's own error: a delete-a-group jackknife over
``n_folds`` refits of the loss models without one fold of the reference, evaluated on the
window, which grows where the window lies in regions the reference covers thinly (covariate
shift). With the reference's spread alone, realized MAE fell inside the band in 6 of 12
shifted months (issue 14).

References
----------
NannyML, "Direct Loss Estimation (DLE)", how-it-works documentation.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from detectors._tabular import Table, TableEncoder, openmp_limited
from detectors.errors import InvalidParameterError, NotFittedError
from detectors.estimation.result import EstimatedMetric, EstimationResult

if TYPE_CHECKING:  # sklearn loads at the first fit: it was most of the API's import time
    from sklearn.ensemble import HistGradientBoostingRegressor


__all__ = ["DLE", "DLE_METRICS"]

DLE_METRICS: tuple[str, ...] = ("mae", "rmse")
# Rows of a window the jackknife refits predict on at most.
_JACKKNIFE_ROWS = 1000


class DLE:
    """Estimate a regression model's MAE and RMSE on windows without targets.

    Parameters
    ----------
    band_width
        Half-width of the band in standard errors.
    max_iter, learning_rate, max_leaf_nodes
        Of the ``HistGradientBoostingRegressor`` loss models (early stopping on a 10 %
        validation split keeps them from memorising the reference's noise).
    categorical
        Numeric columns to treat as categorical; string columns always are.
    min_reference
        Fewest reference rows accepted by :meth:`fit`.
    max_samples
        Reference rows the loss models are fitted on at most (a seeded subsample beyond).
    n_threads
        OpenMP threads of the boosting models (``None``: the library default); 1 by default,
        see :class:`detectors.multivariate.DomainClassifier`.
    random_state
        Seed of the boosting models.
    """

    task = "regression"

    def __init__(
        self,
        *,
        band_width: float = 3.0,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 15,
        categorical: Collection[str] = (),
        min_reference: int = 100,
        max_samples: int = 200_000,
        n_folds: int = 4,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        if n_folds < 2:
            raise InvalidParameterError("n_folds", n_folds, "an integer >= 2")
        self.n_folds = n_folds
        if n_threads is not None and n_threads < 1:
            raise InvalidParameterError("n_threads", n_threads, "None or an integer >= 1")
        if not band_width > 0:
            raise InvalidParameterError("band_width", band_width, "a number > 0")
        if max_iter < 1:
            raise InvalidParameterError("max_iter", max_iter, "an integer >= 1")
        if not 0 < learning_rate <= 1:
            raise InvalidParameterError("learning_rate", learning_rate, "a number in (0, 1]")
        if min_reference < 20:
            raise InvalidParameterError("min_reference", min_reference, "an integer >= 20")
        self.band_width = float(band_width)
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.categorical = tuple(categorical)
        if max_samples < min_reference:
            raise InvalidParameterError(
                "max_samples", max_samples, f"an integer >= min_reference ({min_reference})"
            )
        self.min_reference = min_reference
        self.max_samples = max_samples
        self.n_threads = n_threads
        self.random_state = random_state
        self._encoder: TableEncoder | None = None
        self._abs_model: HistGradientBoostingRegressor | None = None
        self._sq_model: HistGradientBoostingRegressor | None = None
        self._fold_models: list[
            tuple[HistGradientBoostingRegressor, HistGradientBoostingRegressor]
        ] = []
        self._abs_cv = 0.0
        self._sq_cv = 0.0
        self._n_reference = 0

    def _model(self, mask: NDArray[np.bool_]) -> HistGradientBoostingRegressor:
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            categorical_features=mask,
            early_stopping=True,
            validation_fraction=0.1,
            random_state=self.random_state,
        )

    def _matrix(self, features: Table, predictions: ArrayLike) -> NDArray[np.float64]:
        assert self._encoder is not None
        x = self._encoder.transform(features)
        yhat = np.asarray(predictions, dtype=np.float64).ravel()
        if yhat.size != x.shape[0]:
            sizes = {"features": x.shape[0], "predictions": yhat.size}
            raise InvalidParameterError("lengths", sizes, "equal lengths")
        # the prediction is a feature too: errors often depend on where the prediction lands
        return np.column_stack([x, yhat])

    def fit(
        self,
        reference_features: Table,
        reference_predictions: ArrayLike,
        reference_targets: ArrayLike,
    ) -> Self:
        """Fit the loss models on the labelled reference.

        Parameters
        ----------
        reference_features
            Column name → values of the model's input features.
        reference_predictions
            The model's predictions on the reference.
        reference_targets
            The true values.

        Returns
        -------
        DLE
            ``self``, fitted.
        """
        self._encoder = TableEncoder(self.categorical).fit([reference_features])
        x = self._matrix(reference_features, reference_predictions)
        y = np.asarray(reference_targets, dtype=np.float64).ravel()
        if y.size != x.shape[0]:
            raise InvalidParameterError(
                "lengths", {"features": x.shape[0], "targets": y.size}, "equal lengths"
            )
        keep = ~np.isnan(y) & ~np.isnan(x[:, -1])
        x, y = x[keep], y[keep]
        if y.size < self.min_reference:
            raise InvalidParameterError(
                "reference rows", y.size, f"at least {self.min_reference} labelled rows"
            )
        if y.size > self.max_samples:
            rng = np.random.default_rng(self.random_state)
            pick = np.sort(rng.choice(y.size, self.max_samples, replace=False))
            x, y = x[pick], y[pick]
        err = y - x[:, -1]
        mask = np.r_[self._encoder.categorical_mask, False]
        folds = np.random.default_rng(self.random_state).integers(0, self.n_folds, y.size)
        with openmp_limited(self.n_threads):
            self._abs_model = self._model(mask).fit(x, np.abs(err))
            self._sq_model = self._model(mask).fit(x, err**2)
            # delete-a-group jackknife: the same fit without one fold at a time
            self._fold_models = [
                (
                    self._model(mask).fit(x[folds != k], np.abs(err[folds != k])),
                    self._model(mask).fit(x[folds != k], err[folds != k] ** 2),
                )
                for k in range(self.n_folds)
            ]
        # relative spread of the losses: the window's spread is this times its estimated mean
        self._abs_cv = float(np.std(np.abs(err), ddof=1) / max(np.mean(np.abs(err)), 1e-300))
        self._sq_cv = float(np.std(err**2, ddof=1) / max(np.mean(err**2), 1e-300))
        self._n_reference = int(y.size)
        return self

    def estimate(self, current_features: Table, current_predictions: ArrayLike) -> EstimationResult:
        """Estimate MAE and RMSE of a window without targets.

        Parameters
        ----------
        current_features
            Column name → values, same columns as the reference.
        current_predictions
            The model's predictions on the window.

        Returns
        -------
        EstimationResult
            ``mae`` and ``rmse`` with bands (lower bounds clipped at 0); ``None`` values on an
            empty window.
        """
        if self._abs_model is None or self._sq_model is None:
            raise NotFittedError(type(self).__name__)
        x = self._matrix(current_features, current_predictions)
        x = x[~np.isnan(x[:, -1])]
        n = int(x.shape[0])
        if n == 0:
            metrics = {m: EstimatedMetric(m, None, None, None, None) for m in DLE_METRICS}
            return EstimationResult("dle", "regression", 0, metrics)
        # a loss is never negative; the boosting models can undershoot slightly near zero
        with openmp_limited(self.n_threads):
            abs_hat = np.maximum(self._abs_model.predict(x), 0.0)
            sq_hat = np.maximum(self._sq_model.predict(x), 0.0)
            # the refits differ smoothly over the inputs: their disagreement on a bounded
            # sample of the window is the disagreement on the window, at a fraction of the cost
            xs = x
            if n > _JACKKNIFE_ROWS:
                pick = np.random.default_rng(self.random_state).choice(n, _JACKKNIFE_ROWS, False)
                xs = x[np.sort(pick)]
            folds = [
                (
                    float(np.maximum(a.predict(xs), 0.0).mean()),
                    float(np.maximum(q.predict(xs), 0.0).mean()),
                )
                for a, q in self._fold_models
            ]
        mae = float(abs_hat.mean())
        msq = float(sq_hat.mean())
        rmse = float(np.sqrt(msq))
        k = len(folds)
        fold_mae = np.array([f[0] for f in folds])
        fold_rmse = np.sqrt([f[1] for f in folds])
        # jackknife variance of the full fit: (K - 1) / K * Σ (θ_k - θ̄)²
        fit_mae = float(np.sqrt((k - 1) / k * np.sum((fold_mae - fold_mae.mean()) ** 2)))
        fit_rmse = float(np.sqrt((k - 1) / k * np.sum((fold_rmse - fold_rmse.mean()) ** 2)))
        # sampling error of the realized metric on n rows, with the window's own spread
        sampling_mae = self._abs_cv * mae / np.sqrt(n)
        # delta method: SE(√m) = SE(m) / (2√m)
        sampling_rmse = self._sq_cv * msq / np.sqrt(n) / (2 * rmse) if rmse > 0 else None
        se_mae = float(np.hypot(sampling_mae, fit_mae))
        se_rmse = None if sampling_rmse is None else float(np.hypot(sampling_rmse, fit_rmse))
        sampling_mae, sampling_rmse = (
            float(sampling_mae),
            (None if sampling_rmse is None else float(sampling_rmse)),
        )
        w = self.band_width
        metrics = {
            "mae": EstimatedMetric(
                "mae", mae, sampling_mae, max(0.0, mae - w * se_mae), mae + w * se_mae, fit_mae
            ),
            "rmse": EstimatedMetric(
                "rmse",
                rmse,
                sampling_rmse,
                None if se_rmse is None else max(0.0, rmse - w * se_rmse),
                None if se_rmse is None else rmse + w * se_rmse,
                fit_rmse,
            ),
        }
        return EstimationResult(
            "dle", "regression", n, metrics, None, {"n_reference": self._n_reference}
        )
