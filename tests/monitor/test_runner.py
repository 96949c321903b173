"""The runner on real stores (DuckDB in memory, SQLite metadata): segment-value attribution, the
result sink, split by model version, late labels re-running realized performance while the
estimate stays, operational metrics, and failing runs recorded while the tick carries on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from monitor.monitors import parse_monitor
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore, ResultQuery
from storage.types import FeatureSpec, MetricResult, ModelSchema, QuarantineRow
from tests.support import duckdb_runner

T0 = datetime(2026, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)
TS = pa.timestamp("us", tz="UTC")
SCHEMA = ModelSchema(
    "binary",
    (FeatureSpec("x", "numeric"), FeatureSpec("plan", "categorical", segment=True)),
    scores=("score",),
)


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def results_written(self, results: list[MetricResult], backfill: bool) -> None:
        self.calls.append((len(results), backfill))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[MetadataStore, LogStore, MonitoringStore]]:
    meta = MetadataStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    meta.upgrade()
    meta.create_model("m", SCHEMA)
    ls = LogStore(":memory:")
    ls.ensure_model("m", SCHEMA)
    yield meta, ls, MonitoringStore(meta)
    ls.close()
    meta.dispose()


def _batch(
    rng: np.random.Generator,
    start: datetime,
    n: int,
    *,
    shift_plan: str | None = None,
    versions: tuple[str, ...] = ("v1",),
    prefix: str = "r",
) -> pa.Table:
    plan = rng.choice(["free", "pro", "team"], n)
    x = rng.normal(0, 1, n) + np.where(plan == shift_plan, 2.0, 0.0)
    score = 1 / (1 + np.exp(-x))
    return pa.table(
        {
            "request_id": [f"{prefix}{i}" for i in range(n)],
            "ts": pa.array(
                [start + timedelta(seconds=float(s)) for s in rng.uniform(0, 86399, n)], TS
            ),
            "tenant_id": rng.choice(["acme", "globex"], n),
            "model_version": rng.choice(list(versions), n),
            "x": x,
            "plan": plan,
            "prediction": pa.array((score > 0.5).astype(np.int32)),
            "score": score,
        }
    )


def _reference(ls: LogStore, rng: np.random.Generator) -> None:
    ref = _batch(rng, T0 - 10 * DAY, 4000).drop_columns(
        ["request_id", "ts", "tenant_id", "model_version"]
    )
    y = (rng.random(ref.num_rows) < np.asarray(ref.column("score"))).astype(np.int32)
    ls.put_reference("m", "base", ref.append_column("label", pa.array(y)))


def _create(ms: MonitoringStore, **cfg: object) -> None:
    c = parse_monitor({"model": "m", **cfg})
    ms.create_monitor(c.name, "m", c.kind, c.to_json())


def test_segment_values_are_ranked_sink_and_versions(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(1)
    _reference(ls, rng)
    ls.append_inferences("m", _batch(rng, T0, 3000, shift_plan="team", versions=("v1", "v2")))
    _create(ms, name="fd", kind="feature_drift", reference="base", columns=["x"], alpha=0.01)
    sink = Sink()
    runner = duckdb_runner(meta, ls, sink=sink)
    assert runner.backfill("fd", T0, T0 + DAY)[0].status == "ok"
    runner.run_window("fd", T0 + timedelta(hours=5))
    assert sink.calls == [(sink.calls[0][0], True), (sink.calls[0][0], False)]
    results, _ = ms.query_results(ResultQuery(source_name="fd", column="x"))
    segments = {(r.tenant_id, r.model_version) for r in results}
    assert segments == {("*", "*"), ("*", "v1"), ("*", "v2"), ("acme", "*"), ("globex", "*")}
    overall = next(r for r in results if (r.tenant_id, r.model_version) == ("*", "*"))
    assert overall.status == "alert"
    assert overall.details["segment_drivers"]["plan"][0]["value"] == "team"


def test_late_labels_rerun_realized_performance_and_estimate_stays(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(2)
    _reference(ls, rng)
    day = T0 + DAY
    batch = _batch(rng, day, 2000)
    ls.append_inferences("m", batch)
    clock = Clock(day + DAY + timedelta(hours=1))
    _create(ms, name="perf", kind="performance", metrics=["accuracy"], segments=["all"])
    _create(
        ms,
        name="est",
        kind="estimated_performance",
        reference="base",
        metrics=["accuracy"],
        segments=["all"],
    )
    runner = duckdb_runner(meta, ls, clock=clock)
    runner.run_window("perf", day)
    runner.run_window("est", day)
    (before,), _ = ms.query_results(ResultQuery(source_name="perf"))
    (estimate,), _ = ms.query_results(ResultQuery(source_name="est"))
    assert before.status == "no_data" and estimate.value is not None
    # labels for that day arrive later
    score = np.asarray(batch.column("score"))
    labels = (rng.random(len(score)) < score).astype(np.int32)
    ls.append_labels(
        "m", pa.table({"request_id": batch.column("request_id"), "label": pa.array(labels)})
    )
    reruns = runner.tick("perf", clock.now)
    assert [(r.window_start, r.trigger) for r in reruns] == [(day, "late")]
    (after,), _ = ms.query_results(ResultQuery(source_name="perf"))
    assert after.status == "ok" and after.value == pytest.approx(
        float(np.mean(labels == np.asarray(batch.column("prediction")))), abs=1e-12
    )
    assert runner.tick("est", clock.now) == []  # no labels needed: the estimate stands
    assert ms.query_results(ResultQuery(source_name="est"))[0][0].value == estimate.value


def test_operational_metrics_and_failures_recorded(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(3)
    _reference(ls, rng)
    for d in range(3):
        ls.append_inferences("m", _batch(rng, T0 + d * DAY, 300 * (d + 1), prefix=f"d{d}-"))
    _create(ms, name="dq", kind="data_quality", reference="base")
    _create(ms, name="broken", kind="feature_drift", reference="base")
    runner = duckdb_runner(meta, ls)
    runner.backfill("dq", T0, T0 + 3 * DAY)
    res, _ = ms.query_results(ResultQuery(source_name="dq", column="", tenant_id="*"))
    by = {(r.window_start, r.metric): r for r in res}
    assert by[(T0 + 2 * DAY, "row_count")].value == 900
    change = by[(T0 + 2 * DAY, "row_count_change")]
    assert change.value == pytest.approx((900 - 450) / 450)  # against the mean of 300 and 600
    assert by[(T0, "row_count_change")].status == "no_data"
    assert by[(T0, "label_coverage")].value == 0.0
    assert by[(T0, "freshness_s")].value is not None
    # a monitor whose reference disappears fails; its runs are recorded with the error
    ms.update_monitor(
        "broken", {**ms.get_monitor("broken").config, "reference": {"dataset": "gone"}}
    )
    runs = runner.backfill("broken", T0, T0 + 2 * DAY)
    assert [r.status for r in runs] == ["error", "error"] and "gone" in (runs[0].error or "")
    recorded, total = ms.list_runs(monitor="broken", status="error")
    assert total == 2 and recorded[0].error


def test_prediction_multivariate_and_relative_reference_kinds_run(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(4)
    _reference(ls, rng)
    for d in range(4):
        shift = "team" if d == 3 else None
        ls.append_inferences(
            "m", _batch(rng, T0 + d * DAY, 1500, shift_plan=shift, prefix=f"d{d}-")
        )
    _create(ms, name="pd", kind="prediction_drift", reference="base", segments=["all"])
    _create(
        ms,
        name="mv",
        kind="multivariate_drift",
        reference="base",
        segments=["all"],
        sample_size=1000,
    )
    _create(
        ms,
        name="rel",
        kind="feature_drift",
        reference={"previous_days": 2},
        columns=["x"],
        alpha=0.01,
    )
    runner = duckdb_runner(meta, ls)
    for name in ("pd", "mv", "rel"):
        runs = runner.backfill(name, T0 + 2 * DAY, T0 + 4 * DAY)
        assert [r.status for r in runs] == ["ok", "ok"], [r.error for r in runs]
    pd, _ = ms.query_results(ResultQuery(source_name="pd", tenant_id="*"))
    assert {r.column for r in pd} == {"prediction", "score", ""}
    mv, _ = ms.query_results(ResultQuery(source_name="mv"))
    assert {r.metric for r in mv} == {"domain_classifier_auc"} and len(mv) == 2
    rel, _ = ms.query_results(ResultQuery(source_name="rel", column="x", tenant_id="*"))
    # day 2 is like the two days before it; day 3 carries the shift of plan "team"
    assert [r.status for r in sorted(rel, key=lambda r: r.window_start)] == ["ok", "alert"]


def test_operational_metrics_split_by_model_version(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(5)
    _reference(ls, rng)
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for d in (2, 1):  # the baseline: v1 only, and a third tenant that stops sending today
        batch = _batch(rng, today - d * DAY, 300, prefix=f"b{d}-")
        tenants = pa.array(rng.choice(["acme", "globex", "initech"], 300))
        ls.append_inferences("m", batch.set_column(2, "tenant_id", tenants))
    elapsed = (now - today).total_seconds()
    today_rows = []
    for version, n in (("v1", 400), ("v2", 200)):
        batch = _batch(rng, today, n, versions=(version,), prefix=f"{version}-")
        ts = [today + timedelta(seconds=float(s)) for s in rng.uniform(0, elapsed, n)]
        batch = batch.set_column(1, "ts", pa.array(ts, TS))
        ls.append_inferences("m", batch)
        today_rows.append(batch)
    v2 = today_rows[1]
    before = datetime.now(UTC)
    ls.append_labels(  # v2's labels are in; v1's are not
        "m", pa.table({"request_id": v2.column("request_id"), "label": v2.column("prediction")})
    )
    after = datetime.now(UTC)
    ls.quarantine(
        [
            QuarantineRow("inference", "m", i, "x", "not a number", f'{{"x": "?{i}"}}', "acme")
            for i in range(3)
        ]
    )
    _create(ms, name="dq", kind="data_quality", reference="base")
    runs = duckdb_runner(meta, ls).backfill("dq", today - 2 * DAY, today + DAY)
    assert [r.status for r in runs] == ["ok"] * 3, [r.error for r in runs]
    rows, _ = ms.query_results(ResultQuery(source_name="dq", column="", start=today))
    by = {(r.tenant_id, r.model_version, r.metric): r for r in rows}
    assert {(t, v) for t, v, _ in by} == {
        ("*", "*"),
        ("*", "v1"),
        ("*", "v2"),
        ("acme", "*"),
        ("globex", "*"),
        ("initech", "*"),
    }
    assert [by[("*", v, "row_count")].value for v in ("*", "v1", "v2")] == [600, 400, 200]
    assert by[("*", "*", "row_count_change")].value == pytest.approx(1.0)
    assert by[("*", "v1", "row_count_change")].value == pytest.approx(100 / 300)
    assert by[("*", "v2", "row_count_change")].status == "no_data"  # new version: no baseline
    # the tenant that stopped sending shows the drop instead of disappearing
    assert by[("initech", "*", "row_count")].value == 0
    assert by[("initech", "*", "row_count_change")].value == -1.0
    assert by[("initech", "*", "row_count_change")].status == "warn"
    assert [by[("*", v, "label_coverage")].value for v in ("*", "v1", "v2")] == pytest.approx(
        [200 / 600, 0.0, 1.0]
    )
    assert by[("*", "v1", "label_delay_s")].status == "no_data"
    v2_ts = np.array([t.timestamp() for t in v2.column("ts").to_pylist()])
    delay = by[("*", "v2", "label_delay_s")].value
    assert before.timestamp() - v2_ts.mean() - 1e-3 <= delay <= after.timestamp() - v2_ts.mean()
    # quarantined rows have no reliable version: per tenant and for all only
    assert by[("*", "*", "quarantined")].value == 3 and by[("acme", "*", "quarantined")].value == 3
    assert by[("globex", "*", "quarantined")].value == 0
    assert ("*", "v1", "quarantined") not in by and ("*", "v2", "quarantined") not in by
    end = today + DAY
    for version, batch in zip(("v1", "v2"), today_rows, strict=True):
        newest = max(batch.column("ts").to_pylist())
        fresh = by[("*", version, "freshness_s")]
        assert fresh.value == pytest.approx((end - newest).total_seconds(), abs=1e-3)
    assert by[("*", "*", "freshness_s")].value == min(
        by[("*", v, "freshness_s")].value for v in ("v1", "v2")
    )


def test_a_backfill_stores_its_windows_in_one_transaction_per_batch(env, tmp_path: Path) -> None:
    """Runs and results of a batch of windows are one commit (they were three per window:
    start_run, save_results, finish_run); progress hears of a window once it is stored, and a
    stopped backfill keeps every window it evaluated."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    meta, ls, ms = env
    rng = np.random.default_rng(5)
    _reference(ls, rng)
    for d in range(20):
        ls.append_inferences("m", _batch(rng, T0 + d * DAY, 60, prefix=f"b{d}-"))
    _create(ms, name="dq", kind="data_quality", reference="base")
    runner = duckdb_runner(meta, ls)
    runner.BATCH_SECONDS = 3600.0  # batches by count only: no dependence on the machine's speed
    runner.BATCH_WINDOWS = 8
    commits: list[int] = []
    tmp_meta = tmp_path / "meta.sqlite"  # env's metadata file (tmp_path is the test's own)

    def count(conn: Any) -> None:
        # this test's metadata file only: the listener is on every Engine of the process, and a
        # thread an earlier test of the worker left behind may commit meanwhile (seen once: 9)
        if conn.engine.url.database == str(tmp_meta):
            commits.append(1)

    stored_when_reported: list[int] = []

    def progress(summary: Any) -> None:
        stored_when_reported.append(ms.list_runs(monitor="dq", limit=1)[1])

    event.listen(Engine, "commit", count)
    try:
        runs = runner.backfill("dq", T0, T0 + 20 * DAY, progress)
    finally:
        event.remove(Engine, "commit", count)
    assert [r.status for r in runs] == ["ok"] * 20
    assert len(commits) == 3  # 8 + 8 + 4 windows
    assert all(stored >= i + 1 for i, stored in enumerate(stored_when_reported))
    assert ms.list_runs(monitor="dq", limit=1)[1] == 20
    res, _ = ms.query_results(ResultQuery(source_name="dq", metric="row_count", tenant_id="*"))
    assert sorted(r.window_start for r in res) == [T0 + d * DAY for d in range(20)]
    assert {r.value for r in res} == {60.0}

    runner.BATCH_WINDOWS = 1
    reported: list[Any] = []
    again = runner.backfill(
        "dq", T0, T0 + 20 * DAY, reported.append, should_stop=lambda: len(reported) >= 5
    )
    assert len(again) == len(reported) == 5
    assert ms.list_runs(monitor="dq", limit=1)[1] == 25  # each reported window is stored


