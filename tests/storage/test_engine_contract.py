"""The profile-engine contract: what every implementation of ``monitor.ports.ProfileEngine``
(and the ``LogReader`` beside it) must do, run against every engine on the same generated rows.

Engines: the embedded DuckDB store; DuckDB on a Parquet lake and Apache Spark (``local[2]``,
the session-wide ``spark`` fixture of ``tests/storage/conftest.py``) on the same lake, whose
day rows the lake job (``monitor.lake_job.run_job``) pushes into a lake-fed store, as
``driftwatch profile`` does. The monitors, KPIs and dashboard do not know which engine made the
profiles, so every engine must give the *same* rows: counts, missing, finite counts, min, max
and histograms exactly equal to the detectors' numpy profiles of the same rows
(``detectors.profiles``), float sums within the repo's 1e-12 relative tolerance; a window is the
sum of its hours; rows arriving late for a profiled hour show up in the changes and are
recomputed; new bin sets recompute hours without marking them changed; the same seed gives the
same bounded sample.

Where engines legitimately differ, the case declares it and the test asserts the declared
behaviour (or skips saying why, from the declaration): ``recompute_granularity`` (the embedded
store recomputes a late row's hour, a lake job its whole date partition), ``sample_seeds`` (a
lake job keeps seed 0's bottom-k only; another seed is refused naming it), ``local_rows`` (a
lake-fed model's rows and labels stay in the lake: ``first_ts`` is refused, ``label_hours``
does not apply). The profile-row tests run for every engine.

Cost: Spark's session start (~11 s on a quiet 2-core machine, shared with
test_profile_engines.py: the file is in that xdist group) and one small Spark job per
``ensure``.

Adding an engine
----------------
Write a factory ``def _my_engine(request, tmp_path, schema) -> Iterator[EngineCase]`` (a
generator: set up, ``yield`` the case, tear down; ``request.getfixturevalue`` for a shared
fixture) and add one entry to :data:`ENGINES` (and to :data:`SLOW` if it is costly to start). The
case says how rows reach the place the engine reads them (``append``/``append_labels``: the
embedded store, a Parquet lake), how profiles are brought up to date (``ensure``,
``refresh``), hands over the engine and the log reader under test, and declares the
capabilities above. Every test below then runs on it; nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from detectors.profiles import ReferenceBins, profile_categorical, profile_numeric
from monitor.lake_job import day_files, engine_for, run_job
from monitor.lake_mode import LakeGuard
from monitor.ports import LogReader, ProfileEngine
from storage.lake_profiles import DayRows, LakeFile, changed_dates
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
HOUR = timedelta(hours=1)


@dataclass
class EngineCase:
    """One engine under test, how rows reach what it reads, and what it declares it does.

    ``engine`` and ``logs`` are what the monitors read (``monitor.ports``); ``ensure`` brings
    the profiles of a range up to date (rows scanned) and ``refresh`` names the profiled hours
    whose rows changed since they were profiled: the engine's own methods for the embedded
    store, a run of the lake job for a lake engine (its hours are pushed, not built).

    Capabilities (each test asserts the declared one, or skips naming it):
    ``recompute_granularity``: ``"hour"`` (late rows recompute their hour) or ``"date"`` (a
    changed file recomputes its whole date partition); ``sample_seeds``: ``None`` (any seed)
    or the seeds a sample can be drawn with (a lake job keeps seed 0's bottom-k only);
    ``local_rows``: whether the model's raw rows and labels are in the server's tables
    (``label_hours``, ``first_ts``); a lake-fed model's stay in the lake.
    """

    name: str
    engine: ProfileEngine
    logs: LogReader
    append: Callable[[str, pa.Table], Any]
    append_labels: Callable[[str, pa.Table], Any]
    ensure: Callable[[str, datetime, datetime], int]
    refresh: Callable[[str], list[datetime]]
    recompute_granularity: str = "hour"
    sample_seeds: tuple[int, ...] | None = None
    local_rows: bool = True


def _duckdb(
    request: pytest.FixtureRequest, tmp_path: Path, schema: ModelSchema
) -> Iterator[EngineCase]:
    """The embedded engine: DuckDB tables, the profile kernel over Arrow batches."""
    ls = LogStore(":memory:")
    ls.ensure_model(MODEL, schema)
    store = ProfileStore(ls, batch_rows=4096)  # small batches: several per range
    yield EngineCase(
        "duckdb",
        store,
        LogReads(ls),
        ls.append_inferences,
        ls.append_labels,
        store.ensure,
        store.refresh,
    )
    ls.close()


class _Lake:
    """A Parquet lake (layout v1: ``model=<name>/date=<YYYY-MM-DD>/*.parquet``, labels under
    ``labels/``) fed by appends, and the lake job (:func:`monitor.lake_job.run_job`) pushing
    what an engine computes into a lake-fed :class:`ProfileStore`, as ``driftwatch profile``
    does with a local data dir."""

    def __init__(self, root: Path, store: ProfileStore, engine: Any, name: str) -> None:
        self.root, self.store, self.engine, self.name = root, store, engine, name
        self.files = 0
        self.scanned = 0

    def _write(self, root: Path, model: str, table: pa.Table) -> None:
        self.files += 1  # a new file per append: late rows arrive as a new file of their date
        days = table.column("ts").cast(pa.date32())
        for d in pc.unique(days).to_pylist():
            folder = root / f"model={model}" / f"date={d.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            part = table.filter(pc.equal(days, pa.scalar(d, pa.date32())))
            pq.write_table(part, folder / f"part-{self.files}.parquet")

    def append(self, model: str, table: pa.Table) -> None:
        self._write(self.root, model, table)

    def append_labels(self, model: str, table: pa.Table) -> None:
        received = pa.array([datetime.now(UTC)] * table.num_rows, TS)
        self._write(self.root / "labels", model, table.append_column("received_at", received))

    # ProfileTarget (monitor.lake_job): the store's spec and manifest; a push replaces a day
    def spec(self, model: str) -> tuple[ProfileSpec, dict[date, tuple[str, list[LakeFile]]]]:
        return self.store.spec(model), self.store.lake_manifest(model)

    def push(
        self, model: str, day: date, rows: DayRows, spec: ProfileSpec, files: list[LakeFile]
    ) -> None:
        seg = rows.profiles.filter(pc.equal(rows.profiles.column("column_name"), ROWS_COLUMN))
        self.scanned += int(pc.sum(seg.column("count")).as_py() or 0)
        self.store.replace_day(
            model, day, rows.profiles, spec.key, files, rows.samples, rows.labels, spec.sample_k
        )

    def ensure(self, model: str, start: datetime, end: datetime) -> int:
        """One job run: every changed date of the lake is recomputed (the range is the
        caller's; a job profiles what changed); rows scanned."""
        self.scanned = 0
        run_job(self, str(self.root), model, self.engine, self.name)
        return self.scanned

    def refresh(self, model: str) -> list[datetime]:
        """The profiled hours of the dates whose files changed since they were pushed."""
        spec, manifest = self.spec(model)
        listing, _ = day_files(str(self.root), model, spec)
        out = []
        for d in changed_dates(listing, manifest, spec.key):
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            out += sorted(self.store.hours(model, start, start + timedelta(days=1)))
        return out


def _lake_case(name: str, engine: Any, tmp_path: Path, schema: ModelSchema) -> Iterator[EngineCase]:
    ls = LogStore(":memory:")
    ls.ensure_model(MODEL, schema)
    store = ProfileStore(ls)
    lake = _Lake(tmp_path / "lake", store, engine, name)
    yield EngineCase(
        name,
        store,
        LakeGuard(LogReads(ls), store),
        lake.append,
        lake.append_labels,
        lake.ensure,
        lake.refresh,
        recompute_granularity="date",
        sample_seeds=(0,),
        local_rows=False,
    )
    ls.close()


def _duckdb_lake(
    request: pytest.FixtureRequest, tmp_path: Path, schema: ModelSchema
) -> Iterator[EngineCase]:
    """DuckDB reading the lake (``read_parquet``), the kernel over its Arrow batches."""
    engine, close = engine_for("duckdb")
    yield from _lake_case("duckdb-lake", engine, tmp_path, schema)
    close()


def _spark(
    request: pytest.FixtureRequest, tmp_path: Path, schema: ModelSchema
) -> Iterator[EngineCase]:
    """Apache Spark (``local[2]``, the session-wide ``spark`` fixture): the kernel in
    ``mapInArrow`` over the lake, partials merged per hour."""
    from storage.spark_engine import spark_lake_dates

    spark = request.getfixturevalue("spark")

    def engine(
        dates: dict[date, list[LakeFile]], spec: ProfileSpec, labels: dict[date, list[LakeFile]]
    ) -> Iterator[tuple[date, DayRows]]:
        return spark_lake_dates(spark, dates, spec, labels=labels)

    yield from _lake_case("spark", engine, tmp_path, schema)


# name -> factory; one entry per engine (see the module docstring)
ENGINES: dict[str, Callable[[pytest.FixtureRequest, Path, ModelSchema], Iterator[EngineCase]]] = {
    "duckdb": _duckdb,
    "duckdb-lake": _duckdb_lake,
    "spark": _spark,
}
# engines whose start is costly: marked slow, with the timeout of the Spark session's start
SLOW = {"spark"}


@pytest.fixture(
    params=[
        pytest.param(n, marks=[pytest.mark.slow, pytest.mark.timeout(900)] if n in SLOW else [])
        for n in sorted(ENGINES)
    ]
)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineCase]:
    yield from ENGINES[request.param](request, tmp_path, SCHEMA)


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
    assert case.ensure(MODEL, T0, T0 + timedelta(days=1)) == 20_000
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
    case.ensure(MODEL, T0, T0 + timedelta(days=1))
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


def test_late_rows_appear_in_the_changes_and_their_hours_are_recomputed(
    case: EngineCase,
) -> None:
    """Late rows for a profiled hour show up in the changes and are profiled; what else is
    recomputed is the engine's declared granularity: only that hour (``"hour"``), or every hour
    of its date partition (``"date"``). Hours of the other date are left as they were."""
    eng = case.engine
    first = rows(4000, 5, hours=48)  # two dates
    case.append(MODEL, first)
    b = _bins(6)["x"]
    eng.register(MODEL, ProfileSpec({"x": (b.edges,)}))
    days = (T0, T0 + timedelta(days=2))
    assert case.ensure(MODEL, *days) == 4000
    assert case.ensure(MODEL, *days) == 0  # nothing to do
    assert case.refresh(MODEL) == []
    before = eng.hours(MODEL, *days)
    assert len(before) == 48 and not any(i["dirty"] for i in before.values())
    late = rows(50, 7, start=T0 + timedelta(hours=3), hours=1, prefix="late")
    case.append(MODEL, late)
    h3 = T0 + timedelta(hours=3)
    # h3's hour, or every hour of h3's date (T0's)
    recomputed = (
        [h3] if case.recompute_granularity == "hour" else [T0 + i * HOUR for i in range(24)]
    )
    changes = case.refresh(MODEL)
    assert h3 in changes
    assert changes == recomputed
    if case.recompute_granularity == "hour":  # the embedded store marks the hour dirty
        assert eng.hours(MODEL, *days)[h3]["dirty"]
    scanned = case.ensure(MODEL, *days)
    after = eng.hours(MODEL, *days)
    assert scanned == sum(before[h]["rows"] for h in recomputed) + 50
    assert case.refresh(MODEL) == []
    assert after[h3]["rows"] == before[h3]["rows"] + 50 and not after[h3]["dirty"]
    for h, info in before.items():
        if h in recomputed:
            assert after[h]["changed_at"] >= info["changed_at"]
            assert after[h]["computed_at"] >= info["computed_at"]
        else:
            assert after[h]["changed_at"] == info["changed_at"]
            assert after[h]["computed_at"] == info["computed_at"]
    # every recomputed hour equals the numpy profile of all its rows, late ones included
    df = pa.concat_tables([first, late]).to_pandas()
    for h in recomputed:
        w = eng.window(MODEL, h, h + HOUR)
        assert sum(c[(ROWS_COLUMN, "")].count for c in w.values()) == after[h]["rows"]
        part = df[(df.ts >= h) & (df.ts < h + HOUR)]
        merged = sum((c[("x", edges_key(b.edges))] for c in w.values()), RawProfile())
        _assert_numeric_equal(merged, part["x"].to_numpy(), b)


def test_new_bins_recompute_hours_without_marking_them_changed(case: EngineCase) -> None:
    eng = case.engine
    case.append(MODEL, rows(2000, 8))
    b = _bins(9)
    day = (T0, T0 + timedelta(days=1))
    eng.register(MODEL, ProfileSpec({"x": (b["x"].edges,)}))
    case.ensure(MODEL, *day)
    before = eng.hours(MODEL, *day)
    eng.register(MODEL, ProfileSpec({"k": (b["k"].edges,)}))
    assert case.ensure(MODEL, *day) == 2000
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
    case.ensure(MODEL, T0, T0 + timedelta(days=2))
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
    if not case.local_rows:
        pytest.skip(
            f"{case.name} declares local_rows=False: label_hours joins labels to the server's "
            "inference rows, and a lake-fed model's rows and labels stay in the lake (a new "
            "label file re-profiles the dates it can label instead, monitor.lake_job.day_files)"
        )
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
    """Any seed (``sample_seeds=None``), or only the declared seeds: another one is refused
    naming it (a lake job keeps one per-hour bottom-k sample, by the portable hash, seed 0)."""
    data = rows(6000, 10)
    case.append(MODEL, data)
    end = T0 + timedelta(hours=12)
    if case.sample_seeds is not None:  # the job's per-hour samples: k covers every n below
        case.engine.register(MODEL, ProfileSpec(sample_k=10_000, sample_columns=("x", "plan")))
        case.ensure(MODEL, T0, T0 + timedelta(days=1))
    seed, other_seed = (3, 4) if case.sample_seeds is None else (case.sample_seeds[0], 4)
    s1 = case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=seed)
    s2 = case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=seed)
    assert s1.num_rows == 500 and s1.to_pandas().equals(s2.to_pandas())  # NaN-aware
    assert s1.column_names == ["tenant_id", "model_version", "x", "plan"]
    if case.sample_seeds is None or other_seed in case.sample_seeds:
        other = case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=other_seed)
        assert not other.to_pandas().equals(s1.to_pandas())
    else:
        with pytest.raises(LookupError, match=f"seed {other_seed}"):
            case.logs.sample(MODEL, T0, end, ["x", "plan"], 500, seed=other_seed)
    only = case.logs.sample(MODEL, T0, end, ["x"], 10_000, tenant_id="acme")
    df = data.to_pandas()
    in_window = df[(df.ts >= T0) & (df.ts < end)]
    assert set(only.column("tenant_id").to_pylist()) == {"acme"}
    assert only.num_rows == int((in_window.tenant_id == "acme").sum())  # all of them: n > rows


def test_operational_figures_per_segment(case: EngineCase) -> None:
    data = rows(2000, 14)
    case.append(MODEL, data)
    case.ensure(MODEL, T0, T0 + timedelta(days=1))  # a lake-fed model's figures: its profiles
    df = data.to_pandas()
    end = T0 + timedelta(hours=6)
    last = case.logs.last_ts(MODEL, end)
    before = df[df.ts < end]
    assert last[("*", "*")] == before.ts.max().to_pydatetime()
    for t, g in before.groupby("tenant_id"):
        assert last[(t, "*")] == g.ts.max().to_pydatetime()
    if case.local_rows:
        assert case.logs.first_ts(MODEL) == df.ts.min().to_pydatetime()
    else:  # the oldest row is in the lake: refused naming why, never a wrong answer
        with pytest.raises(LookupError, match="lake-fed model: a relative reference"):
            case.logs.first_ts(MODEL)
    stats = case.logs.label_stats(MODEL, T0, end)
    assert stats[("*", "*")]["rows"] == len(before) and stats[("*", "*")]["labelled"] == 0


def test_last_ts_since_reads_only_the_rows_after_it(case: EngineCase) -> None:
    """Freshness bounded to the baseline windows (a backfill's per-window read): the newest
    ts of the rows in ``[since, before)``, which is the unbounded answer for every segment
    with such rows; segments without any are left out."""
    data = rows(2000, 15)
    case.append(MODEL, data)
    case.ensure(MODEL, T0, T0 + timedelta(days=1))
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
    from tests.monitor.test_ports import mismatches, port_methods

    assert mismatches(ports.ProfileEngine, type(case.engine)) == []
    if isinstance(case.logs, LakeGuard):  # passes LogReads' reads through (checked above)
        assert all(callable(getattr(case.logs, m)) for m in port_methods(ports.LogReader))
    else:
        assert mismatches(ports.LogReader, type(case.logs)) == []
