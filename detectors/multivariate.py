"""Multivariate drift: changes in the joint distribution that per-column tests can miss.

Two fitted detectors, each ``fit(reference) -> Self`` then ``score(current) -> DetectorResult``
(a subclass with typed extras). Tables are mappings ``column → 1-d array``; string columns are
categorical.

``DomainClassifier``
    Can a classifier tell reference rows from current rows? The cross-validated ROC AUC of a
    ``HistGradientBoostingClassifier`` trained on "reference (0) vs current (1)" is 0.5 when the
    two samples are exchangeable and grows with any difference, joint or marginal. Features are
    ranked by how much shuffling each one (within the held-out fold) lowers the AUC. The
    threshold is a fixed AUC (default 0.55) or, with ``threshold="permutation"``, the
    ``1 − alpha`` quantile of AUCs with the domain labels permuted, which also gives a p-value
    and keeps the false-alarm rate at ``alpha`` on small windows.

``PCAReconstructionDrift``
    NannyML's "data reconstruction drift": on the reference, standardise the (frequency-encoded,
    mean-imputed) features and keep the principal components explaining ``variance`` (65 %) of
    it. A window's statistic is the mean Euclidean distance between its standardised rows and
    their reconstruction from those components. When the correlations change, the reference's
    components no longer capture the data and the error rises, even with unchanged marginals.
    The band comes from rows the PCA was *not* fitted on (the reference is split in half: fit
    on one, calibrate on the other, so the null errors are as out-of-sample as a window's), as
    ``mean ± band_width · sd / √n`` for a window of ``n`` rows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray

from detectors._tabular import Table, TableEncoder, openmp_limited, table_length, take
from detectors.errors import InvalidParameterError, NotFittedError
from detectors.performance import roc_auc
from detectors.result import DetectorResult

if TYPE_CHECKING:  # sklearn loads at the first fit: it was most of the API's import time
    from sklearn.decomposition import PCA


__all__ = [
    "DomainClassifier",
    "DomainClassifierResult",
    "PCAReconstructionDrift",
    "PCAReconstructionResult",
]


@dataclass(frozen=True)
class DomainClassifierResult(DetectorResult):
    """:class:`DetectorResult` of the domain classifier (``statistic`` = cross-validated AUC),
    plus the features ranked by permutation importance (AUC lost when shuffled), most
    important first."""

    feature_importance: tuple[tuple[str, float], ...] = ()

    @property
    def top_features(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.feature_importance)


@dataclass(frozen=True)
class PCAReconstructionResult(DetectorResult):
    """:class:`DetectorResult` of PCA reconstruction drift (``statistic`` = mean error,
    ``threshold`` = upper bound), plus the band's lower and upper bounds."""

    lower: float | None = None
    upper: float | None = None
    reference_mean: float | None = None


def _subsample(table: Table, n: int, max_rows: int, rng: np.random.Generator) -> dict[str, Any]:
    if n <= max_rows:
        return {k: np.asarray(v).ravel() for k, v in table.items()}
    return take(table, np.sort(rng.choice(n, max_rows, replace=False)))


