"""Run drift methods on one column (:func:`detect`) or many (:func:`run_drift`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.drift import calibration
from detectors.drift.registry import DriftMethod, Score, available_methods, get_method
from detectors.drift.selection import default_method_for_profile
from detectors.errors import InvalidParameterError
from detectors.profiles import (
    DEFAULT_CAP,
    DEFAULT_N_BINS,
    ColumnKind,
    ColumnProfile,
    ReferenceBins,
    as_float_array,
    profile_categorical,
    profile_numeric,
)
from detectors.result import DetectorResult

__all__ = ["apply_fdr", "detect", "prepare_reference", "run_drift"]

DEFAULT_ALPHA = 0.05


def _no_data(
    method: DriftMethod, threshold: float, n_ref: int, n_cur: int, why: str
) -> DetectorResult:
    return DetectorResult(
        method=method.name,
        statistic=float("nan"),
        p_value=None,
        threshold=threshold,
        drifted=None,
        n_reference=n_ref,
        n_current=n_cur,
        details={"reason": why},
    )


def _fallback_threshold(method: DriftMethod, threshold: float | None, alpha: float) -> float:
    """The threshold a ``no_data`` result reports (nothing was calibrated)."""
    if threshold is not None:
        return float(threshold)
    return alpha if method.is_test else method.default_threshold


def _decide(
    method: DriftMethod,
    score: Score,
    n_ref: int,
    n_cur: int,
    threshold: float | None,
    alpha: float,
    null: Callable[[], npt.NDArray[Any]] | None,
    refined: Callable[[], npt.NDArray[Any]] | None = None,
) -> DetectorResult:
    """Turn a score into a result; ``null`` is a zero-arg callable giving null statistics,
    ``refined`` (FDR runs) one giving a larger independent null sample for small p-values."""
    details = dict(score.details)
    if method.is_test:
        thr = alpha if threshold is None else float(threshold)
        p = float(score.p_value) if score.p_value is not None else float("nan")
        if math.isnan(p):
            return _no_data(method, thr, n_ref, n_cur, "undefined p-value")
        return DetectorResult(
            method.name, float(score.statistic), p, thr, p < thr, n_ref, n_cur, details
        )
    if threshold is not None:
        thr, source = float(threshold), "explicit"
    elif method.calibrated and null is not None:
        thr, null_p = calibration.threshold_from_null(null(), score.statistic, alpha)
        source = "calibrated"
        details.update(null_p_value=null_p, alpha=alpha)
        if refined is not None:
            p2, draws = calibration.refine_p_value(null_p, float(score.statistic), alpha, refined)
            if draws is not None:
                details.update(null_p_value=p2, null_draws=draws, first_null_p_value=null_p)
    else:
        thr, source = method.default_threshold, "default"
    details["threshold_source"] = source
    stat = float(score.statistic)
    return DetectorResult(method.name, stat, None, thr, stat > thr, n_ref, n_cur, details)


def _check_kind(method: DriftMethod, kind: ColumnKind) -> None:
    if kind not in method.kinds:
        valid = ", ".join(available_methods(kind))
        raise InvalidParameterError("method", method.name, f"a method for {kind} columns: {valid}")


def _detect_profiles(
    method: DriftMethod,
    ref: ColumnProfile,
    cur: ColumnProfile,
    threshold: float | None,
    alpha: float,
    n_draws: int,
    fdr_draws: int | None = None,
) -> DetectorResult:
    if ref.bins != cur.bins:
        raise InvalidParameterError(
            "current.bins", cur.bins.key, f"the reference's bins (key {ref.bins.key})"
        )
    _check_kind(method, ref.kind)
    if method.on_profiles is None:
        valid = ", ".join(k for k, m in available_methods(ref.kind).items() if m.works_on_profiles)
        raise InvalidParameterError(
            "method", method.name, f"a method that runs on profiles ({valid}); pass samples"
        )
    n_ref, n_cur = int(ref.count), int(cur.count)
    fallback = _fallback_threshold(method, threshold, alpha)
    if min(n_ref, n_cur) < method.min_size or min(ref.counts.sum(), cur.counts.sum()) == 0:
        return _no_data(method, fallback, n_ref, n_cur, "too few values")
    score = method.on_profiles(ref, cur)
    if score.statistic is None or math.isnan(score.statistic):
        return _no_data(method, fallback, n_ref, n_cur, "statistic undefined (no finite values)")

    def null() -> npt.NDArray[Any]:
        return calibration.null_statistics_profiles(
            method, ref, int(ref.counts.sum()), int(cur.counts.sum()), n_draws
        )

    def refined() -> npt.NDArray[Any]:
        assert fdr_draws is not None
        return calibration.refined_null_profiles(
            method, ref, int(ref.counts.sum()), int(cur.counts.sum()), fdr_draws
        )

    return _decide(
        method, score, n_ref, n_cur, threshold, alpha, null, refined if fdr_draws else None
    )


def _infer_kind(values: Any) -> ColumnKind:
    arr = np.asarray(values) if not hasattr(values, "dtype") else values
    dtype = getattr(arr, "dtype", None)
    try:
        if dtype is not None and np.issubdtype(np.dtype(dtype), np.number):
            return "numeric"
    except TypeError:
        pass
    return "categorical"


def detect(
    method: str,
    reference: ColumnProfile | Any,
    current: ColumnProfile | Any,
    *,
    kind: ColumnKind | None = None,
    threshold: float | None = None,
    alpha: float = DEFAULT_ALPHA,
    n_bins: int = DEFAULT_N_BINS,
    cap: int = DEFAULT_CAP,
    n_draws: int | None = None,
) -> DetectorResult:
    """Compare a current column with its reference using one registered method.

    Parameters
    ----------
    method
        Registered method name (see ``available_methods()``).
    reference, current
        Two :class:`ColumnProfile` on the same bins, or two samples (array-likes).
    kind
        Column kind for samples; inferred from the dtype when omitted (numbers → numeric).
    threshold
        Tests: the p-value level (default ``alpha``). Distances: a fixed threshold; when
        omitted, calibrated methods use the null (1 - α) quantile at this sample size and the
        others their default threshold.
    alpha
        False-alarm rate for tests and calibrated thresholds.
    n_bins, cap
        Bins for methods that run on samples through profiles.
    n_draws
        Null draws for calibration (default 300 on profiles and on samples).

    Returns
    -------
    DetectorResult
        ``drifted is None`` (no_data) when either side has too few non-missing values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> r = detect("ks", rng.normal(size=500), rng.normal(0.5, 1, size=500))
    >>> r.drifted, r.p_value < 1e-6
    (True, True)
    """
    m = get_method(method)
    if not 0.0 < alpha < 1.0:
        raise InvalidParameterError("alpha", alpha, "a number in (0, 1)")
    ref_is_profile = isinstance(reference, ColumnProfile)
    if ref_is_profile != isinstance(current, ColumnProfile):
        raise InvalidParameterError(
            "current", type(current).__name__, "the same form as reference (profiles or samples)"
        )
    if ref_is_profile:
        return _detect_profiles(
            m, reference, current, threshold, alpha, n_draws or calibration.DEFAULT_DRAWS
        )

    kind = kind or _infer_kind(reference)
    _check_kind(m, kind)
    if kind == "numeric" and m.on_samples is not None:
        r = as_float_array(reference)
        c = as_float_array(current)
        # samples: NaN is missing; ±inf are dropped too (undefined for moments and distances)
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        fallback = _fallback_threshold(m, threshold, alpha)
        if min(r.size, c.size) < m.min_size:
            return _no_data(m, fallback, int(r.size), int(c.size), "too few values")
        score = m.on_samples(r, c)
        if math.isnan(score.statistic):
            return _no_data(m, fallback, int(r.size), int(c.size), "statistic undefined")

        def null() -> npt.NDArray[Any]:
            assert m.on_samples is not None
            fn = m.on_samples
            return calibration.null_statistics_samples(
                m,
                lambda a, b: fn(a, b).statistic,
                r,
                int(c.size),
                n_draws or calibration.SAMPLE_DRAWS,
            )

        return _decide(m, score, int(r.size), int(c.size), threshold, alpha, null)
    if kind == "numeric":
        bins = ReferenceBins.numeric(reference, n_bins=n_bins)
        rp, cp = profile_numeric(reference, bins), profile_numeric(current, bins)
    else:
        bins = ReferenceBins.categorical(reference, cap=cap)
        rp, cp = profile_categorical(reference, bins), profile_categorical(current, bins)
    return _detect_profiles(m, rp, cp, threshold, alpha, n_draws or calibration.DEFAULT_DRAWS)


def _methods_for(
    name: str,
    ref: ColumnProfile,
    methods: Mapping[str, str | Sequence[str]] | Sequence[str] | None,
) -> list[str]:
    if methods is None:
        return [default_method_for_profile(ref)]
    if isinstance(methods, Mapping):
        chosen = methods.get(name)
        if chosen is None:
            return [default_method_for_profile(ref)]
        return [chosen] if isinstance(chosen, str) else list(chosen)
    # one list for every column: keep those that accept the column's kind
    return [m for m in methods if ref.kind in get_method(m).kinds]


def run_drift(
    reference: Mapping[str, ColumnProfile],
    current: Mapping[str, ColumnProfile],
    *,
    methods: Mapping[str, str | Sequence[str]] | Sequence[str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    fdr: bool = False,
) -> dict[str, list[DetectorResult]]:
    """Run drift methods on many columns from their profiles.

    Parameters
    ----------
    reference, current
        Column name → profile. Columns of ``reference`` absent from ``current`` (or with no
        values) give ``no_data`` results; extra current columns are ignored.
    methods
        ``None``: each column's default method (``selection``); a sequence: these methods on
        every column whose kind they accept; a mapping: per column (missing → default).
    thresholds
        Method name → explicit threshold (otherwise α for tests, calibrated for distances).
    alpha
        Test level / calibration quantile; with ``fdr=True`` the false discovery rate.
    fdr
        Decide tests and calibrated distances by Benjamini-Hochberg over every (column, method)
        of this run instead of each at α; ``details`` get ``q_value`` and ``raw_drifted``.
        Calibrated p-values at most α are recomputed from ``calibration.fdr_draws(m, α)``
        independent null draws (``details["null_draws"]``), so that one column alone among
        ``m`` can reach ``α / m`` (see ``calibration.refine_p_value``).

    Returns
    -------
    dict
        Column name → results, one per method, in ``methods`` order.
    """
    thresholds = dict(thresholds or {})
    if isinstance(methods, str):
        methods = [methods]
    for name in thresholds:
        get_method(name)  # a typo in a threshold key is an error, not a silent default
    out: dict[str, list[DetectorResult]] = {}
    chosen = {name: _methods_for(name, ref, methods) for name, ref in reference.items()}
    # with FDR, small calibrated p-values are refined with enough draws to reach alpha / m
    fdr_draws = (
        calibration.fdr_draws(sum(len(ms) for ms in chosen.values()), alpha) if fdr else None
    )
    for name, ref in reference.items():
        cur = current.get(name)
        results = []
        for method_name in chosen[name]:
            method = get_method(method_name)
            thr = thresholds.get(method_name)
            if cur is None:
                fallback = _fallback_threshold(method, thr, alpha)
                results.append(_no_data(method, fallback, int(ref.count), 0, "column missing"))
                continue
            results.append(
                _detect_profiles(method, ref, cur, thr, alpha, calibration.DEFAULT_DRAWS, fdr_draws)
            )
        out[name] = results
    if fdr:
        out = _apply_fdr(out, alpha)
    return out


def prepare_reference(
    reference: Mapping[str, ColumnProfile],
    methods: Mapping[str, str | Sequence[str]] | Sequence[str] | None = None,
    n_draws: int | None = None,
) -> int:
    """Draw and cache the large-sample null distributions of a reference's calibrated methods.

    Call it when a reference is set (or at start-up) so that the first window compared with it
    does not pay for the draws; windows large enough for the large-sample law (see
    ``calibration``) then only rescale cached statistics. Smaller windows still draw at their
    own size once. Returns how many null distributions were prepared.
    """
    prepared = 0
    if isinstance(methods, str):
        methods = [methods]
    for name, ref in reference.items():
        if ref.count == 0:
            continue
        for method_name in _methods_for(name, ref, methods):
            method = get_method(method_name)
            if method.calibrated and method.null_from_counts is not None:
                calibration.prepare_large_sample_null(
                    method, ref, n_draws or calibration.DEFAULT_DRAWS
                )
                prepared += 1
    return prepared


def _fdr_p(result: DetectorResult) -> float:
    if result.drifted is None:
        return float("nan")
    if result.p_value is not None:
        return result.p_value
    if result.details.get("threshold_source") != "calibrated":
        return float("nan")
    return float(result.details.get("null_p_value", float("nan")))


def apply_fdr(
    results: Sequence[DetectorResult], alpha: float = DEFAULT_ALPHA
) -> list[DetectorResult]:
    """Re-decide results by Benjamini-Hochberg at false discovery rate ``alpha``.

    Use it across everything one run tested (columns x segments x methods). Tests use their
    p-value, calibrated distances their ``null_p_value``; results with neither (explicit or
    default thresholds) and ``no_data`` results are returned unchanged. Re-decided results get
    ``details["q_value"]`` (BH-adjusted p-value), ``raw_drifted`` and ``fdr_alpha``.

    Parameters
    ----------
    results
        Results of one run, in any order.
    alpha
        Target false discovery rate.

    Returns
    -------
    list of DetectorResult
        Same order as ``results``.
    """
    items = list(results)
    p = np.array([_fdr_p(r) for r in items], dtype=np.float64)
    if not items:
        return []
    reject = calibration.benjamini_hochberg(p, alpha)
    q = calibration.bh_adjusted(p)
    out = []
    for r, rej, qv, pv in zip(items, reject, q, p, strict=True):
        if np.isnan(pv):
            out.append(r)
            continue
        details = {**r.details, "q_value": float(qv), "raw_drifted": r.drifted, "fdr_alpha": alpha}
        out.append(replace(r, drifted=bool(rej), details=details))
    return out


def _apply_fdr(
    results: dict[str, list[DetectorResult]], alpha: float
) -> dict[str, list[DetectorResult]]:
    flat = [(col, r) for col, rs in results.items() for r in rs]
    decided = iter(apply_fdr([r for _, r in flat], alpha))
    return {col: [next(decided) for _ in rs] for col, rs in results.items()}
