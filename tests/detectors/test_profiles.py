"""Profiles: bins, histograms, merging, JSON, and exact agreement with DuckDB."""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import column_values
from detectors.column_values import factorize_strings
from detectors.errors import InvalidParameterError
from detectors.profile_columns import profile_columns, profile_references
from detectors.profiles import (
    ColumnKind,
    ColumnProfile,
    ReferenceBins,
    profile_categorical,
    profile_categorical_from_counts,
    profile_numeric,
    profile_reference,
)

# Large enough (> 4 * grid cells) that profile_numeric takes its grid fast path.
BIG = 100_000


def _searchsorted_counts(x: np.ndarray, bins: ReferenceBins) -> np.ndarray:
    x = x[~np.isnan(x)]
    return np.bincount(np.searchsorted(bins.edges_array, x, side="left"), minlength=bins.n_buckets)


def _column_sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    out = {
        "normal": rng.normal(3.0, 2.0, BIG),
        "lognormal_heavy": rng.lognormal(0.0, 3.0, BIG),
        "integers": rng.integers(-20, 20, BIG).astype(float),
        "rounded": np.round(rng.normal(size=BIG), 2),
        "heavy_ties": np.where(rng.random(BIG) < 0.9, 0.0, rng.normal(size=BIG)),
        "huge_offset": 1e12 + rng.normal(size=BIG),
    }
    for v in out.values():
        v[:5] = np.inf
        v[5:9] = -np.inf
        v[9:20] = np.nan
    return out


# ---------------------------------------------------------------- bins ----------------------
def test_numeric_edges_are_strictly_increasing_finite_and_dedupe_ties() -> None:
    values = np.array([1, 1, 1, 1, 2, 2, 3, np.nan, np.inf, -np.inf])
    bins = ReferenceBins.numeric(values, n_bins=10)
    assert bins.edges == (1.0, 2.0, 3.0)
    assert bins.n_buckets == 4


def test_numeric_bins_of_constant_empty_and_nan_only_columns() -> None:
    assert ReferenceBins.numeric([5.0] * 10).edges == (5.0,)
    assert ReferenceBins.numeric([]).edges == ()
    assert ReferenceBins.numeric([np.nan, np.inf]).n_buckets == 1
    p = profile_numeric([1.0, 2.0, np.nan], ReferenceBins.numeric([]))
    assert p.counts.tolist() == [2] and p.count == 2 and p.missing == 1


def test_numeric_edges_start_at_min_end_at_max_and_integers_stay_integers() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 1000, 5000)
    bins = ReferenceBins.numeric(x)
    assert bins.edges[0] == x.min() and bins.edges[-1] == x.max()
    assert all(float(e).is_integer() for e in bins.edges)
    assert 90 <= len(bins.edges) <= 101


def test_large_reference_uses_subsample_but_keeps_exact_range() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=500_000)
    bins = ReferenceBins.numeric(x)
    assert bins.edges[0] == x.min() and bins.edges[-1] == x.max()
    # each inner bin holds about 1 % of the reference
    p = profile_numeric(x, bins)
    shares = p.counts[1:-1] / p.count
    assert np.all(np.abs(shares - 0.01) < 0.002)


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(InvalidParameterError, match="n_bins"):
        ReferenceBins.numeric([1.0], n_bins=0)
    with pytest.raises(InvalidParameterError, match="cap"):
        ReferenceBins.categorical(["a"], cap=0)
    with pytest.raises(InvalidParameterError, match="edges"):
        ReferenceBins("numeric", (2.0, 1.0))
    with pytest.raises(InvalidParameterError, match="kind"):
        ReferenceBins("text")  # type: ignore[arg-type]


def test_categorical_vocabulary_is_most_frequent_first_and_capped() -> None:
    values = ["b"] * 5 + ["a"] * 5 + ["c"] * 3 + ["d"] + [None, np.nan]
    bins = ReferenceBins.categorical(values, cap=3)
    assert bins.categories == ("a", "b", "c")  # tie a/b broken by name
    p = profile_categorical(values, bins)
    assert p.counts.tolist() == [5, 5, 3, 1]
    assert p.count == 14 and p.missing == 2
    assert p.unseen == (("d", 1),)


# ---------------------------------------------------------------- numeric profile ------------
@pytest.mark.parametrize("name", list(_column_sets()))
def test_fast_binning_equals_searchsorted(name: str) -> None:
    x = _column_sets()[name]
    bins = ReferenceBins.numeric(x[::-1].copy())
    p = profile_numeric(x, bins)
    assert np.array_equal(p.counts, _searchsorted_counts(x, bins))
    finite = x[np.isfinite(x)]
    assert p.count == np.count_nonzero(~np.isnan(x))
    assert p.missing == 11
    assert p.n_finite == finite.size
    assert p.min == finite.min() and p.max == finite.max()
    assert math.isclose(
        p.sum, math.fsum(finite), rel_tol=1e-12, abs_tol=1e-12 * np.abs(finite).sum()
    )