class DomainClassifier:
    """Drift as the cross-validated ROC AUC of telling reference rows from current rows.

    Parameters
    ----------
    threshold
        AUC above which the window has drifted (default 0.55), or ``"permutation"`` for a
        threshold (and p-value) from ``n_permutations`` runs with shuffled domain labels.
    alpha
        False-alarm rate of the permutation threshold.
    n_permutations
        Label permutations for ``threshold="permutation"`` (each one costs a full
        cross-validation).
    n_splits
        Cross-validation folds.
    max_samples
        Rows drawn (without replacement) from each side at most, to bound the cost.
    min_samples
        Fewest rows per side to judge; fewer gives ``no_data``.
    max_iter, learning_rate
        Of the ``HistGradientBoostingClassifier``.
    categorical
        Numeric columns to treat as categorical; string columns always are.
    n_threads
        OpenMP threads of the boosting model (``None``: the library default). 1 by default: on
        these sample sizes a single thread is fastest on a shared machine (OpenMP's spin-waiting
        made a 2,000-row score ~10x slower on a busy 2-core host), and windows, segments and
        monitors are parallelised a level higher.
    random_state
        Seed of subsampling, folds, permutations and the model.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = {"a": rng.normal(size=1000), "b": rng.normal(size=1000)}
    >>> cur = {"a": rng.normal(size=1000), "b": rng.normal(1.0, 1.0, size=1000)}
    >>> r = DomainClassifier().fit(ref).score(cur)
    >>> r.drifted, r.top_features[0]
    (True, 'b')
    """

    method = "domain_classifier"

    def __init__(
        self,
        *,
        threshold: float | str = 0.55,
        alpha: float = 0.05,
        n_permutations: int = 20,
        n_splits: int = 5,
        max_samples: int = 5_000,
        min_samples: int = 50,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        categorical: Collection[str] = (),
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        if n_threads is not None and n_threads < 1:
            raise InvalidParameterError("n_threads", n_threads, "None or an integer >= 1")
        if isinstance(threshold, str):
            if threshold != "permutation":
                raise InvalidParameterError(
                    "threshold", threshold, "an AUC in (0.5, 1) or 'permutation'"
                )
        elif not 0.5 < threshold < 1.0:
            raise InvalidParameterError(
                "threshold", threshold, "an AUC in (0.5, 1) or 'permutation'"
            )
        if not 0 < alpha < 1:
            raise InvalidParameterError("alpha", alpha, "a number in (0, 1)")
        if n_permutations < 1:
            raise InvalidParameterError("n_permutations", n_permutations, "an integer >= 1")
        if n_splits < 2:
            raise InvalidParameterError("n_splits", n_splits, "an integer >= 2")
        if min_samples < n_splits:
            raise InvalidParameterError(
                "min_samples", min_samples, f"an integer >= n_splits ({n_splits})"
            )
        if max_samples < min_samples:
            raise InvalidParameterError(
                "max_samples", max_samples, f"an integer >= min_samples ({min_samples})"
            )
        self.threshold = threshold
        self.alpha = alpha
        self.n_permutations = n_permutations
        self.n_splits = n_splits
        self.max_samples = max_samples
        self.min_samples = min_samples
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.categorical = tuple(categorical)
        self.n_threads = n_threads
        self.random_state = random_state
        self._reference: dict[str, Any] | None = None
        self._n_reference = 0

    def fit(self, reference: Table) -> Self:
        """Keep (a subsample of) the reference.

        Parameters
        ----------
        reference
            Column name → values.

        Returns
        -------
        DomainClassifier
            ``self``.
        """
        n = table_length(reference)
        rng = np.random.default_rng(self.random_state)
        self._reference = _subsample(reference, n, self.max_samples, rng)
        self._n_reference = n
        return self

    def _oof_auc(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.int64],
        mask: NDArray[np.bool_],
        importance: bool,
    ) -> tuple[float, NDArray[np.float64]]:
        """Pooled out-of-fold AUC and, optionally, mean AUC lost per shuffled feature."""
        rng = np.random.default_rng(self.random_state + 1)
        from sklearn.model_selection import StratifiedKFold

        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=self.random_state)
        proba = np.empty(y.size)
        lost = np.zeros(x.shape[1])
        for train, test in folds.split(x, y):
            from sklearn.ensemble import HistGradientBoostingClassifier

            model = HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                categorical_features=mask,
                early_stopping=False,
                random_state=self.random_state,
            ).fit(x[train], y[train])
            proba[test] = model.predict_proba(x[test])[:, 1]
            if importance:
                base = roc_auc(y[test], proba[test]) or 0.5
                for j in range(x.shape[1]):
                    shuffled = x[test].copy()
                    shuffled[:, j] = rng.permutation(shuffled[:, j])
                    lost[j] += base - (roc_auc(y[test], model.predict_proba(shuffled)[:, 1]) or 0.5)
        return roc_auc(y, proba) or 0.5, lost / self.n_splits

    def score(self, current: Table) -> DomainClassifierResult:
        """Cross-validated AUC of reference vs ``current``, with features ranked.

        Parameters
        ----------
        current
            Column name → values, the same columns as the reference.

        Returns
        -------
        DomainClassifierResult
            ``statistic`` = AUC; ``p_value`` set only for the permutation threshold;
            ``drifted`` is ``None`` when either side has fewer than ``min_samples`` rows.
        """
        if self._reference is None:
            raise NotFittedError(type(self).__name__)
        n_cur = table_length(current)
        threshold = 0.5 if self.threshold == "permutation" else float(self.threshold)
        if n_cur < self.min_samples or self._n_reference < self.min_samples:
            return DomainClassifierResult(
                self.method,
                float("nan"),
                None,
                threshold,
                None,
                self._n_reference,
                n_cur,
                {"reason": f"fewer than {self.min_samples} rows on a side"},
            )
        rng = np.random.default_rng(self.random_state + 2)
        cur = _subsample(current, n_cur, self.max_samples, rng)
        # vocabularies from both sides, so a category new in the window is a value, not "missing"
        encoder = TableEncoder(self.categorical).fit([self._reference, cur])
        x = np.vstack([encoder.transform(self._reference), encoder.transform(cur)])
        n_ref_used = table_length(self._reference)
        y = np.r_[np.zeros(n_ref_used, np.int64), np.ones(table_length(cur), np.int64)]
        with openmp_limited(self.n_threads):
            auc, lost = self._oof_auc(x, y, encoder.categorical_mask, importance=True)
            null = np.zeros(0)
            if self.threshold == "permutation":
                perm_rng = np.random.default_rng(self.random_state + 3)
                null = np.array(
                    [
                        self._oof_auc(x, perm_rng.permutation(y), encoder.categorical_mask, False)[
                            0
                        ]
                        for _ in range(self.n_permutations)
                    ]
                )
        p_value = None
        if self.threshold == "permutation":
            threshold = float(np.quantile(null, 1 - self.alpha))
            p_value = float((1 + np.sum(null >= auc)) / (1 + null.size))
        order = np.argsort(-lost, kind="mergesort")
        ranking = tuple((encoder.columns[j], float(lost[j])) for j in order)
        drifted = auc > threshold if p_value is None else p_value <= self.alpha
        return DomainClassifierResult(
            self.method,
            float(auc),
            p_value,
            threshold,
            bool(drifted),
            self._n_reference,
            n_cur,
            {"n_reference_used": n_ref_used, "n_current_used": int(y.sum())},
            feature_importance=ranking,
        )