def test_freshness_reads_recent_rows_and_falls_back_after_a_gap(env) -> None:
    """freshness_s reads the rows since the 7 baseline windows (not the whole history) and the
    whole history only when a reported segment has none there: after 10 silent days the
    window's freshness is the time since the last row before the gap, for all tenants."""
    meta, ls, ms = env
    rng = np.random.default_rng(8)
    _reference(ls, rng)
    old = _batch(rng, T0, 200, prefix="old-")
    ls.append_inferences("m", old)
    recent = _batch(rng, T0 + 12 * DAY, 200, prefix="new-")
    ls.append_inferences("m", recent)
    _create(ms, name="dq", kind="data_quality", reference="base")
    runner = duckdb_runner(meta, ls)
    runner.backfill("dq", T0 + 10 * DAY, T0 + 13 * DAY)
    res, _ = ms.query_results(ResultQuery(source_name="dq", metric="freshness_s"))
    by = {(r.window_start, r.tenant_id): r.value for r in res}
    last_old = max(old.column("ts").to_pylist())
    for day in (10, 11):  # silent: nothing since the baseline's first window
        assert by[(T0 + day * DAY, "*")] == (T0 + (day + 1) * DAY - last_old).total_seconds()
    ts = recent.to_pandas()
    for tenant, g in ts.groupby("tenant_id"):
        expect = (T0 + 13 * DAY - g.ts.max().to_pydatetime()).total_seconds()
        assert by[(T0 + 12 * DAY, tenant)] == pytest.approx(expect, abs=1e-6)
    assert by[(T0 + 12 * DAY, "*")] == pytest.approx(
        (T0 + 13 * DAY - ts.ts.max().to_pydatetime()).total_seconds(), abs=1e-6
    )


