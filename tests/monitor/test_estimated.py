"""Estimated performance end to end through the runner on real stores (DuckDB in memory, SQLite
metadata): DLE for a regression model and CBPE for a multiclass one. Each model's error grows in a
known window; the estimate (no labels used) must rise there and agree with the realized metric
that a ``performance`` monitor computes from the labels of the same rows, segment by segment.
Also: a reference without labels or without the features DLE needs fails the run with an error
naming them, and ``driftwatch init`` proposes the monitor for every task it now works for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from monitor.errors import ValidationFailed
from monitor.monitors import check_against_model, default_monitors, parse_monitor
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore, ResultQuery
from storage.types import FeatureSpec, MetricResult, ModelSchema
from tests.support import duckdb_runner

T0 = datetime(2026, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)
TS = pa.timestamp("us", tz="UTC")
CLASSES = ("a", "b", "c")
REGRESSION = ModelSchema(
    "regression",
    (
        FeatureSpec("x", "numeric"),
        FeatureSpec("region", "categorical"),
        FeatureSpec("note", "text"),
    ),
)
MULTICLASS = ModelSchema(
    "multiclass",
    (FeatureSpec("x", "numeric"),),
    scores=("p_a", "p_b", "p_c"),
    classes=CLASSES,
)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[MetadataStore, LogStore, MonitoringStore]]:
    meta = MetadataStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    meta.upgrade()
    ls = LogStore(":memory:")
    for name, schema in (("reg", REGRESSION), ("mc", MULTICLASS)):
        meta.create_model(name, schema)
        ls.ensure_model(name, schema)
    yield meta, ls, MonitoringStore(meta)
    ls.close()
    meta.dispose()


def _envelope(rng: np.random.Generator, start: datetime, n: int, versions: tuple[str, ...]):
    return {
        "request_id": [f"{start:%m%d}-{i}" for i in range(n)],
        "ts": pa.array([start + timedelta(seconds=float(s)) for s in rng.uniform(0, 86399, n)], TS),
        "tenant_id": rng.choice(["acme", "globex"], n),
        "model_version": rng.choice(list(versions), n),
    }


def _regression(rng: np.random.Generator, x: np.ndarray) -> dict[str, np.ndarray]:
    """The model predicts the conditional mean; its error grows with |x|."""
    n = x.size
    region = rng.choice(["north", "south"], n)
    mean = 3 * x + np.where(region == "north", 1.0, 0.0)
    y = mean + rng.normal(0, 1, n) * (0.3 + np.abs(x))
    return {"x": x, "region": region, "note": np.full(n, "free text"), "prediction": mean, "y": y}


def _multiclass(rng: np.random.Generator, x: np.ndarray) -> dict[str, np.ndarray]:
    """Calibrated class probabilities: confident far from x = 0, unsure near it."""
    logits = np.column_stack([2.5 * x, np.zeros_like(x), -2.5 * x])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array(CLASSES)[(rng.random(x.size)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    return {
        "x": x,
        "p_a": p[:, 0],
        "p_b": p[:, 1],
        "p_c": p[:, 2],
        "prediction": np.array(CLASSES)[p.argmax(axis=1)],
        "y": labels,
    }


def _load(
    ls: LogStore,
    model: str,
    make,
    rng: np.random.Generator,
    reference_x: np.ndarray,
    day_x: list[np.ndarray],
) -> None:
    """Reference with labels, then one day of inferences (and their labels) per ``day_x``; the
    last day mixes two model versions."""
    ref = make(rng, reference_x)
    label = ref.pop("y")
    ls.put_reference(model, "base", pa.table({**ref, "label": label}))
    for d, x in enumerate(day_x):
        versions = ("v1", "v2") if d == len(day_x) - 1 else ("v1",)
        cols = make(rng, x)
        y = cols.pop("y")
        table = pa.table({**_envelope(rng, T0 + d * DAY, x.size, versions), **cols})
        ls.append_inferences(model, table)
        ls.append_labels(
            model, pa.table({"request_id": table.column("request_id"), "label": pa.array(y)})
        )


def _create(ms: MonitoringStore, model: str, **cfg: object) -> None:
    c = parse_monitor({"model": model, **cfg})
    ms.create_monitor(c.name, model, c.kind, c.to_json())


def _by_key(rows: list[MetricResult]) -> dict[tuple[datetime, str, str, str], MetricResult]:
    return {(r.window_start, r.tenant_id, r.model_version, r.metric): r for r in rows}


def _run_both(
    meta: MetadataStore, ls: LogStore, ms: MonitoringStore, model: str, metrics: list[str]
) -> tuple[dict, dict]:
    _create(ms, model, name=f"{model}-est", kind="estimated_performance", reference="base")
    _create(ms, model, name=f"{model}-perf", kind="performance", metrics=metrics)
    runner = duckdb_runner(meta, ls)
    for name in (f"{model}-est", f"{model}-perf"):
        runs = runner.backfill(name, T0, T0 + 3 * DAY)
        assert [r.status for r in runs] == ["ok"] * 3, [r.error for r in runs]
    est, _ = ms.query_results(ResultQuery(source_name=f"{model}-est"), limit=5000)
    real, _ = ms.query_results(ResultQuery(source_name=f"{model}-perf"), limit=5000)
    return _by_key(est), _by_key(real)


def test_dle_estimates_a_growing_regression_error_close_to_the_realized_one(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(11)
    _load(
        ls,
        "reg",
        _regression,
        rng,
        reference_x=rng.normal(0.5, 1.5, 6000),
        # days 0 and 1 like production so far; on day 2 inputs move to where the model errs more
        day_x=[rng.normal(0, 1, 2000), rng.normal(0, 1, 2000), rng.normal(2, 0.7, 2000)],
    )
    est, real = _run_both(meta, ls, ms, "reg", ["mae", "rmse"])

    segments = {(t, v) for (_, t, v, _) in est}
    assert segments >= {("*", "*"), ("acme", "*"), ("globex", "*"), ("*", "v1"), ("*", "v2")}
    assert {m for (*_, m) in est} == {"mae", "rmse"}  # the realized names, nothing else
    assert set(est) == set(real)  # same windows, segments and metrics as realized performance
    for key, e in est.items():
        r = real[key]
        assert e.kind == "estimated_performance" and e.details["estimated"] is True
        assert e.details["method"] == "dle" and e.details["reference"] == "base/1"
        assert e.details["n"] == r.details["n"]  # the sample holds every row: same rows
        assert e.details["lower"] < e.value < e.details["upper"]
        # close to the realized value computed with the labels of the same rows (RMSE and
        # small segments are noisier: squared errors are heavy-tailed)
        assert e.value == pytest.approx(r.value, rel=0.12), key
        if key[1:3] == ("*", "*"):
            assert e.details["lower"] <= r.value <= e.details["upper"], key
            if key[3] == "mae":
                assert e.value == pytest.approx(r.value, rel=0.06), key
    for metric in ("mae", "rmse"):
        before = [est[(T0 + d * DAY, "*", "*", metric)].value for d in (0, 1)]
        after = est[(T0 + 2 * DAY, "*", "*", metric)].value
        assert after > 1.6 * max(before)  # the estimate sees the error grow ...
        assert real[(T0 + 2 * DAY, "*", "*", metric)].value > 1.6 * max(
            real[(T0 + d * DAY, "*", "*", metric)].value for d in (0, 1)
        )  # ... as the labels later confirm


def test_multiclass_cbpe_estimates_falling_accuracy_close_to_the_realized_one(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(12)
    _load(
        ls,
        "mc",
        _multiclass,
        rng,
        reference_x=rng.normal(0, 1.2, 6000),
        # on day 2 inputs crowd near the class boundaries: the model is right less often
        day_x=[rng.normal(0, 1.5, 2000), rng.normal(0, 1.5, 2000), rng.normal(0, 0.3, 2000)],
    )
    metrics = ["accuracy", "f1_macro", "f1_weighted"]
    est, real = _run_both(meta, ls, ms, "mc", metrics)

    assert {m for (*_, m) in est} == set(metrics)
    assert set(est) == set(real)
    for key, e in est.items():
        r = real[key]
        assert e.details["estimated"] is True and e.details["method"] == "cbpe"
        assert e.details["n"] == r.details["n"]
        assert e.details["lower"] <= e.value <= e.details["upper"]
        assert e.value == pytest.approx(r.value, abs=0.05), key
        if key[1:] == ("*", "*", "accuracy"):
            assert e.details["lower"] <= r.value <= e.details["upper"], key
            assert e.value == pytest.approx(r.value, abs=0.03), key
    acc = [est[(T0 + d * DAY, "*", "*", "accuracy")].value for d in range(3)]
    assert acc[2] < min(acc[:2]) - 0.15  # estimated without labels ...
    realized = [real[(T0 + d * DAY, "*", "*", "accuracy")].value for d in range(3)]
    assert realized[2] < min(realized[:2]) - 0.15  # ... and confirmed by them


def test_bounds_alert_on_estimated_error_above_the_upper_bound(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(13)
    _load(
        ls,
        "reg",
        _regression,
        rng,
        reference_x=rng.normal(0.5, 1.5, 3000),
        day_x=[rng.normal(0, 1, 800), rng.normal(2, 0.7, 800)],
    )
    _create(
        ms,
        "reg",
        name="mae-cap",
        kind="estimated_performance",
        reference="base",
        metrics=["mae"],
        segments=["all"],
        by_version=False,
        bounds={"mae": [None, 1.5]},
    )
    runs = duckdb_runner(meta, ls).backfill("mae-cap", T0, T0 + 2 * DAY)
    assert [r.status for r in runs] == ["ok", "ok"], [r.error for r in runs]
    rows, _ = ms.query_results(ResultQuery(source_name="mae-cap"))
    by_day = {r.window_start: r for r in rows}
    assert [by_day[T0].status, by_day[T0 + DAY].status] == ["ok", "alert"]
    assert by_day[T0 + DAY].threshold == 1.5


def test_reference_without_labels_or_features_fails_naming_them(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(14)
    cols = _regression(rng, rng.normal(0, 1, 500))
    y = cols.pop("y")
    ls.put_reference("reg", "unlabelled", pa.table(cols))
    ls.put_reference(
        "reg",
        "no-region",
        pa.table({k: v for k, v in cols.items() if k != "region"} | {"label": y}),
    )
    ls.append_inferences(
        "reg",
        pa.table(
            {**_envelope(rng, T0, 500, ("v1",)), **_regression(rng, rng.normal(0, 1, 500))}
        ).drop_columns(["y"]),
    )
    _create(ms, "reg", name="est-unlabelled", kind="estimated_performance", reference="unlabelled")
    _create(ms, "reg", name="est-no-region", kind="estimated_performance", reference="no-region")
    runner = duckdb_runner(meta, ls)
    (run,) = runner.backfill("est-unlabelled", T0, T0 + DAY)
    assert run.status == "error"
    assert (
        "monitor 'est-unlabelled': reference 'unlabelled/1' of model 'reg' has no 'label' column"
        in (run.error or "")
    )
    (run,) = runner.backfill("est-no-region", T0, T0 + DAY)
    assert run.status == "error"
    assert "reference 'no-region/1' of model 'reg' has no column 'region'" in (run.error or "")
    recorded, total = ms.list_runs(monitor="est-unlabelled", status="error")
    assert total == 1 and "label" in (recorded[0].error or "")


def test_estimated_metrics_are_checked_against_what_can_be_estimated() -> None:
    cfg = parse_monitor(
        {
            "name": "est",
            "model": "reg",
            "kind": "estimated_performance",
            "reference": "base",
            "metrics": ["mae", "r2"],
        }
    )
    with pytest.raises(ValidationFailed) as err:
        check_against_model(cfg, REGRESSION)
    (e,) = err.value.errors
    assert e.loc == ("metrics", 1) and "'r2'" in e.msg and "['mae', 'rmse']" in e.msg
    relative = parse_monitor(
        {
            "name": "est",
            "model": "mc",
            "kind": "estimated_performance",
            "reference": {"previous_days": 7},
        }
    )
    with pytest.raises(ValidationFailed) as err:
        check_against_model(relative, MULTICLASS)
    assert [e.loc for e in err.value.errors] == [("reference",)]


def test_init_proposes_estimated_performance_for_every_task_with_a_reference() -> None:
    binary = ModelSchema("binary", (FeatureSpec("x", "numeric"),), scores=("score",))
    for schema in (REGRESSION, MULTICLASS, binary):
        proposed = {m.kind: m for m in default_monitors("m", schema, "base")}
        assert "estimated_performance" in proposed, schema.task
        assert "data_quality" in proposed  # operational metrics come with it
        check_against_model(proposed["estimated_performance"], schema)
        without = {m.kind for m in default_monitors("m", schema, None)}
        assert "estimated_performance" not in without and "data_quality" in without
    # a multiclass model without score columns cannot be estimated: not proposed
    bare = ModelSchema("multiclass", (FeatureSpec("x", "numeric"),), classes=CLASSES)
    assert "estimated_performance" not in {m.kind for m in default_monitors("m", bare, "base")}


def test_each_tenant_gets_its_own_bounded_sample(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(15)
    _load(ls, "reg", _regression, rng, rng.normal(0.5, 1.5, 2000), [])
    cols = _regression(rng, rng.normal(0, 1, 1200))
    cols.pop("y")
    table = pa.table({**_envelope(rng, T0, 1200, ("v1",)), **cols})
    tenants = np.where(np.arange(1200) < 100, "small", "big")  # 100 rows of 1,200
    table = table.set_column(table.schema.get_field_index("tenant_id"), "tenant_id", [tenants])
    ls.append_inferences("reg", table)
    _create(
        ms,
        "reg",
        name="est",
        kind="estimated_performance",
        reference="base",
        metrics=["mae"],
        sample_size=200,
    )
    (run,) = duckdb_runner(meta, ls).backfill("est", T0, T0 + DAY)
    assert run.status == "ok", run.error
    rows, _ = ms.query_results(ResultQuery(source_name="est"))
    n = {r.tenant_id: r.details["n"] for r in rows}
    # the window's sample holds ~17 rows of "small"; its own sample holds all 100 of them
    assert n == {"*": 200, "big": 200, "small": 100}
    assert all(r.status == "ok" for r in rows)
