"""Hourly profiles in DuckDB beyond the engine contract (tests/storage/test_engine_contract.py):
the hash-collision fallback and batch grouping. Monitoring repository: idempotent results,
versioned monitors, runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.profiles import ReferenceBins, profile_categorical, profile_numeric
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore, ResultQuery
from storage.profiles import (
    ROWS_COLUMN,
    ProfileSpec,
    ProfileStore,
    edges_key,
)
from storage.types import FeatureSpec, MetricResult, ModelSchema
from tests.storage import conftest as _db

metadata_url = _db.migrated_url  # a copy of a database migrated once per session

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SCHEMA = ModelSchema(
    "binary",
    (
        FeatureSpec("x", "numeric"),
        FeatureSpec("k", "numeric"),
        FeatureSpec("plan", "categorical"),
        FeatureSpec("mobile", "boolean"),
    ),
    scores=("score",),
)
TS = pa.timestamp("us", tz="UTC")


def rows(n: int, seed: int, start: datetime = T0, hours: int = 24, prefix: str = "r") -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.03] = np.nan
    x[:3] = [np.inf, -np.inf, 1e300]
    k = rng.integers(0, 6, n).astype(float)  # integer values sitting exactly on bin edges
    plan = rng.choice(np.array(["free", "pro", "team", "enterprise", None], dtype=object), n)
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
            "mobile": pa.array(rng.random(n) < 0.3),
            "prediction": pa.array(rng.integers(0, 2, n), pa.int32()),
            "score": rng.random(n),
        }
    )


@pytest.fixture
def store() -> Iterator[tuple[LogStore, ProfileStore]]:
    ls = LogStore(":memory:")
    ls.ensure_model("churn", SCHEMA)
    yield ls, ProfileStore(ls, batch_rows=4096)  # small batches: several per range
    ls.close()


def _bins(seed: int) -> dict[str, ReferenceBins]:
    ref = rows(3000, seed)
    return {
        "x": ReferenceBins.numeric(ref.column("x").to_numpy(zero_copy_only=False)),
        "k": ReferenceBins.numeric(ref.column("k").to_numpy(zero_copy_only=False)),
    }


def test_profiles_equal_numpy_profiles_after_a_hash_collision(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every segment gets the same 64-bit hash, which forces the string-keyed fallback of the
    stream and of the category counts (DuckDB engine only; the same check without a collision,
    and the rest of the engine contract, run over every engine in test_engine_contract.py)."""
    import storage.profiles

    monkeypatch.setattr(storage.profiles, "_GROUP_HASH", "(42::UBIGINT)")
    ls, ps = store
    data = rows(20_000, 1)
    ls.append_inferences("churn", data)
    bins = _bins(2)
    coarse = ReferenceBins.numeric(data.column("x").to_numpy(zero_copy_only=False), n_bins=7)
    spec = ProfileSpec(
        {"x": (bins["x"].edges, coarse.edges), "k": (bins["k"].edges,)}, ("plan", "mobile")
    )
    ps.register("churn", spec)
    assert ps.ensure("churn", T0, T0 + timedelta(days=1)) == 20_000
    df = data.to_pandas()
    for start, end in [
        (T0, T0 + timedelta(days=1)),
        (T0 + timedelta(hours=5), T0 + timedelta(hours=6)),
    ]:
        window = ps.window("churn", start, end)
        sel = df[(df.ts >= start) & (df.ts < end)]
        assert sum(p[(ROWS_COLUMN, "")].count for p in window.values()) == len(sel)
        for (tenant, version), cols in window.items():
            part = sel[(sel.tenant_id == tenant) & (sel.model_version == version)]
            for col, b in [("x", bins["x"]), ("x", coarse), ("k", bins["k"])]:
                got = cols[(col, edges_key(b.edges))]
                want = profile_numeric(part[col].to_numpy(), b)
                assert np.array_equal(got.counts, want.counts)
                assert (got.count, got.missing, got.n_finite, got.min, got.max) == (
                    want.count,
                    want.missing,
                    want.n_finite,
                    want.min,
                    want.max,
                )
                scale = float(np.abs(part[col][np.isfinite(part[col])]).sum()) or 1.0
                assert math.isclose(got.sum, want.sum, rel_tol=1e-12, abs_tol=1e-12 * scale)
                assert math.isclose(got.sum_sq, want.sum_sq, rel_tol=1e-12, abs_tol=1e-300)
            cats = cols[("plan", "")]
            want_c = profile_categorical(
                part["plan"].to_numpy(), ReferenceBins.categorical(["free", "pro"])
            )
            assert (cats.count, cats.missing) == (want_c.count, want_c.missing)
            assert cats.categories == part["plan"].value_counts().to_dict()
            mobile = cols[("mobile", "")]
            assert mobile.categories == {
                str(k).lower(): int(v) for k, v in part["mobile"].value_counts().items()
            }