def test_backfill_lists_references_once_and_keeps_per_window_results(env) -> None:
    """A backfill resolves the reference's latest version once (backfill_scope), not per
    window and check; its results are those of the same windows run one by one."""
    from monitor.runner import Runner
    from storage.log_reads import LogReads
    from storage.profiles import ProfileStore

    class CountingReads(LogReads):
        listed = 0

        def list_references(self, model: str) -> list[tuple[str, int, int]]:
            CountingReads.listed += 1
            return super().list_references(model)

    meta, ls, ms = env
    rng = np.random.default_rng(9)
    _reference(ls, rng)
    for d in range(5):
        ls.append_inferences("m", _batch(rng, T0 + d * DAY, 300, prefix=f"d{d}-"))
    for kind in ("feature_drift", "estimated_performance"):
        _create(ms, name=kind, kind=kind, reference="base")
    runner = Runner(meta, CountingReads(ls), profiles=ProfileStore(ls), store=MonitoringStore(meta))
    for kind in ("feature_drift", "estimated_performance"):
        assert all(r.status == "ok" for r in runner.backfill(kind, T0, T0 + 5 * DAY))
    # at most twice per backfill (its profile spec, then its windows), not once per window:
    # 2 backfills x 5 windows read it at least 10 times before
    assert CountingReads.listed <= 4

    def stored(kind: str) -> list[tuple[Any, ...]]:
        res, _ = ms.query_results(ResultQuery(source_name=kind))
        return sorted(
            (r.window_start, r.tenant_id, r.model_version, r.column, r.metric, r.value, r.status)
            for r in res
        )

    backfilled = {k: stored(k) for k in ("feature_drift", "estimated_performance")}
    for kind in backfilled:
        for d in range(5):
            runner.run_window(kind, T0 + d * DAY)
        assert stored(kind) == backfilled[kind]


