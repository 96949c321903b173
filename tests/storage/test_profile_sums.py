"""``storage.profiles._summed``: a window's stored profile rows summed per segment and column
give, bit for bit, what summing each group on its own gave (the per-group loop it replaced,
kept here as the reference): integer totals, min/max of the non-NaN values, ``nansum`` of the
moments (the same pairwise summation), the histograms, the category counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from storage.profiles import ROWS_COLUMN, RawProfile, _groups, _summed


def _reference(tbl: pa.Table) -> dict[tuple[str, str], dict[tuple[str, str], RawProfile]]:
    out: dict[tuple[str, str], dict[tuple[str, str], RawProfile]] = {}
    groups = _groups(tbl, None)
    num = {
        name: tbl.column(name).to_numpy(zero_copy_only=False)
        for name in ("count", "missing", "n_finite", "min", "max", "sum", "sum_sq")
    }
    lists = tbl.column("counts").combine_chunks()
    offsets = lists.offsets.to_numpy()
    flat = lists.values.to_numpy(zero_copy_only=False)
    cat_names = tbl.column("categories").to_pylist()
    for (t, v, c, k), idx in groups.items():
        n, miss = int(num["count"][idx].sum()), int(num["missing"][idx].sum())
        if cat_names[idx[0]] is not None:
            cats: dict[str, int] = {}
            for i in idx:
                for name, cnt in zip(
                    cat_names[i], flat[offsets[i] : offsets[i + 1]].tolist(), strict=True
                ):
                    cats[name] = cats.get(name, 0) + cnt
            prof = RawProfile(n, miss, 0, categories=cats)
        else:
            lo, hi = num["min"][idx], num["max"][idx]
            lo, hi = lo[~np.isnan(lo)], hi[~np.isnan(hi)]
            counts = None
            if c != ROWS_COLUMN:
                counts = np.add.reduce(
                    [flat[offsets[i] : offsets[i + 1]] for i in idx], dtype=np.int64
                )
            prof = RawProfile(
                n, miss, int(num["n_finite"][idx].sum()),
                float(lo.min()) if lo.size else None, float(hi.max()) if hi.size else None,
                float(np.nansum(num["sum"][idx])), float(np.nansum(num["sum_sq"][idx])), counts,
            )  # fmt: skip
        out.setdefault((t, v), {})[(c, k)] = prof
    return out


def _table(rng: np.random.Generator, hours: int) -> pa.Table:
    """Profile rows of ``hours`` hours (some segments missing some hours, so groups have
    different sizes): 3 numeric columns (two bin sets), a categorical one, the rows column."""
    rows: dict[str, list[Any]] = {k: [] for k in (
        "us", "tenant_id", "model_version", "column_name", "bins_key", "count", "missing",
        "n_finite", "min", "max", "sum", "sum_sq", "counts", "categories",
    )}  # fmt: skip
    for h in range(hours):
        for t in ("a", "b", "c"):
            for v in ("v1", "v2"):
                if rng.random() < 0.2:
                    continue
                for col, key, width in (("n0", "k8", 8), ("n1", "k8", 8), ("n2", "k3", 3),
                                        ("c0", "", 0), (ROWS_COLUMN, "", 0)):  # fmt: skip
                    n = int(rng.integers(0, 500))
                    empty = rng.random() < 0.15  # an hour without finite values
                    scale = 10.0 ** rng.integers(-4, 9)
                    rows["us"].append(h * 3_600_000_000)
                    rows["tenant_id"].append(t)
                    rows["model_version"].append(v)
                    rows["column_name"].append(col)
                    rows["bins_key"].append(key)
                    rows["count"].append(n)
                    rows["missing"].append(int(rng.integers(0, 10)))
                    rows["n_finite"].append(0 if empty else n)
                    lo = None if empty else float(rng.normal() * scale)
                    rows["min"].append(lo)
                    rows["max"].append(None if lo is None else lo + abs(rng.normal()) * scale)
                    rows["sum"].append(float("nan") if empty else float(rng.normal() * scale * n))
                    rows["sum_sq"].append(None if empty else float(rng.random() * scale**2 * n))
                    if col == "c0":
                        names = sorted({str(x) for x in rng.integers(0, 6, 3)})
                        rows["counts"].append([int(x) for x in rng.integers(0, 50, len(names))])
                        rows["categories"].append(names)
                    else:
                        rows["counts"].append([int(x) for x in rng.integers(0, 1000, width)])
                        rows["categories"].append(None)
    return pa.table(
        {
            **{k: rows[k] for k in ("us", "tenant_id", "model_version", "column_name", "bins_key")},
            **{k: pa.array(rows[k], pa.int64()) for k in ("count", "missing", "n_finite")},
            **{k: pa.array(rows[k], pa.float64()) for k in ("min", "max", "sum", "sum_sq")},
            "counts": pa.array(rows["counts"], pa.list_(pa.int64())),
            "categories": pa.array(rows["categories"], pa.list_(pa.string())),
        }
    )


def _bits(p: RawProfile) -> tuple[Any, ...]:
    f = [None if x is None else np.float64(x).tobytes() for x in (p.min, p.max, p.sum, p.sum_sq)]
    counts = None if p.counts is None else (p.counts.dtype.str, p.counts.tolist())
    cats = None if p.categories is None else list(p.categories.items())
    return (p.count, p.missing, p.n_finite, *f, counts, cats)


def test_window_sums_equal_summing_each_group_alone() -> None:
    rng = np.random.default_rng(17)
    for hours in (1, 2, 24, 24, 168):
        tbl = _table(rng, hours)
        got, want = _summed(tbl, None), _reference(tbl)
        assert list(got) == list(want)
        for seg in want:
            assert list(got[seg]) == list(want[seg])
            for key in want[seg]:
                assert _bits(got[seg][key]) == _bits(want[seg][key]), (seg, key)
        assert any(p.min is None for s in got.values() for p in s.values())