# ------------------------------------------------------------------ monitoring repository
def _result(window: datetime, metric: str, value: float, status: str = "ok") -> MetricResult:
    return MetricResult(
        source="monitor",
        source_name="m1",
        kind="feature_drift",
        model="churn",
        window_start=window,
        window_end=window + timedelta(days=1),
        tenant_id="*",
        model_version="*",
        column="x",
        metric=metric,
        value=value,
        threshold=0.1,
        status=status,  # type: ignore[arg-type]
        details={"p": [1, 2]},
    )


def test_results_replace_their_window_and_never_duplicate(metadata_url: str) -> None:
    meta = MetadataStore(metadata_url)
    meta.upgrade()
    try:
        ms = MonitoringStore(meta)
        ms.save_results(
            [
                _result(T0, "psi", 0.1),
                _result(T0, "ks", 0.2),
                _result(T0 + timedelta(days=1), "psi", 0.3),
            ]
        )
        ms.save_results([_result(T0, "psi", 0.5, "alert")])  # re-run of the first window
        got, total = ms.query_results(ResultQuery(source_name="m1"))
        assert total == 2
        assert [(r.window_start, r.metric, r.value, r.status) for r in got] == [
            (T0, "psi", 0.5, "alert"),
            (T0 + timedelta(days=1), "psi", 0.3, "ok"),
        ]
        ms.save_results([], windows=[("monitor", "m1", T0)])
        assert ms.query_results(ResultQuery(source_name="m1"))[1] == 1
        assert ms.query_results(ResultQuery(status="alert"))[1] == 0
        page, total = ms.query_results(ResultQuery(), limit=1, offset=0)
        assert total == 1 and len(page) == 1 and page[0].details == {"p": [1, 2]}
    finally:
        meta.dispose()


def test_monitor_versions_record_who_what_when(metadata_url: str) -> None:
    meta = MetadataStore(metadata_url)
    meta.upgrade()
    try:
        ms = MonitoringStore(meta)
        cfg = {"name": "m1", "model": "churn", "kind": "feature_drift", "alpha": 0.05}
        ms.create_monitor("m1", "churn", "feature_drift", cfg, actor="alice")
        same = ms.update_monitor("m1", dict(cfg), actor="bob")
        assert same.version == 1  # nothing changed: no new version
        new = ms.update_monitor("m1", {**cfg, "alpha": 0.01}, actor="bob")
        assert new.version == 2
        versions = ms.monitor_versions("m1")
        assert [(v.version, v.action, v.actor) for v in versions] == [
            (1, "create", "alice"),
            (2, "update", "bob"),
        ]
        assert versions[1].diff == {"alpha": [0.05, 0.01]}
        run = ms.start_run("m1", "churn", T0, T0 + timedelta(days=1), "manual", 2)
        ms.finish_run(run, "error", error="boom", duration_s=0.1)
        runs, total = ms.list_runs(monitor="m1")
        assert total == 1 and runs[0].status == "error" and runs[0].error == "boom"
        assert ms.last_window_end("m1") == T0 + timedelta(days=1)
        ms.delete_monitor("m1", actor="carol")
        assert ms.get_monitor("m1") is None
        assert ms.monitor_versions("m1")[-1].action == "delete"
    finally:
        meta.dispose()