def test_backfill_reads_samples_and_profile_sums_a_block_of_windows_at_a_time(env) -> None:
    """A backfill reads its windows' samples and summed profiles for a block of windows at once
    and does not re-check hours it already brought up to date (backfill_scope); every kind's
    results are those of the same windows run one by one."""
    from monitor.checks.backfill_scope import BLOCK
    from monitor.runner import Runner
    from storage.log_reads import LogReads
    from storage.profiles import ProfileStore

    calls: dict[str, int] = {
        "samples": 0,
        "windows": 0,
        "ensure": 0,
        "stats": 0,
        "labelled": 0,
        "baselines": 0,
        "fresh": 0,
    }

    class CountingReads(LogReads):
        def samples(self, *args: Any, **kwargs: Any) -> list[pa.Table]:
            calls["samples"] += 1  # sample() reads through samples() too
            return super().samples(*args, **kwargs)

        def label_stats_windows(self, *args: Any, **kwargs: Any) -> list[Any]:
            calls["stats"] += 1  # so does label_stats()
            return super().label_stats_windows(*args, **kwargs)

        def last_ts_windows(self, *args: Any, **kwargs: Any) -> list[Any]:
            calls["fresh"] += 1
            return super().last_ts_windows(*args, **kwargs)

        def labelled_windows(self, *args: Any, **kwargs: Any) -> list[pa.Table]:
            calls["labelled"] += 1  # and labelled()
            return super().labelled_windows(*args, **kwargs)

    class CountingProfiles(ProfileStore):
        def windows(self, *args: Any, **kwargs: Any) -> list[Any]:
            calls["windows"] += 1  # window() reads through windows() too
            return super().windows(*args, **kwargs)

        def ensure(self, *args: Any, **kwargs: Any) -> int:
            calls["ensure"] += 1
            return super().ensure(*args, **kwargs)

        def row_counts_windows(self, *args: Any, **kwargs: Any) -> list[Any]:
            calls["baselines"] += 1  # row_counts() reads through it too
            return super().row_counts_windows(*args, **kwargs)

    meta, ls, ms = env
    rng = np.random.default_rng(11)
    _reference(ls, rng)
    days = BLOCK + 8  # two blocks of windows
    rows = pa.concat_tables(_batch(rng, T0 + d * DAY, 150, prefix=f"d{d}-") for d in range(days))
    ls.append_inferences("m", rows)
    keep = rng.random(rows.num_rows) < 0.7
    ls.append_labels(
        "m",
        pa.table(
            {
                "request_id": rows.column("request_id").filter(pa.array(keep)),
                "label": pa.array(rng.integers(0, 2, int(keep.sum())).astype(np.int32)),
            }
        ),
    )
    kinds = ("feature_drift", "data_quality", "performance", "estimated_performance")
    for kind in kinds:
        # a sample smaller than a window: each tenant's sample is read on its own
        extra = {"sample_size": 100, "min_rows": 5} if kind == "estimated_performance" else {}
        _create(ms, name=kind, kind=kind, reference="base", **extra)
    runner = Runner(
        meta, CountingReads(ls), profiles=CountingProfiles(ls), store=MonitoringStore(meta)
    )
    for kind in kinds:
        before = dict(calls)
        assert all(r.status == "ok" for r in runner.backfill(kind, T0, T0 + days * DAY))
        if kind == "estimated_performance":
            # all tenants, acme, globex: one read per block each (3 per window before)
            assert calls["samples"] - before["samples"] == 3 * 2
        elif kind == "performance":  # one join of the labels per block (per window before)
            assert calls["labelled"] - before["labelled"] == 2
        else:
            # one read per block (one per window before); the range checked once (+ one per
            # window before)
            assert calls["windows"] - before["windows"] == 2
            assert calls["ensure"] - before["ensure"] == 1
            if kind == "data_quality":  # label coverage and delay, row count baselines
                assert calls["stats"] - before["stats"] == 2
                assert calls["baselines"] - before["baselines"] == 2
                assert calls["fresh"] - before["fresh"] == 2  # freshness since the baseline

    def stored(kind: str) -> list[tuple[Any, ...]]:
        res, _ = ms.query_results(ResultQuery(source_name=kind))
        return sorted(
            (r.window_start, r.tenant_id, r.model_version, r.column, r.metric, r.value, r.status)
            for r in res
        )

    backfilled = {k: stored(k) for k in kinds}
    for kind in kinds:
        for d in range(days):
            runner.run_window(kind, T0 + d * DAY)
        assert stored(kind) == backfilled[kind]
