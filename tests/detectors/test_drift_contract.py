"""Contract every registered drift method must keep, plus registry, selection, BH and run_drift.

The contract tests are parametrised over the registry itself, so a newly registered method is
tested without anyone adding it here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import detectors.drift as drift
from detectors.drift import (
    available_methods,
    benjamini_hochberg,
    bh_adjusted,
    choose_method,
    detect,
    get_method,
    run_drift,
)
from detectors.errors import InvalidParameterError, UnknownNameError
from detectors.profiles import (
    ColumnProfile,
    ReferenceBins,
    profile_categorical,
    profile_numeric,
)
from detectors.result import DetectorResult

ALL = sorted(available_methods())
EXPECTED = {
    "anderson",
    "chi2",
    "cramer_von_mises",
    "energy_distance",
    "fisher_exact",
    "hellinger",
    "jensen_shannon",
    "kl_div",
    "ks",
    "new_category_share",
    "psi",
    "t_test",
    "tvd",
    "wasserstein",
}


def _data(method: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """A no-drift-ish pair of samples of a kind the method accepts (categorical preferred)."""
    m = get_method(method)
    rng = np.random.default_rng(seed)
    if "categorical" in m.kinds:
        labels = np.array(["yes", "no"] if m.binary_only else ["a", "b", "c", "d"], dtype=object)
        return (
            labels[rng.integers(0, labels.size, 400)],
            labels[rng.integers(0, labels.size, 300)],
            "categorical",
        )
    return rng.normal(size=400), rng.normal(size=300), "numeric"


def _profiles(r: np.ndarray, c: np.ndarray, kind: str) -> tuple[ColumnProfile, ColumnProfile]:
    if kind == "numeric":
        bins = ReferenceBins.numeric(r)
        return profile_numeric(r, bins), profile_numeric(c, bins)
    bins = ReferenceBins.categorical(r)
    return profile_categorical(r, bins), profile_categorical(c, bins)


def test_registry_holds_exactly_the_documented_methods() -> None:
    assert set(ALL) == EXPECTED
    doc = drift.__doc__ or ""
    for name in ALL:
        assert f"``{name}``" in doc, f"{name} missing from the method table in detectors.drift"


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        detect("kolmogorov", [1.0], [2.0])
    message = str(err.value)
    assert "kolmogorov" in message
    assert all(name in message for name in ALL)


def test_method_for_the_wrong_kind_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameterError, match="categorical"):
        detect("ks", np.array(["a", "b"], dtype=object), np.array(["a"], dtype=object))
    r = np.arange(10.0)
    rp, cp = _profiles(r, r, "numeric")
    with pytest.raises(InvalidParameterError, match="runs on profiles"):
        detect("anderson", rp, cp)


@pytest.mark.parametrize("method", ALL)
def test_descriptor_is_complete(method: str) -> None:
    m = get_method(method)
    assert m.name == method and m.display_name and m.description
    assert m.kinds and m.kinds <= {"numeric", "categorical"}
    assert m.score in {"p_value", "distance"}
    assert m.default_threshold > 0
    assert m.works_on_profiles or m.on_samples is not None
    if m.calibrated:
        assert m.score == "distance"
        assert m.null_from_counts is not None or m.on_samples is not None


@pytest.mark.parametrize("method", ALL)
def test_result_shape_and_p_value_range(method: str) -> None:
    r, c, kind = _data(method)
    forms = [(r, c)]
    if get_method(method).works_on_profiles:
        forms.append(_profiles(r, c, kind))
    for a, b in forms:
        res = detect(method, a, b, kind=kind)
        assert isinstance(res, DetectorResult) and res.method == method
        assert res.drifted in (True, False)
        assert math.isfinite(res.statistic) and math.isfinite(res.threshold)
        assert res.n_reference == 400 and res.n_current == 300
        if get_method(method).is_test:
            assert res.p_value is not None and 0.0 <= res.p_value <= 1.0
        else:
            assert res.p_value is None


@pytest.mark.parametrize("method", ALL)
def test_identical_data_shows_no_drift(method: str) -> None:
    r, _, kind = _data(method)
    res = detect(method, r, r.copy(), kind=kind)
    assert res.drifted is False
    if get_method(method).is_test:
        assert res.p_value > 0.2
    else:
        assert res.statistic == pytest.approx(0.0, abs=1e-12)
    if get_method(method).works_on_profiles:
        rp, cp = _profiles(r, r, kind)
        assert detect(method, rp, cp).drifted is False


@pytest.mark.parametrize("method", [m for m in ALL if available_methods()[m].symmetric])
def test_symmetric_methods_are_symmetric(method: str) -> None:
    r, c, kind = _data(method, seed=3)
    ab, ba = detect(method, r, c, kind=kind), detect(method, c, r, kind=kind)
    # |t| for the t-test; Fisher's odds ratio is unchanged because swapping the samples also
    # swaps the category order (the vocabulary follows the reference)
    assert abs(ab.statistic) == pytest.approx(abs(ba.statistic), rel=1e-9)
    if ab.p_value is not None:
        assert ab.p_value == pytest.approx(ba.p_value, rel=1e-9)


@pytest.mark.parametrize("method", ALL)
def test_permutation_invariance(method: str) -> None:
    r, c, kind = _data(method, seed=5)
    rng = np.random.default_rng(9)
    a = detect(method, r, c, kind=kind)
    b = detect(method, rng.permutation(r), rng.permutation(c), kind=kind)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-9, abs=1e-12)
    assert a.drifted == b.drifted
    if a.p_value is not None:
        assert a.p_value == pytest.approx(b.p_value, rel=1e-9)


@pytest.mark.parametrize("method", ALL)
def test_nan_and_empty_inputs_give_no_data(method: str) -> None:
    r, _, kind = _data(method)
    missing = (
        np.array([np.nan, np.nan]) if kind == "numeric" else np.array([None, None], dtype=object)
    )
    empty = np.array([], dtype=float if kind == "numeric" else object)
    for cur in (missing, empty):
        res = detect(method, r, cur, kind=kind)
        assert res.no_data and res.drifted is None and res.n_current == 0
        res = detect(method, cur, r, kind=kind)
        assert res.no_data and res.n_reference == 0
    if get_method(method).works_on_profiles:
        rp, _ = _profiles(r, r, kind)
        ep = (
            profile_numeric(missing, rp.bins)
            if kind == "numeric"
            else profile_categorical(missing, rp.bins)
        )
        assert detect(method, rp, ep).no_data
        assert detect(method, ep, rp).no_data


def test_profiles_on_different_bins_are_refused() -> None:
    r = np.arange(100.0)
    a = profile_numeric(r, ReferenceBins.numeric(r))
    b = profile_numeric(r, ReferenceBins.numeric(r + 1))
    with pytest.raises(InvalidParameterError, match="bins"):
        detect("psi", a, b)


def test_fisher_exact_refuses_more_than_two_categories() -> None:
    values = np.array(["a", "b", "c"], dtype=object)
    with pytest.raises(InvalidParameterError, match="binary"):
        detect("fisher_exact", values, values)


def test_fisher_exact_falls_back_to_chi2_when_current_brings_new_values() -> None:
    r = np.array(["yes", "no"] * 100, dtype=object)
    c = np.array(["yes", "no"] * 90 + ["maybe"] * 20, dtype=object)
    res = detect("fisher_exact", r, c)
    assert res.details["fallback"] == "chi2" and res.drifted is True
    assert res.p_value == pytest.approx(detect("chi2", r, c).p_value)


@pytest.mark.parametrize("method", ALL)
def test_results_are_plain_json(method: str) -> None:
    import json

    r, c, kind = _data(method, seed=7)
    forms = [(r, c)]
    if get_method(method).works_on_profiles:
        forms.append(_profiles(r, c, kind))
    for a, b in forms:
        res = detect(method, a, b, kind=kind)
        assert type(res.statistic) is float and type(res.threshold) is float
        assert res.p_value is None or type(res.p_value) is float
        json.dumps(res.details, allow_nan=False)


def test_new_category_share_names_the_new_values() -> None:
    r = np.array(["a", "b"] * 50, dtype=object)
    c = np.array(["a"] * 80 + ["x"] * 15 + ["y"] * 5, dtype=object)
    res = detect("new_category_share", r, c)
    assert res.statistic == pytest.approx(0.2) and res.drifted is True
    assert res.details["new_categories"] == [["x", 15], ["y", 5]]


# ---------------------------------------------------------------- selection -----------------
@pytest.mark.parametrize(
    ("kind", "n_ref", "n_unique", "expected"),
    [
        ("categorical", 500, 2, "fisher_exact"),
        ("categorical", 500, 7, "chi2"),
        ("categorical", 5000, 2, "jensen_shannon"),
        ("categorical", 5000, 900, "jensen_shannon"),
        ("numeric", 800, 4, "chi2"),
        ("numeric", 80_000, 3, "jensen_shannon"),
        ("numeric", 1000, 101, "ks"),
        ("numeric", 1001, 101, "wasserstein"),
    ],
)
def test_default_method_table(kind: str, n_ref: int, n_unique: int, expected: str) -> None:
    assert choose_method(kind, n_ref, n_unique) == expected  # type: ignore[arg-type]
    assert expected in (drift.selection.__doc__ or "")


# ---------------------------------------------------------------- BH ----------------------
def test_benjamini_hochberg_matches_a_direct_implementation() -> None:
    rng = np.random.default_rng(11)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 0.002, size=20)])
    p[3] = np.nan
    got = benjamini_hochberg(p, 0.1)
    valid = ~np.isnan(p)
    ps = np.sort(p[valid])
    m = ps.size
    k = max((i for i in range(1, m + 1) if ps[i - 1] <= 0.1 * i / m), default=0)
    cutoff = ps[k - 1] if k else -1.0
    assert np.array_equal(got, valid & (np.nan_to_num(p, nan=2.0) <= cutoff))
    q = bh_adjusted(p)
    assert np.array_equal(got, np.nan_to_num(q, nan=2.0) <= 0.1)
    assert math.isnan(q[3])


# ---------------------------------------------------------------- run_drift ---------------
def _columns(seed: int, shift: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 5000
    labels = np.array(["x", "y", "z"], dtype=object)
    return {
        "num_same": rng.normal(size=n),
        "num_shift": rng.normal(shift, 1.0, n),
        "cat": labels[rng.integers(0, 3, n)],
    }


def _profile_all(
    cols: dict[str, np.ndarray], bins: dict[str, ReferenceBins]
) -> dict[str, ColumnProfile]:
    return {
        k: profile_numeric(v, bins[k])
        if bins[k].kind == "numeric"
        else profile_categorical(v, bins[k])
        for k, v in cols.items()
    }


def test_run_drift_defaults_missing_columns_and_fdr() -> None:
    ref_cols, cur_cols = _columns(1, 0.0), _columns(2, 0.5)
    bins = {
        k: ReferenceBins.numeric(v) if v.dtype != object else ReferenceBins.categorical(v)
        for k, v in ref_cols.items()
    }
    ref, cur = _profile_all(ref_cols, bins), _profile_all(cur_cols, bins)
    del cur["cat"]
    out = run_drift(ref, cur)
    assert [r.method for r in out["num_shift"]] == ["wasserstein"]
    assert out["num_shift"][0].drifted is True
    assert out["num_same"][0].drifted is False
    assert out["cat"][0].no_data and out["cat"][0].method == "jensen_shannon"

    many = run_drift(ref, cur, methods=["ks", "psi", "chi2"], thresholds={"psi": 0.25}, fdr=True)
    assert [r.method for r in many["num_shift"]] == ["ks", "psi", "chi2"]
    assert [r.method for r in many["cat"]] == ["psi", "chi2"]  # ks does not take categorical
    psi = many["num_shift"][1]
    assert psi.threshold == 0.25 and psi.details["threshold_source"] == "explicit"
    ks = many["num_shift"][0]
    assert ks.drifted is True and ks.details["q_value"] <= 0.05 and "raw_drifted" in ks.details

    chosen = run_drift(ref, cur, methods={"num_same": ["t_test", "ks"]})
    assert [r.method for r in chosen["num_same"]] == ["t_test", "ks"]
    assert [r.method for r in chosen["num_shift"]] == ["wasserstein"]


@pytest.mark.parametrize(
    "module",
    ["detectors.profiles", "detectors.drift.run", "detectors.drift.calibration"],
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_apply_fdr_across_segments_keeps_order_and_leaves_explicit_thresholds() -> None:
    rng = np.random.default_rng(12)
    results = []
    for shift in (0.0, 0.0, 0.6, 0.0):
        r, c = rng.normal(size=500), rng.normal(shift, 1.0, 500)
        results.append(detect("ks", r, c))
        results.append(detect("psi", r, c))
        results.append(detect("psi", r, c, threshold=0.0))
    decided = drift.apply_fdr(results, 0.05)
    assert [r.method for r in decided] == [r.method for r in results]
    assert decided[6].drifted and decided[7].drifted  # the shifted segment
    for before, after in zip(results[2::3], decided[2::3], strict=True):
        assert after is before  # explicit threshold: not a p-value, left alone
    q = [r.details["q_value"] for i, r in enumerate(decided) if i % 3 != 2]
    assert all(0.0 <= v <= 1.0 for v in q)


def test_run_drift_accepts_one_method_name_and_rejects_unknown_threshold_keys() -> None:
    r = np.arange(100.0)
    bins = ReferenceBins.numeric(r)
    ref = {"x": profile_numeric(r, bins)}
    cur = {"x": profile_numeric(r + 0.5, bins)}
    assert [res.method for res in run_drift(ref, cur, methods="ks")["x"]] == ["ks"]
    with pytest.raises(UnknownNameError, match="wasserstien"):
        run_drift(ref, cur, thresholds={"wasserstien": 0.1})


def test_prepare_reference_caches_large_sample_nulls_without_changing_results() -> None:
    from detectors.drift import calibration

    ref_cols, cur_cols = _columns(21, 0.0), _columns(22, 0.02)
    bins = {
        k: ReferenceBins.numeric(v) if v.dtype != object else ReferenceBins.categorical(v)
        for k, v in ref_cols.items()
    }
    ref, cur = _profile_all(ref_cols, bins), _profile_all(cur_cols, bins)
    # 10,000 rows on both sides: the large-sample regime
    ref, cur = {k: p + p for k, p in ref.items()}, {k: p + p for k, p in cur.items()}
    calibration.clear_cache()
    cold = run_drift(ref, cur)
    calibration.clear_cache()
    assert drift.prepare_reference(ref) == 3  # wasserstein x2, jensen_shannon
    cached = len(calibration._NULLS.data)
    warm = run_drift(ref, cur)
    assert len(calibration._NULLS.data) == cached  # nothing new was drawn
    for col in ref:
        assert [(r.statistic, r.threshold) for r in warm[col]] == [
            (r.statistic, r.threshold) for r in cold[col]
        ]