class PCAReconstructionDrift:
    """Drift as a change of the PCA reconstruction error against the reference.

    Parameters
    ----------
    variance
        Share of the reference's (standardised) variance the kept components explain.
    band_width
        Half-width of the band in standard errors of a window's mean error.
    min_samples
        Fewest rows in a window to judge; fewer gives ``no_data``.
    min_reference
        Fewest reference rows accepted by :meth:`fit`.
    categorical
        Numeric columns to treat as categorical (frequency-encoded); string columns always are.
    random_state
        Seed of the reference split.
    """

    method = "pca_reconstruction"

    def __init__(
        self,
        *,
        variance: float = 0.65,
        band_width: float = 3.0,
        min_samples: int = 20,
        min_reference: int = 100,
        categorical: Collection[str] = (),
        random_state: int = 0,
    ) -> None:
        if not 0 < variance < 1:
            raise InvalidParameterError("variance", variance, "a share in (0, 1)")
        if not band_width > 0:
            raise InvalidParameterError("band_width", band_width, "a number > 0")
        if min_samples < 2:
            raise InvalidParameterError("min_samples", min_samples, "an integer >= 2")
        if min_reference < 20:
            raise InvalidParameterError("min_reference", min_reference, "an integer >= 20")
        self.variance = variance
        self.band_width = band_width
        self.min_samples = min_samples
        self.min_reference = min_reference
        self.categorical = tuple(categorical)
        self.random_state = random_state
        self._encoder: TableEncoder | None = None
        self._center = np.zeros(0)
        self._scale = np.ones(0)
        self._pca: PCA | None = None
        self._null_mean = 0.0
        self._null_sd = 0.0
        self._n_reference = 0

    def _standardise(self, table: Table) -> NDArray[np.float64]:
        assert self._encoder is not None
        x = self._encoder.transform(table)
        # mean imputation: a missing value contributes no error of its own
        x = np.where(np.isnan(x), self._center, x)
        return (x - self._center) / self._scale

    def errors(self, table: Table) -> NDArray[np.float64]:
        """Per-row reconstruction error (Euclidean, in standardised units)."""
        if self._pca is None:
            raise NotFittedError(type(self).__name__)
        z = self._standardise(table)
        if z.shape[0] == 0:
            return np.zeros(0)
        rebuilt = self._pca.inverse_transform(self._pca.transform(z))
        return np.asarray(np.linalg.norm(z - rebuilt, axis=1), dtype=np.float64)

    def fit(self, reference: Table) -> Self:
        """Fit encoder, scaler and PCA on half of the reference; calibrate on the other half.

        Parameters
        ----------
        reference
            Column name → values.

        Returns
        -------
        PCAReconstructionDrift
            ``self``, fitted.
        """
        n = table_length(reference)
        if n < self.min_reference:
            raise InvalidParameterError("reference rows", n, f"at least {self.min_reference} rows")
        rng = np.random.default_rng(self.random_state)
        perm = rng.permutation(n)
        fit_half, calib_half = take(reference, perm[: n // 2]), take(reference, perm[n // 2 :])
        self._encoder = TableEncoder(self.categorical, mode="frequency").fit([fit_half])
        raw = self._encoder.transform(fit_half)
        with np.errstate(invalid="ignore"):
            center = np.nanmean(raw, axis=0) if raw.size else np.zeros(raw.shape[1])
        self._center = np.nan_to_num(center)
        filled = np.where(np.isnan(raw), self._center, raw)
        scale = filled.std(axis=0)
        self._scale = np.where(scale > 0, scale, 1.0)  # constant columns: leave unscaled
        from sklearn.decomposition import PCA

        self._pca = PCA(n_components=self.variance, svd_solver="full").fit(
            (filled - self._center) / self._scale
        )
        null = self.errors(calib_half)
        self._null_mean = float(null.mean())
        self._null_sd = float(null.std(ddof=1))
        self._n_reference = n
        return self

    @property
    def n_components(self) -> int:
        if self._pca is None:
            raise NotFittedError(type(self).__name__)
        return int(self._pca.n_components_)

    def score(self, current: Table) -> PCAReconstructionResult:
        """Mean reconstruction error of ``current`` against the reference band.

        Parameters
        ----------
        current
            Column name → values, the same columns as the reference.

        Returns
        -------
        PCAReconstructionResult
            ``drifted`` when the mean error leaves ``[lower, upper]``; ``None`` with fewer than
            ``min_samples`` rows.
        """
        errors = self.errors(current)
        n = int(errors.size)
        half = self.band_width * self._null_sd / np.sqrt(max(n, 1))
        lower, upper = self._null_mean - half, self._null_mean + half
        if n < self.min_samples:
            return PCAReconstructionResult(
                self.method,
                float("nan"),
                None,
                float(upper),
                None,
                self._n_reference,
                n,
                {"reason": f"fewer than {self.min_samples} rows"},
                reference_mean=self._null_mean,
            )
        mean = float(errors.mean())
        return PCAReconstructionResult(
            self.method,
            mean,
            None,
            float(upper),
            bool(mean > upper or mean < lower),
            self._n_reference,
            n,
            {"n_components": self.n_components},
            lower=float(lower),
            upper=float(upper),
            reference_mean=self._null_mean,
        )
