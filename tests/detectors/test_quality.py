"""Data-quality checks on profiles agree with direct computations on the raw values."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.errors import InvalidParameterError
from detectors.profiles import ReferenceBins, profile_categorical, profile_numeric
from detectors.quality import (
    constant_column,
    missing_rate,
    missing_rate_change,
    new_categories,
    out_of_range,
    schema_changes,
    type_errors,
)


def _with_nans(x: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    x = x.astype(float).copy()
    x[rng.random(x.size) < share] = np.nan
    return x


def test_missing_rate_and_change_match_raw_counts_and_merge() -> None:
    rng = np.random.default_rng(0)
    ref_x = _with_nans(rng.normal(size=5_000), 0.02, rng)
    bins = ReferenceBins.numeric(ref_x)
    hours = [_with_nans(rng.normal(size=400), 0.12, rng) for _ in range(6)]
    window = sum(profile_numeric(h, bins) for h in hours)  # a window is a sum of hours
    raw = np.concatenate(hours)
    r = missing_rate(window, column="age")
    assert r.value == pytest.approx(np.isnan(raw).mean())
    assert (r.column, r.n, r.breached, r.status) == ("age", raw.size, True, "alert")
    c = missing_rate_change(profile_numeric(ref_x, bins), window)
    assert c.value == pytest.approx(np.isnan(raw).mean() - np.isnan(ref_x).mean())
    assert c.breached is True
    same = missing_rate_change(profile_numeric(ref_x, bins), profile_numeric(ref_x[:2_000], bins))
    assert same.breached is False and same.status == "ok"


def test_out_of_range_counts_values_beyond_reference_min_and_max() -> None:
    rng = np.random.default_rng(1)
    ref_x = rng.normal(size=10_000)
    bins = ReferenceBins.numeric(ref_x)
    ref = profile_numeric(ref_x, bins)
    cur_x = rng.normal(0.5, 1.5, size=3_000)
    cur_x[:5] = [ref_x.min(), ref_x.max(), np.inf, -np.inf, np.nan]  # bounds are in range
    r = out_of_range(ref, profile_numeric(cur_x, bins), column="x")
    finite = cur_x[~np.isnan(cur_x)]
    expected = np.mean((finite < ref_x.min()) | (finite > ref_x.max()))
    assert r.details["above"] == np.sum(finite > ref_x.max())
    # below is estimated within about one row (ties at the reference minimum are ~1/N)
    assert r.value == pytest.approx(expected, abs=1.5 / finite.size)
    assert r.breached is True
    inside = out_of_range(ref, profile_numeric(rng.uniform(-1, 1, 1_000), bins))
    assert inside.value == 0.0 and inside.details["below_exact"] and inside.breached is False


def test_out_of_range_with_heavy_ties_at_the_minimum() -> None:
    # a zero-inflated integer column: many rows sit exactly at the reference minimum
    rng = np.random.default_rng(2)
    ref_x = np.where(rng.random(5_000) < 0.4, 0, rng.integers(1, 50, 5_000))
    bins = ReferenceBins.numeric(ref_x)
    cur_x = np.where(rng.random(2_000) < 0.4, 0, rng.integers(1, 50, 2_000))
    cur_x[:40] = -3  # 2 % below the minimum
    r = out_of_range(profile_numeric(ref_x, bins), profile_numeric(cur_x, bins))
    assert r.value == pytest.approx(0.02, abs=0.025)  # estimate: ties at 0 are sampled
    assert r.details["below"] >= 1
    same = out_of_range(profile_numeric(ref_x, bins), profile_numeric(ref_x[:2_000], bins))
    assert same.value == 0.0


def test_new_categories_share_and_names() -> None:
    rng = np.random.default_rng(3)
    ref_v = rng.choice(["a", "b", "c"], 5_000)
    bins = ReferenceBins.categorical(ref_v)
    ref = profile_categorical(ref_v, bins)
    cur_v = np.concatenate([rng.choice(["a", "b"], 950), ["zz"] * 40, ["yy"] * 10, [None] * 7])
    r = new_categories(ref, profile_categorical(cur_v, bins), column="colour")
    assert r.value == pytest.approx(50 / 1_000)
    assert r.new_categories == (("zz", 40), ("yy", 10))
    assert r.breached is True
    ok = new_categories(ref, profile_categorical(ref_v[:500], bins))
    assert ok.value == 0.0 and ok.new_categories == () and ok.breached is False


def test_new_categories_subtracts_the_capped_vocabularys_own_other_share() -> None:
    ref_v = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10)
    bins = ReferenceBins.categorical(ref_v, cap=2)  # "c" falls into "other" already
    r = new_categories(profile_categorical(ref_v, bins), profile_categorical(ref_v, bins))
    assert r.details["reference_share"] == pytest.approx(0.1)
    assert r.value == 0.0


def test_constant_columns() -> None:
    bins = ReferenceBins.numeric(np.arange(100.0))
    ref = profile_numeric(np.arange(100.0), bins)
    stuck = constant_column(profile_numeric(np.full(50, 7.0), bins), ref, column="x")
    assert stuck.value == 1.0 and stuck.breached is True
    assert constant_column(profile_numeric(np.arange(10.0), bins), ref).breached is False
    assert constant_column(profile_numeric([7.0, np.inf], bins), ref).breached is False
    assert constant_column(profile_numeric([np.nan], bins), ref).status == "no_data"
    const_ref = profile_numeric(np.full(10, 7.0), ReferenceBins.numeric(np.full(10, 7.0)))
    assert constant_column(const_ref, const_ref).breached is False  # expected to be constant
    cbins = ReferenceBins.categorical(["a", "b"])
    assert constant_column(profile_categorical(["a"] * 9, cbins)).breached is True
    assert constant_column(profile_categorical(["q"] * 9, cbins)).breached is True
    assert constant_column(profile_categorical(["q", "r"], cbins)).breached is False


def test_type_errors_and_schema_changes() -> None:
    r = type_errors(5, 995)
    assert r.value == pytest.approx(0.005) and r.breached is True and r.column is None
    assert type_errors(0, 10).breached is False
    assert type_errors(0, 0).status == "no_data"
    with pytest.raises(InvalidParameterError):
        type_errors(-1, 3)
    s = schema_changes(
        {"age": "numeric", "city": "categorical", "old": "text"},
        {"age": "categorical", "city": "categorical", "new": "boolean"},
    )
    assert s.added == ("new",) and s.removed == ("old",)
    assert s.changed == (("age", "numeric", "categorical"),)
    assert s.value == 3.0 and s.breached is True
    assert schema_changes({"a": "numeric"}, {"a": "numeric"}).breached is False


def test_mismatched_bins_and_bad_thresholds_are_rejected() -> None:
    a = profile_numeric([1.0, 2.0], ReferenceBins.numeric([1.0, 2.0]))
    b = profile_numeric([1.0, 2.0], ReferenceBins.numeric([0.0, 5.0]))
    with pytest.raises(InvalidParameterError, match="reference's bins"):
        out_of_range(a, b)
    with pytest.raises(InvalidParameterError, match="threshold"):
        missing_rate(a, threshold=1.5)
    with pytest.raises(InvalidParameterError, match="'categorical'"):
        new_categories(a, a)