def test_batch_grouping_by_hash_and_by_strings_agree() -> None:
    # the string path only runs after a 64-bit hash collision; check it groups the same way
    from storage.profiles import _batch_groups, _HashGrouper

    rng = np.random.default_rng(11)
    n = 5000
    tenants = rng.choice(["acme", "globex", "initech"], n)
    versions = rng.choice(["v1", "v2"], n)
    hours = rng.integers(0, 30, n)
    hashes = np.array(
        [hash((t, v)) & 0xFFFFFFFFFFFF for t, v in zip(tenants, versions, strict=True)]
    )
    by_hash = pa.record_batch(
        [pa.array(hours), pa.array(hashes.astype(np.uint64)), pa.array(hashes)], ["hi", "gh", "x"]
    )
    by_name = pa.record_batch(
        [pa.array(hours), pa.array(tenants), pa.array(versions)], ["hi", "t", "v"]
    )
    km1: dict = {}
    km2: dict = {}
    grouper = _HashGrouper(km1)
    g1 = np.concatenate([grouper.ids(by_hash.slice(i, 1000)) for i in range(0, n, 1000)])
    g2 = np.concatenate([_batch_groups(by_name.slice(i, 1000), km2) for i in range(0, n, 1000)])
    assert len(km1) == len(km2) == len(set(zip(hours, tenants, versions, strict=True)))
    pairs = set(zip(g1.tolist(), g2.tolist(), strict=True))
    assert len(pairs) == len(km1)  # a one-to-one correspondence of the groups
    for (h, t, v), gid in km2.items():
        rows = np.flatnonzero(g2 == gid)
        assert set(hours[rows]) == {h} and set(tenants[rows]) == {t} and set(versions[rows]) == {v}
    for (h, gh), gid in km1.items():
        rows = np.flatnonzero(g1 == gid)
        assert set(hours[rows]) == {h} and set(hashes[rows]) == {gh}


@pytest.mark.parametrize("same_low_bits", [False, True])
def test_hash_grouper_keeps_group_numbers_when_segments_and_hours_appear_later(
    same_low_bits: bool,
) -> None:
    from storage.profiles import _HashGrouper

    rng = np.random.default_rng(5)
    keymap: dict = {}
    grouper = _HashGrouper(keymap)
    seen: dict[tuple[int, int], int] = {}
    for step in range(6):  # each batch brings new segment hashes (some smaller) and hours
        segs = rng.integers(0, 2**63, 2 + step, dtype=np.uint64)
        if same_low_bits:  # hashes the low-bits lookup cannot tell apart: binary search
            segs = (segs & np.uint64(~0xFFFF & (2**64 - 1))) | np.uint64(7)
        hours = rng.integers(0, 5 * (step + 1), 300)
        gh = rng.choice(segs, 300)
        batch = pa.record_batch([pa.array(hours), pa.array(gh)], ["hi", "gh"])
        gids = grouper.ids(batch)
        for h, g, gid in zip(hours.tolist(), gh.tolist(), gids.tolist(), strict=True):
            assert seen.setdefault((h, g), gid) == gid  # stable across batches
    assert seen == keymap and len(set(keymap.values())) == len(keymap)


@settings(max_examples=200, deadline=None)
@given(
    edges=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=40, unique=True).map(
        sorted
    ),
    spread=st.sampled_from([1e-3, 1.0, 1e3, 1e7]),
    seed=st.integers(0, 2**32 - 1),
)
def test_counting_kernel_equals_searchsorted_and_numpy_moments(
    edges: list[float], spread: float, seed: int
) -> None:
    """The compiled loop that counts histograms and moments is exact: values on, next to and
    far outside the edges (and infinities) land where a binary search puts them, with the grid
    (8 edges or more) and without it; NaN counts as missing; per-group moments match numpy."""
    from detectors.bucket_grid import BucketGrid
    from storage.profile_kernels import (
        COUNT,
        FINITE,
        MAX,
        MIN,
        MISSING,
        SUM,
        SUM_SQ,
        count_column,
        new_moments,
    )

    e = np.asarray(edges)
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [
            rng.normal(e.mean(), spread, 2000),
            e,
            np.nextafter(e, np.inf),
            np.nextafter(e, -np.inf),
            [np.inf, -np.inf, e[0] - 1e12, e[-1] + 1e12, np.nan, np.nan],
        ]
    )
    rng.shuffle(x)
    gid = rng.integers(0, 3, x.size)
    grid = BucketGrid(e)
    counts = np.zeros((3, e.size + 1), np.int64)
    ints, floats = new_moments(3)
    scratch = np.empty(x.size, np.int32)
    count_column(x, gid, grid, counts, ints, floats, True, scratch)
    keep = ~np.isnan(x)
    want = np.bincount(
        gid[keep] * (e.size + 1) + np.searchsorted(e, x[keep], side="left"),
        minlength=counts.size,
    )
    assert np.array_equal(counts.reshape(-1), want)
    for g in range(3):
        v = x[gid == g]
        fin = v[np.isfinite(v)]
        assert ints[g, COUNT] == np.count_nonzero(~np.isnan(v))
        assert ints[g, MISSING] == np.count_nonzero(np.isnan(v))
        assert ints[g, FINITE] == fin.size
        assert (floats[g, MIN], floats[g, MAX]) == (fin.min(), fin.max())
        assert math.isclose(
            floats[g, SUM], fin.sum(), rel_tol=1e-9, abs_tol=1e-6 * np.abs(fin).sum()
        )
        assert math.isclose(floats[g, SUM_SQ], (fin * fin).sum(), rel_tol=1e-9)