def test_compiled_profile_equals_the_numpy_definition_exactly() -> None:
    # the compiled loop (detectors.profile_kernels) must give the numbers of the plain numpy
    # definition bit for bit: the order statistics of the sample, the searchsorted buckets and
    # the sums over the finite values in their order; also for a strided, read-only view
    rng = np.random.default_rng(12)
    block = rng.lognormal(0.0, 1.0, (2, 300_000))
    block[0, ::97] = np.nan
    block[0, [10, 12, 14, 16]] = [np.inf, -np.inf, np.inf, 0.0]  # even: in the view
    x = block[0, ::2]  # strided
    x.setflags(write=False)
    bins = ReferenceBins.numeric(x)
    finite = x[np.isfinite(x)]
    sample = finite[np.random.default_rng(finite.size).integers(0, finite.size, 100_000)]
    order = np.sort(sample)
    idx = np.clip(np.ceil(np.linspace(0, 1, 101) * order.size).astype(np.int64) - 1, 0, None)
    q = order[idx]
    q[0], q[-1] = finite.min(), finite.max()
    assert bins.edges == tuple(np.unique(q).tolist())
    for p in (profile_numeric(x, bins), profile_reference(x, "numeric")):
        assert p.bins == bins
        assert np.array_equal(p.counts, _searchsorted_counts(x, bins))
        missing = int(np.isnan(x).sum())
        assert (p.count, p.missing, p.n_finite) == (x.size - missing, missing, finite.size)
        assert p.counts[0] >= 1 and p.counts[-1] >= 2  # -inf and +inf in the open buckets
        assert p.sum == float(np.sum(finite)) and p.sum_sq == float(np.dot(finite, finite))
        assert (p.min, p.max) == (finite.min(), finite.max())


def test_fast_binning_with_shifted_current_and_values_outside_reference() -> None:
    rng = np.random.default_rng(3)
    bins = ReferenceBins.numeric(rng.normal(size=BIG))
    cur = rng.normal(1.5, 3.0, BIG)
    cur[::7] = bins.edges_array[rng.integers(0, len(bins.edges), cur[::7].size)]  # exact edges
    p = profile_numeric(cur, bins)
    assert np.array_equal(p.counts, _searchsorted_counts(cur, bins))
    assert p.counts[0] > 0 and p.counts[-1] > 0


def test_inf_goes_to_open_buckets_but_not_into_sums() -> None:
    bins = ReferenceBins("numeric", (0.0, 1.0))
    p = profile_numeric([np.inf, -np.inf, 0.5, np.nan, None], bins)
    assert p.counts.tolist() == [1, 1, 1]
    assert (p.count, p.missing, p.n_finite) == (3, 2, 1)
    assert (p.min, p.max, p.sum, p.sum_sq) == (0.5, 0.5, 0.5, 0.25)
    assert p.mean == 0.5 and p.std == 0.0


def test_input_types_give_the_same_profile() -> None:
    bins = ReferenceBins("numeric", (0.0, 1.0, 2.0))
    ref = profile_numeric(np.array([0.0, 1.5, np.nan, 3.0]), bins)
    assert profile_numeric([0.0, 1.5, None, 3.0], bins) == ref
    assert profile_numeric(pd.Series([0, 1.5, None, 3], dtype="Float64"), bins) == ref
    assert profile_numeric(pa.array([0.0, 1.5, None, 3.0]), bins) == ref


# ---------------------------------------------------------------- merging -------------------
finite_or_special = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0]),
)


