"""The profile-engine contract: what every implementation of ``monitor.ports.ProfileEngine``
(and the ``LogReader`` beside it) must do, run against every engine.

The monitors, KPIs and dashboard do not know which engine made the profiles, so every engine
must give the *same* rows: counts, missing, finite counts, min, max and histograms exactly equal
to the detectors' numpy profiles of the same rows (``detectors.profiles``), float sums within
the repo's 1e-12 relative tolerance; a window is the sum of its hours; rows arriving late for a
profiled hour show up in ``refresh`` and only that hour is recomputed; new bin sets recompute
hours without marking them changed; the same seed gives the same bounded sample.

Adding an engine
----------------
Write a factory ``def _my_engine(tmp_path, schema) -> Iterator[EngineCase]`` (a generator: set
up, ``yield`` the case, tear down) and add one entry to :data:`ENGINES`. The case says how rows
reach the place the engine reads them (``append``/``append_labels``: the embedded store, a
Parquet lake, both) and hands over the engine and the log reader under test. Every test below
then runs on it; nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from detectors.profiles import ReferenceBins, profile_categorical, profile_numeric
from monitor.ports import LogReader, ProfileEngine
from storage.log_reads import LogReads
from storage.logstore import LogStore
from storage.profiles import ROWS_COLUMN, ProfileSpec, ProfileStore, RawProfile, edges_key
from storage.types import FeatureSpec, ModelSchema

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MODEL = "churn"
SCHEMA = ModelSchema(
    "binary",
    (
        FeatureSpec("x", "numeric"),
        FeatureSpec("k", "numeric"),
        FeatureSpec("plan", "categorical"),
        FeatureSpec("city", "categorical"),
        FeatureSpec("mobile", "boolean"),
    ),
    scores=("score",),
)
TS = pa.timestamp("us", tz="UTC")


@dataclass
class EngineCase:
    """One engine under test and how rows reach what it reads."""

    name: str
    engine: ProfileEngine
    logs: LogReader
    append: Callable[[str, pa.Table], Any]
    append_labels: Callable[[str, pa.Table], Any]


def _duckdb(tmp_path: Path, schema: ModelSchema) -> Iterator[EngineCase]:
    """The embedded engine: DuckDB tables, the profile kernel over Arrow batches."""
    ls = LogStore(":memory:")
    ls.ensure_model(MODEL, schema)
    yield EngineCase(
        "duckdb",
        ProfileStore(ls, batch_rows=4096),  # small batches: several per range
        LogReads(ls),
        ls.append_inferences,
        ls.append_labels,
    )
    ls.close()


# name -> factory; one entry per engine (see the module docstring)
ENGINES: dict[str, Callable[[Path, ModelSchema], Iterator[EngineCase]]] = {
    "duckdb": _duckdb,
}


@pytest.fixture(params=sorted(ENGINES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineCase]:
    yield from ENGINES[request.param](tmp_path, SCHEMA)


def rows(n: int, seed: int, start: datetime = T0, hours: int = 24, prefix: str = "r") -> pa.Table:
    """Inference rows with NaN, ±inf, a huge value, integers sitting on bin edges, NULL
    categories, a categorical with more values (400) than any top-K keeps, several tenants and
    versions."""
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.03] = np.nan
    x[:3] = [np.inf, -np.inf, 1e300]
    k = rng.integers(0, 6, n).astype(float)  # integer values sitting exactly on bin edges
    plan = rng.choice(np.array(["free", "pro", "team", "enterprise", None], dtype=object), n)
    city = np.array([f"c{int(v):03d}" for v in rng.zipf(1.3, n) % 400], dtype=object)
    city[rng.random(n) < 0.05] = None
    secs = rng.uniform(0, hours * 3600, n)
    return pa.table(
        {
            "request_id": [f"{prefix}{seed}-{i}" for i in range(n)],
            "ts": pa.array([start + timedelta(seconds=float(s)) for s in secs], TS),
            "tenant_id": rng.choice(["acme", "globex", "initech"], n),
            "model_version": rng.choice(["v1", "v2"], n),
            "x": pa.array(x, pa.float64(), from_pandas=False),  # keeps NaN as NaN
            "k": pa.array(np.where(rng.random(n) < 0.02, np.nan, k), pa.float64()),
            "plan": pa.array(plan, pa.string()),
            "city": pa.array(city, pa.string()),
            "mobile": pa.array(rng.random(n) < 0.3),
            "prediction": pa.array(rng.integers(0, 2, n), pa.int32()),
            "score": rng.random(n),
        }
    )


def _bins(seed: int) -> dict[str, ReferenceBins]:
    ref = rows(3000, seed)
    return {
        "x": ReferenceBins.numeric(ref.column("x").to_numpy(zero_copy_only=False)),
        "k": ReferenceBins.numeric(ref.column("k").to_numpy(zero_copy_only=False)),
    }


def _assert_numeric_equal(got: RawProfile, values: np.ndarray, bins: ReferenceBins) -> None:
    want = profile_numeric(values, bins)
    assert np.array_equal(got.counts, want.counts)
    assert (got.count, got.missing, got.n_finite, got.min, got.max) == (
        want.count,
        want.missing,
        want.n_finite,
        want.min,
        want.max,
    )
    finite = values[np.isfinite(values)]
    scale = float(np.abs(finite).sum()) or 1.0
    assert math.isclose(got.sum, want.sum, rel_tol=1e-12, abs_tol=1e-12 * scale)
    assert math.isclose(got.sum_sq, want.sum_sq, rel_tol=1e-12, abs_tol=1e-300)


def test_profiles_equal_numpy_profiles_per_segment_and_hour(case: EngineCase) -> None:
    data = rows(20_000, 1)
    case.append(MODEL, data)
    bins = _bins(2)
    coarse = ReferenceBins.numeric(data.column("x").to_numpy(zero_copy_only=False), n_bins=7)
    spec = ProfileSpec(
        {"x": (bins["x"].edges, coarse.edges), "k": (bins["k"].edges,)}, ("plan", "city", "mobile")
    )
    case.engine.register(MODEL, spec)
    assert case.engine.ensure(MODEL, T0, T0 + timedelta(days=1)) == 20_000
    df = data.to_pandas()
    for start, end in [
        (T0, T0 + timedelta(days=1)),
        (T0 + timedelta(hours=5), T0 + timedelta(hours=6)),
    ]:
        window = case.engine.window(MODEL, start, end)
        sel = df[(df.ts >= start) & (df.ts < end)]
        assert sum(p[(ROWS_COLUMN, "")].count for p in window.values()) == len(sel)
        segments = {(str(t), str(v)) for t, v in zip(sel.tenant_id, sel.model_version, strict=True)}
        assert set(window) == segments
        for (tenant, version), cols in window.items():
            part = sel[(sel.tenant_id == tenant) & (sel.model_version == version)]
            for col, b in [("x", bins["x"]), ("x", coarse), ("k", bins["k"])]:
                _assert_numeric_equal(cols[(col, edges_key(b.edges))], part[col].to_numpy(), b)
            cats = cols[("plan", "")]
            want_c = profile_categorical(
                part["plan"].to_numpy(), ReferenceBins.categorical(["free", "pro"])
            )
            assert (cats.count, cats.missing) == (want_c.count, want_c.missing)
            assert cats.categories == part["plan"].value_counts().to_dict()
            city = cols[("city", "")]  # every value kept: top-K is applied when read
            assert city.categories == part["city"].value_counts().to_dict()
            assert city.missing == int(part["city"].isna().sum())
            mobile = cols[("mobile", "")]
            assert mobile.categories == {
                str(k).lower(): int(v) for k, v in part["mobile"].value_counts().items()
            }


def test_window_is_the_sum_of_its_hours(case: EngineCase) -> None:
    case.append(MODEL, rows(5000, 3))
    b = _bins(4)["x"]
    case.engine.register(MODEL, ProfileSpec({"x": (b.edges,)}))
    case.engine.ensure(MODEL, T0, T0 + timedelta(days=1))
    key = ("x", edges_key(b.edges))
    day = case.engine.window(MODEL, T0, T0 + timedelta(days=1), [key], tenant_id="acme")
    total = RawProfile()
    for h in range(24):
        hour = case.engine.window(
            MODEL, T0 + timedelta(hours=h), T0 + timedelta(hours=h + 1), [key], "acme"
        )
        for cols in hour.values():
            total = total + cols[key]
    merged = sum((c[key] for c in day.values()), RawProfile())
    assert np.array_equal(merged.counts, total.counts)
    assert (merged.count, merged.missing, merged.min, merged.max) == (
        total.count,
        total.missing,
        total.min,
        total.max,
    )


def test_late_rows_appear_in_the_changes_and_only_their_hour_is_recomputed(
    case: EngineCase,
) -> None:
    eng = case.engine
    case.append(MODEL, rows(4000, 5))
    b = _bins(6)["x"]
    eng.register(MODEL, ProfileSpec({"x": (b.edges,)}))
    day = (T0, T0 + timedelta(days=1))
    assert eng.ensure(MODEL, *day) == 4000
    assert eng.ensure(MODEL, *day) == 0  # nothing to do
    before = eng.hours(MODEL, *day)
    assert len(before) == 24 and not any(i["dirty"] for i in before.values())
    late = rows(50, 7, start=T0 + timedelta(hours=3), hours=1, prefix="late")
    case.append(MODEL, late)
    h3 = T0 + timedelta(hours=3)
    assert eng.refresh(MODEL) == [h3]
    assert eng.hours(MODEL, *day)[h3]["dirty"]
    scanned = eng.ensure(MODEL, *day)
    after = eng.hours(MODEL, *day)
    assert scanned == before[h3]["rows"] + 50
    assert after[h3]["rows"] == before[h3]["rows"] + 50 and not after[h3]["dirty"]
    assert after[h3]["changed_at"] >= before[h3]["changed_at"]
    for h, info in before.items():
        if h != h3:
            assert after[h]["changed_at"] == info["changed_at"]
            assert after[h]["computed_at"] == info["computed_at"]
    w = eng.window(MODEL, h3, h3 + timedelta(hours=1))
    assert sum(c[(ROWS_COLUMN, "")].count for c in w.values()) == after[h3]["rows"]
    # the recomputed hour equals the numpy profile of all its rows, late ones included
    df = pa.concat_tables([rows(4000, 5), late]).to_pandas()
    part = df[(df.ts >= h3) & (df.ts < h3 + timedelta(hours=1))]
    merged = sum((c[("x", edges_key(b.edges))] for c in w.values()), RawProfile())
    _assert_numeric_equal(merged, part["x"].to_numpy(), b)


def test_new_bins_recompute_hours_without_marking_them_changed(case: EngineCase) -> None:
    eng = case.engine
    case.append(MODEL, rows(2000, 8))
    b = _bins(9)
    day = (T0, T0 + timedelta(days=1))
    eng.register(MODEL, ProfileSpec({"x": (b["x"].edges,)}))
    eng.ensure(MODEL, *day)
    before = eng.hours(MODEL, *day)
    eng.register(MODEL, ProfileSpec({"k": (b["k"].edges,)}))
    assert eng.ensure(MODEL, *day) == 2000
    after = eng.hours(MODEL, *day)
    assert {h: i["changed_at"] for h, i in after.items()} == {
        h: i["changed_at"] for h, i in before.items()
    }
    w = eng.window(MODEL, *day)
    assert all(("k", edges_key(b["k"].edges)) in cols for cols in w.values())
    assert all(("x", edges_key(b["x"].edges)) in cols for cols in w.values())


def test_row_counts_per_window_from_the_profiles(case: EngineCase) -> None:
    data = rows(3000, 12, hours=48)
    case.append(MODEL, data)
    case.engine.register(MODEL, ProfileSpec())
    case.engine.ensure(MODEL, T0, T0 + timedelta(days=2))
    got = case.engine.row_counts(MODEL, T0, T0 + timedelta(days=2), timedelta(days=1))
    df = data.to_pandas()
    day = (df.ts >= T0 + timedelta(days=1)).astype(int)
    assert got[("*", "*")] == [int((day == 0).sum()), int((day == 1).sum())]
    for t in ("acme", "globex", "initech"):
        sel = day[df.tenant_id == t]
        assert got[(t, "*")] == [int((sel == 0).sum()), int((sel == 1).sum())]
    for v in ("v1", "v2"):
        sel = day[df.model_version == v]
        assert got[("*", v)] == [int((sel == 0).sum()), int((sel == 1).sum())]


def test_late_labels_name_the_hours_of_their_inferences(case: EngineCase) -> None:
    data = rows(500, 13)
    case.append(MODEL, data)
    before = datetime(2000, 1, 1, tzinfo=UTC)
    assert case.engine.label_hours(MODEL, before) == {}
    picked = data.slice(0, 20)
    labels = pa.table(
        {
            "request_id": picked.column("request_id"),
            "label": pa.array([1] * 20, pa.int32()),
            "ts": picked.column("ts"),
            "tenant_id": picked.column("tenant_id"),
        }
    )
    case.append_labels(MODEL, labels)
    got = case.engine.label_hours(MODEL, before)
    want = {t.replace(minute=0, second=0, microsecond=0) for t in picked.column("ts").to_pylist()}
    assert set(got) == want


def test_same_seed_same_bounded_sample_inside_the_window(case: EngineCase) -> None:
    data = rows(6000, 10)
    case.append(MODEL, data)
    end = T0 + timedelta(hours=12)
    s1 = case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=3)
    s2 = case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=3)
    assert s1.num_rows == 500 and s1.to_pandas().equals(s2.to_pandas())  # NaN-aware
    assert s1.column_names == ["tenant_id", "model_version", "x", "plan"]
    other = case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=4)
    assert not other.to_pandas().equals(s1.to_pandas())
    only = case.logs.sample(MODEL, T0, end, ["x"], 10_000, tenant_id="acme")
    df = data.to_pandas()
    in_window = df[(df.ts >= T0) & (df.ts < end)]
    assert set(only.column("tenant_id").to_pylist()) == {"acme"}
    assert only.num_rows == int((in_window.tenant_id == "acme").sum())  # all of them: n > rows


def test_operational_figures_per_segment(case: EngineCase) -> None:
    data = rows(2000, 14)
    case.append(MODEL, data)
    df = data.to_pandas()
    end = T0 + timedelta(hours=6)
    last = case.logs.last_ts(MODEL, end)
    before = df[df.ts < end]
    assert last[("*", "*")] == before.ts.max().to_pydatetime()
    for t, g in before.groupby("tenant_id"):
        assert last[(t, "*")] == g.ts.max().to_pydatetime()
    assert case.logs.first_ts(MODEL) == df.ts.min().to_pydatetime()
    stats = case.logs.label_stats(MODEL, T0, end)
    assert stats[("*", "*")]["rows"] == len(before) and stats[("*", "*")]["labelled"] == 0


def test_last_ts_since_reads_only_the_rows_after_it(case: EngineCase) -> None:
    """Freshness bounded to the baseline windows (a backfill's per-window read): the newest
    ts of the rows in ``[since, before)``, which is the unbounded answer for every segment
    with such rows; segments without any are left out."""
    data = rows(2000, 15)
    case.append(MODEL, data)
    df = data.to_pandas()
    since, end = T0 + timedelta(hours=3), T0 + timedelta(hours=6)
    bounded = case.logs.last_ts(MODEL, end, since=since)
    full = case.logs.last_ts(MODEL, end)
    part = df[(df.ts >= since) & (df.ts < end)]
    assert bounded[("*", "*")] == part.ts.max().to_pydatetime()
    for t, g in part.groupby("tenant_id"):
        assert bounded[(t, "*")] == g.ts.max().to_pydatetime()
    assert bounded and all(full[k] == v for k, v in bounded.items())
    assert case.logs.last_ts(MODEL, since, since=since - timedelta(hours=1)) == {
        k: v for k, v in case.logs.last_ts(MODEL, since).items() if v >= since - timedelta(hours=1)
    }
    # nothing in range: nothing, not the older rows
    assert case.logs.last_ts(MODEL, T0, since=T0 - timedelta(days=1)) == {}


def test_engine_and_reader_satisfy_the_ports(case: EngineCase) -> None:
    from monitor import ports
    from tests.monitor.test_ports import mismatches

    assert mismatches(ports.ProfileEngine, type(case.engine)) == []
    assert mismatches(ports.LogReader, type(case.logs)) == []