def test_epoch_hour_expression_is_exact_at_hour_boundaries() -> None:
    """The floating-point hour of a row equals integer floor division one microsecond either
    side of every hour boundary from 1730 to 2209 (and on it)."""
    import duckdb

    from storage.profiles import _EPOCH_HOUR

    hour = 3_600_000_000
    hours = np.arange(-2_097_151, 2_097_152, 997, dtype=np.int64)  # about 1730 .. 2209
    us = (hours[:, None] * hour + np.array([-1, 0, 1])).ravel()
    con = duckdb.connect()
    con.register("t", pa.table({"ts": pa.array(us, pa.timestamp("us", tz="UTC"))}))
    got = con.sql(f"SELECT {_EPOCH_HOUR} AS h FROM t").fetchnumpy()["h"]
    assert np.array_equal(got, us // hour)


def test_warm_up_loads_the_variants_the_profile_build_calls() -> None:
    """After the store's warm-up (what the server runs in the background), counting Arrow
    batches through NumericCounter, with a grid and without, compiles nothing more."""
    import pyarrow as pa

    from detectors import profile_kernels as shared
    from storage import profile_kernels
    from storage.profile_kernel import NumericCounter, ProfileSpec

    profile_kernels.warm_up()
    kernels = (shared.bucket_index, profile_kernels.count_buckets)
    before = [len(k.signatures) for k in kernels]
    rng = np.random.default_rng(3)
    spec = ProfileSpec({"x": (tuple(np.linspace(-2.0, 2.0, 20)), (0.0, 1.0))})
    counter = NumericCounter(spec, ["x"])
    values = rng.normal(size=5000)
    values[::7] = np.nan
    counter.add([pa.array(values, from_pandas=True)], rng.integers(0, 4, 5000), 4)
    assert [len(k.signatures) for k in kernels] == before


def test_windows_and_samples_read_at_once_equal_each_window_read_alone(store, monkeypatch) -> None:
    """ProfileStore.windows / row_counts_windows and LogReads.samples / label_stats_windows /
    labelled_windows (a backfill's block reads) give each window what its own read gives:
    contiguous, gapped, unsorted and overlapping windows, and ranges split by the row budget."""

    import storage.log_reads as log_reads
    import storage.profiles as profiles
    from storage.log_reads import LogReads

    def plain(window: Any) -> Any:  # RawProfile with its counts as a list (comparable)
        return {
            seg: {k: (p.count, p.missing, p.n_finite, p.min, p.max, p.sum, p.sum_sq,
                      None if p.counts is None else p.counts.tolist(), p.categories)
                  for k, p in cols.items()}
            for seg, cols in window.items()
        }  # fmt: skip

    ls, ps = store
    logged = rows(3000, 1, hours=24 * 6)
    ls.append_inferences("churn", logged)
    ids = logged.column("request_id").slice(0, 2000)
    ls.append_labels("churn", pa.table({"request_id": ids, "label": pa.array([1, 0] * 1000)}))
    ps.register("churn", ProfileSpec({"x": ((0.0, 5.0, 10.0, 15.0),)}, ("plan",)))
    ps.ensure("churn", T0, T0 + timedelta(days=6))
    reads = LogReads(ls)
    day = timedelta(days=1)
    cases = [
        [(T0 + d * day, T0 + (d + 1) * day) for d in range(5)],  # a backfill's block
        [(T0 + 3 * day, T0 + 4 * day), (T0, T0 + day)],  # unsorted, with a gap
        [(T0, T0 + 3 * day), (T0 + day, T0 + 2 * day), (T0 + 2 * day, T0 + 6 * day)],  # overlap
    ]
    for budget in (10**9, 10):  # one read, then every range split down to single windows
        monkeypatch.setattr(profiles, "_WINDOW_BLOCK_ROWS", budget)
        monkeypatch.setattr(log_reads, "_BLOCK_ROWS", budget)
        for bounds in cases:
            alone = [plain(ps.window("churn", s, e)) for s, e in bounds]
            assert [plain(w) for w in ps.windows("churn", bounds)] == alone
            assert [plain(w) for w in ps.windows("churn", bounds, [("plan", "")], "acme")] == [
                plain(ps.window("churn", s, e, [("plan", "")], "acme")) for s, e in bounds
            ]
            for tenant in (None, "globex"):
                got = reads.samples("churn", bounds, ["score", "plan"], 50, tenant_id=tenant)
                assert got == [
                    reads.sample("churn", s, e, ["score", "plan"], 50, tenant_id=tenant)
                    for s, e in bounds
                ]
            assert reads.label_stats_windows("churn", bounds) == [
                reads.label_stats("churn", s, e) for s, e in bounds
            ]
            assert reads.labelled_windows("churn", bounds, "prediction", ["score"]) == [
                reads.labelled("churn", s, e, "prediction", ["score"]) for s, e in bounds
            ]
            assert reads.last_ts_windows("churn", bounds) == [
                reads.last_ts("churn", e, since=s) for s, e in bounds
            ]
            ends = [e for _, e in bounds]
            assert ps.row_counts_windows("churn", [(e - 2 * day, e) for e in ends], day) == [
                ps.row_counts("churn", e - 2 * day, e, day) for e in ends
            ]


def test_a_window_sample_is_its_n_smallest_sample_keys_then_request_ids(store, monkeypatch) -> None:
    """``LogReads.sample``/``samples`` against their definition, computed here from the logged
    rows: a window's (and tenant's) ``n`` rows with the smallest (sample key, request_id), in
    that order. With unique ids (integer sorts only), with ids logged again in other hours
    (equal keys, equal ids: table order), and with keys cut to 4 bits, so that distinct ids
    share keys as a 64-bit collision would (the request id breaks the tie)."""
    import storage.log_reads as log_reads
    from storage.log_reads import LogReads
    from storage.row_kernel import sample_hash

    def coarse(ids: Any, seed: int) -> Any:
        return np.asarray([(sample_hash(i, seed) - (1 << 63)) % 16 for i in ids.to_pylist()])

    ls, _ = store
    first = rows(1500, 1, hours=72)
    ls.append_inferences("churn", first)
    reads = LogReads(ls)
    day = timedelta(days=1)
    bounds = [(T0 + d * day, T0 + (d + 1) * day) for d in range(3)]

    def wanted(tenant: str | None, seed: int, n: int) -> list[Any]:
        with ls.reader() as cur:
            df = cur.sql(
                f"SELECT rowid AS r, request_id, ts, tenant_id, x FROM {ls.table('churn')}"
            )
            df = df.df()
        if tenant is not None:
            df = df[df.tenant_id == tenant]
        df["key"] = log_reads._sample_keys(pa.array(df.request_id), seed)
        return [
            df[(df.ts >= s) & (df.ts < e)].sort_values(["key", "request_id", "r"]).head(n)
            for s, e in bounds
        ]

    for case in ("unique", "repeated", "collisions"):
        if case == "repeated":  # the same ids again, at other times: their keys tie
            again = rows(1500, 2, hours=72).set_column(0, "request_id", first["request_id"])
            assert ls.append_inferences("churn", again).accepted > 500
        if case == "collisions":
            monkeypatch.setattr(log_reads, "_sample_keys", coarse)
        for tenant, seed, n in ((None, 0, 100), ("acme", 3, 50), (None, 1, 10_000)):
            want = wanted(tenant, seed, n)
            cols = ["request_id", "x"]
            got = reads.samples("churn", bounds, cols, n, tenant_id=tenant, seed=seed)
            for (s, e), table, w in zip(bounds, got, want, strict=True):
                assert table.column("request_id").to_pylist() == w.request_id.tolist()
                x = table.column("x").to_numpy(zero_copy_only=False)
                assert np.array_equal(x, w.x.to_numpy(dtype=float), equal_nan=True)
                one = reads.sample("churn", s, e, cols, n, tenant_id=tenant, seed=seed)
                assert table.to_pandas().equals(one.to_pandas())  # NaN-aware


def test_a_subnormal_edge_does_not_move_values_at_or_below_zero() -> None:
    """The case hypothesis found above (run 2 of the final suite): edges with a subnormal
    lowest inner edge took the log grid, and every value <= 0 (-inf, -1e12, 0, the first
    edges) was counted in the third bucket."""
    from detectors.bucket_grid import BucketGrid
    from storage.profile_kernels import count_column, new_moments

    e = np.array([-5.0, 5e-324, 1e-310, 1e-5, 0.1, 1.0, 2.0, 3.0, 10.0, 100.0])
    x = np.concatenate(
        [e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf), [-np.inf, np.inf, -1e12, 0.0]]
    )
    counts = np.zeros((1, e.size + 1), np.int64)
    ints, floats = new_moments(1)
    count_column(
        x,
        np.zeros(x.size, np.int64),
        BucketGrid(e),
        counts,
        ints,
        floats,
        True,
        np.empty(x.size, np.int32),
    )
    want = np.bincount(np.searchsorted(e, x, side="left"), minlength=e.size + 1)
    assert np.array_equal(counts[0], want)