@settings(max_examples=60, deadline=None)
@given(
    ref=st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=60),
    parts=st.lists(st.lists(finite_or_special, max_size=40), min_size=1, max_size=5),
)
def test_numeric_sum_of_parts_equals_profile_of_concatenation(
    ref: list[float], parts: list[list[float]]
) -> None:
    bins = ReferenceBins.numeric(ref, n_bins=7)
    merged = ColumnProfile.merge(profile_numeric(np.array(p, dtype=float), bins) for p in parts)
    whole = profile_numeric(np.concatenate([np.array(p, dtype=float) for p in parts]), bins)
    assert np.array_equal(merged.counts, whole.counts)
    assert (merged.count, merged.missing, merged.n_finite) == (
        whole.count,
        whole.missing,
        whole.n_finite,
    )
    assert (merged.min, merged.max) == (whole.min, whole.max)
    assert math.isclose(merged.sum, whole.sum, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(merged.sum_sq, whole.sum_sq, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    ref=st.lists(st.sampled_from("abcdefg"), max_size=50),
    parts=st.lists(st.lists(st.sampled_from([*"abcdefghij", None]), max_size=30), min_size=1),
)
def test_categorical_sum_of_parts_equals_profile_of_concatenation(
    ref: list[str], parts: list[list[str | None]]
) -> None:
    bins = ReferenceBins.categorical(ref, cap=4)
    merged = sum(profile_categorical(p, bins) for p in parts)
    whole = profile_categorical([v for p in parts for v in p], bins)
    assert isinstance(merged, ColumnProfile)
    assert np.array_equal(merged.counts, whole.counts)
    assert (merged.count, merged.missing) == (whole.count, whole.missing)
    # with fewer than max_unseen distinct unseen values, merged names and counts are exact
    assert dict(merged.unseen) == dict(whole.unseen)


def test_merging_profiles_on_different_bins_is_a_clear_error() -> None:
    a = profile_numeric([1.0], ReferenceBins("numeric", (0.0, 1.0)))
    b = profile_numeric([1.0], ReferenceBins("numeric", (0.0, 2.0)))
    with pytest.raises(InvalidParameterError, match="different reference bins"):
        _ = a + b


def test_unseen_values_are_bounded_and_most_frequent_first() -> None:
    bins = ReferenceBins("categorical", categories=("a",))
    values = ["a"] + [f"n{i}" for i in range(30) for _ in range(i + 1)]
    p = profile_categorical(values, bins, max_unseen=3)
    assert p.unseen == (("n29", 30), ("n28", 29), ("n27", 28))
    assert p.counts[-1] == sum(range(1, 31))


def test_categorical_input_types_agree() -> None:
    rng = np.random.default_rng(4)
    cats = np.array([f"c{i}" for i in range(50)], dtype=object)
    values = cats[rng.integers(0, 50, 5000)]
    values[::97] = None
    bins = ReferenceBins.categorical(values[:2000], cap=30)
    base = profile_categorical(values, bins)
    assert profile_categorical(list(values), bins) == base
    assert profile_categorical(pd.Series(values), bins) == base
    assert profile_categorical(pa.array(values), bins) == base
    assert profile_categorical(pa.chunked_array([values[:100], values[100:]]), bins) == base


def _labels_by_factorize(values: object) -> tuple[list[str], np.ndarray, int]:
    codes, labels, missing = factorize_strings(values)
    return labels, np.bincount(codes[codes >= 0], minlength=len(labels)), missing


def test_long_object_columns_are_grouped_by_identity_with_the_same_labels_and_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # count_labels groups a long object array by object identity first and hashes only the
    # distinct objects: same labels (first-appearance order, str() collisions merged), counts
    # and missing as pandas.factorize over every value, for tricky values and layouts
    rng = np.random.default_rng(21)
    distinct = [f"x{i}" for i in range(40)] + ["a", "b", "1", 1, 1.0, True, 2.5, None, pd.NA]
    distinct += [float("nan") for _ in range(3)] + ["".join(["a", "b"]) for _ in range(3)]
    pool = np.array([*distinct, "ab"], dtype=object)
    values = pool[rng.integers(0, pool.size, 3 * BIG)]
    layouts = (values, values[::3], values[::-1], pd.Series(values[7:]))
    sizes: list[int] = []
    real = column_values.factorize_strings

    def spy(v: object) -> tuple[np.ndarray, list[str], int]:
        sizes.append(len(v))  # type: ignore[arg-type]
        return real(v)

    for v in layouts:
        expected = _labels_by_factorize(v)
        monkeypatch.setattr(column_values, "factorize_strings", spy)
        labels, counts, missing = column_values.count_labels(v)
        monkeypatch.setattr(column_values, "factorize_strings", real)
        assert labels == expected[0] and missing == expected[2]
        assert counts.dtype == np.int64 and counts.tolist() == expected[1].tolist()
    assert sizes and max(sizes) <= pool.size  # only the distinct objects were hashed
    # more distinct objects than the identity table takes (ID-like): pandas hashes them all
    ids = np.array([f"id{i}" for i in rng.integers(0, 10**6, 3 * BIG)], dtype=object)
    labels, counts, missing = column_values.count_labels(ids)
    expected = _labels_by_factorize(ids)
    assert (labels, counts.tolist(), missing) == (expected[0], expected[1].tolist(), 0)
    bins = ReferenceBins("categorical", categories=("a", "x1", "1"))
    assert profile_categorical(values, bins) == profile_categorical(list(values), bins)


# ---------------------------------------------------------------- JSON ----------------------
def test_json_round_trip_numeric_and_categorical() -> None:
    rng = np.random.default_rng(5)
    nb = ReferenceBins.numeric(rng.normal(size=1000) / 3.0)
    cb = ReferenceBins.categorical(["x", "y", "y", "z"], cap=2)
    for prof in (
        profile_numeric(np.append(rng.normal(size=500), [np.nan, np.inf]), nb),
        profile_numeric([], nb),
        profile_categorical(["x", "y", "q", None], cb),
    ):
        again = ColumnProfile.from_dict(json.loads(json.dumps(prof.to_dict())))
        assert again == prof
        assert again.bins.key == prof.bins.key
        assert again.fingerprint == prof.fingerprint
    assert ReferenceBins.from_dict(json.loads(json.dumps(nb.to_dict()))) == nb


# ---------------------------------------------------------------- DuckDB --------------------
def _duckdb_profile(x: np.ndarray, edges: tuple[float, ...]) -> tuple[np.ndarray, tuple]:
    con = duckdb.connect()
    table = pa.table({"x": pa.array(x, type=pa.float64())})  # keeps NaN as NaN, not NULL
    con.register("t", table)
    edge_list = "[" + ", ".join(repr(float(e)) for e in edges) + "]::DOUBLE[]"
    hist, n, n_finite, missing, lo, hi, s, s2 = con.execute(
        f"""
        SELECT histogram(x, {edge_list}) FILTER (WHERE NOT isnan(x)),
               count(x) FILTER (WHERE NOT isnan(x)),
               count(x) FILTER (WHERE isfinite(x)),
               count(*) - count(x) FILTER (WHERE NOT isnan(x)),
               min(x) FILTER (WHERE isfinite(x)),
               max(x) FILTER (WHERE isfinite(x)),
               sum(x) FILTER (WHERE isfinite(x)),
               sum(x * x) FILTER (WHERE isfinite(x))
        FROM t
        """
    ).fetchone()
    counts = np.zeros(len(edges) + 1, dtype=np.int64)
    position = {float(e): i for i, e in enumerate(edges)}
    for key, c in (hist or {}).items():
        # the overflow bucket's key is +inf for DOUBLE (the max integer for BIGINT)
        counts[position.get(float(key), len(edges))] += c
    return counts, (n, n_finite, missing, lo, hi, s, s2)


@pytest.mark.parametrize("name", list(_column_sets()))
def test_profile_agrees_exactly_with_duckdb(name: str) -> None:
    x = _column_sets()[name]
    bins = ReferenceBins.numeric(np.sort(x)[::3])
    p = profile_numeric(x, bins)
    counts, (n, n_finite, missing, lo, hi, s, s2) = _duckdb_profile(x, bins.edges)
    assert np.array_equal(p.counts, counts)
    assert (p.count, p.n_finite, p.missing, p.min, p.max) == (n, n_finite, missing, lo, hi)
    finite = x[np.isfinite(x)]
    scale = float(np.abs(finite).sum())
    assert math.isclose(p.sum, s, rel_tol=1e-12, abs_tol=1e-12 * scale)
    assert math.isclose(p.sum_sq, s2, rel_tol=1e-12)


def test_duckdb_bigint_histogram_overflow_key_is_max_int() -> None:
    con = duckdb.connect()
    (hist,) = con.execute("SELECT histogram(x, [1, 2, 3]) FROM range(0, 6) r(x)").fetchone()
    assert hist == {1: 2, 2: 1, 3: 1, 2**63 - 1: 2}
    bins = ReferenceBins("numeric", (1.0, 2.0, 3.0))
    assert profile_numeric(np.arange(6), bins).counts.tolist() == [2, 1, 1, 2]


def test_profile_reference_equals_bins_then_profile() -> None:
    rng = np.random.default_rng(8)
    x = rng.gamma(2.0, 2.0, 150_000)
    x[::50] = np.nan
    p = profile_reference(x, "numeric")
    assert p == profile_numeric(x, ReferenceBins.numeric(x))
    cats = np.array([f"c{i}" for i in range(40)], dtype=object)
    s = cats[rng.integers(0, 40, 10_000)]
    s[::13] = None
    p = profile_reference(s, "categorical", cap=25)
    bins = ReferenceBins.categorical(s, cap=25)
    assert p.bins == bins and p == profile_categorical(s, bins)
    with pytest.raises(InvalidParameterError, match="kind"):
        profile_reference(s, "text")  # type: ignore[arg-type]


def test_log_grid_for_skewed_columns_handles_zero_and_negative_values() -> None:
    rng = np.random.default_rng(9)
    bins = ReferenceBins.numeric(rng.lognormal(0.0, 3.0, BIG))
    assert bins.grid.enabled and bins.grid.log
    cur = np.concatenate([rng.lognormal(0.5, 3.0, BIG), rng.normal(0, 1, 1000), [0.0, -0.0]])
    cur[:3] = [-np.inf, np.inf, 1e-320]  # subnormal, below every edge
    p = profile_numeric(cur, bins)
    assert np.array_equal(p.counts, _searchsorted_counts(cur, bins))


def test_categorical_profile_from_group_by_counts_equals_profile_of_values() -> None:
    rng = np.random.default_rng(10)
    cats = np.array([f"c{i}" for i in range(30)], dtype=object)
    values = cats[rng.integers(0, 30, 3000)]
    values[::17] = None
    bins = ReferenceBins.categorical(values[:500], cap=12)
    con = duckdb.connect()
    con.register("t", pa.table({"v": pa.array(values, type=pa.string())}))
    rows = con.execute("SELECT v, count(*) FROM t WHERE v IS NOT NULL GROUP BY v").fetchall()
    (missing,) = con.execute("SELECT count(*) FROM t WHERE v IS NULL").fetchone()
    p = profile_categorical_from_counts(rows, bins, missing=missing)
    assert p == profile_categorical(values, bins)


def test_top_categories_match_a_full_sort_also_for_id_like_columns() -> None:
    rng = np.random.default_rng(11)
    ids = np.array([f"id{i:07d}" for i in rng.integers(0, 400_000, 300_000)], dtype=object)
    bins = ReferenceBins.categorical(ids, cap=50)
    labels, counts = np.unique(ids, return_counts=True)
    expected = sorted(
        zip(labels.tolist(), counts.tolist(), strict=True), key=lambda t: (-t[1], t[0])
    )[:50]
    assert bins.categories == tuple(name for name, _ in expected)
    p = profile_categorical(ids, ReferenceBins("categorical", categories=("x",)), max_unseen=7)
    assert p.unseen == tuple(expected[:7])


def test_profile_columns_in_parallel_equal_the_per_column_profiles() -> None:
    rng = np.random.default_rng(13)
    cats = np.array([f"c{i}" for i in range(50)], dtype=object)
    cols = {f"x{i}": rng.gamma(2.0 + i, 2.0, BIG) for i in range(5)}
    cols |= {"s": cats[rng.integers(0, 50, BIG)], "t": cats[rng.integers(0, 7, BIG)]}
    kinds: dict[str, ColumnKind] = {c: "categorical" if c in "st" else "numeric" for c in cols}
    refs = profile_references(cols, kinds, n_bins=30, workers=3)
    assert list(refs) == list(kinds)
    for c, k in kinds.items():
        assert refs[c] == profile_reference(cols[c], k, n_bins=30)
    cur = {c: v[::-1].copy() for c, v in cols.items()}
    bins = {c: p.bins for c, p in refs.items()}
    got = profile_columns(cur, bins, max_unseen=3)
    assert list(got) == list(bins)
    for c, b in bins.items():
        one = profile_numeric(cur[c], b) if b.kind == "numeric" else None
        assert got[c] == (one or profile_categorical(cur[c], b, max_unseen=3))
    with pytest.raises(InvalidParameterError, match="columns") as err:
        profile_columns({"x0": cols["x0"]}, bins)
    assert "x1" in str(err.value)


def test_warm_up_loads_every_variant_profiling_calls() -> None:
    # after warm_up, profiling numpy (writable) and Arrow (read-only) columns, with and without
    # the grid, compiles nothing more: the first window of a process does not wait for numba
    from detectors import profile_kernels

    profile_kernels.warm_up()
    kernels = (
        profile_kernels.split_finite,
        profile_kernels.bucket_index,
        profile_kernels.add_counts,
        profile_kernels.count_objects,
    )
    before = [len(k.signatures) for k in kernels]
    rng = np.random.default_rng(14)
    x = rng.normal(size=BIG)
    x[::9] = np.nan
    for values in (x, pa.array(x, from_pandas=True), x[:50]):
        profile_reference(values, "numeric")
        profile_numeric(values, ReferenceBins("numeric", (0.0,)))
    strings = np.array(["a", "b", None], dtype=object)[rng.integers(0, 3, BIG)]
    profile_reference(strings, "categorical")
    assert [len(k.signatures) for k in kernels] == before