def _computed_specs(ps: ProfileStore, monkeypatch: pytest.MonkeyPatch) -> list[ProfileSpec]:
    """The specs ``ps`` computes hours under from now on (what each scan counted)."""
    specs: list[ProfileSpec] = []
    compute = ps._compute

    def recorded(model: str, spec: ProfileSpec, lo: datetime, hi: datetime) -> object:
        specs.append(spec)
        return compute(model, spec, lo, hi)

    monkeypatch.setattr(ps, "_compute", recorded)
    return specs


def test_a_spec_that_adds_columns_profiles_only_them_and_stores_the_full_build(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hours profiled under a spec that a newer one extends (a second monitor of the model,
    another column or bin set) get only the added columns computed; their stored rows then
    equal a fresh build under the newer spec. A spec that drops a bin set, or an old spec this
    process never registered (after a restart), recomputes the hours whole."""

    ls, ps = store
    ls.append_inferences("churn", rows(6000, 1, hours=48))
    bins = _bins(2)
    first = ProfileSpec({"x": (bins["x"].edges,)}, ("plan",))
    wider = ProfileSpec({"x": ((0.0, 5.0, 10.0),), "k": (bins["k"].edges,)}, ("mobile",))
    end = T0 + timedelta(days=2)

    def stored(store_: ProfileStore) -> list[Any]:
        # floats to 12 digits: the fresh store reads the rows in another order and batching,
        # which moves the last bits of sums
        tbl = store_.profile_rows("churn", T0, end)
        out = [
            tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in row.values())
            for row in tbl.to_pylist()
        ]
        return sorted(out, key=repr)

    ps.register("churn", first)
    ps.ensure("churn", T0, end)
    changed = {h: i["changed_at"] for h, i in ps.hours("churn", T0, end).items()}
    merged = ps.register("churn", wider)
    computed = _computed_specs(ps, monkeypatch)
    ps.ensure("churn", T0, end)
    assert computed and all(
        set(s.numeric) == {"x", "k"} and s.categorical == ("mobile",) for s in computed
    )
    assert all(len(s.numeric["x"]) == 1 and s.numeric["x"][0] == (0.0, 5.0, 10.0) for s in computed)
    hours = ps.hours("churn", T0, end)
    assert {i["spec"] for i in hours.values()} == {merged.key}
    # no new data: the hours keep their changed_at (no late-data re-runs of their windows)
    assert {h: i["changed_at"] for h, i in hours.items()} == changed

    fresh_ls = LogStore(":memory:")
    try:
        fresh_ls.ensure_model("churn", SCHEMA)
        fresh_ls.append_inferences("churn", ls.read_inferences("churn", T0, end))
        fresh = ProfileStore(fresh_ls)
        fresh.register("churn", merged)
        fresh.ensure("churn", T0, end)
        assert stored(ps) == stored(fresh)
        assert ps.window("churn", T0, end).keys() == fresh.window("churn", T0, end).keys()
    finally:
        fresh_ls.close()

    # a spec that does not hold the stored one, or a key this process never registered (a
    # restart): the hours are recomputed whole
    from storage.profiles import _added

    assert _added(merged, ProfileSpec({"k": (bins["k"].edges,)}, ())) is None
    assert _added(first, merged) is not None and _added(merged, merged) is None
    other = ProfileStore(ls)
    other.register("churn", ProfileSpec({"k": (bins["k"].edges,)}, ()))
    whole = _computed_specs(other, monkeypatch)
    other.ensure("churn", T0, end)
    assert whole and all(s.key == other.spec("churn").key for s in whole)
