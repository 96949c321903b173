"""The row-needing monitors' hourly forms (storage.row_kernel): the portable sample hash, the
per-hour bottom-k sample and the label aggregates, computed by the kernel on a Parquet lake
(DuckDB; Spark in test_profile_engines' session) and checked against a brute-force pandas
computation of the same rows: late rows, several tenants and versions, NULL request ids,
tenant-scoped and untenanted labels, a repeated label."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.lake_profiles import (
    DayRows,
    duckdb_lake_dates,
    label_files_for,
    list_partitions,
)
from storage.profile_kernel import ProfileAccumulator, ProfileSpec
from storage.row_kernel import (
    LabelSpec,
    merge_labels,
    merge_samples,
    sample_hash,
    sample_keys,
    sort_labels,
    sort_samples,
)
from tests.storage.test_profile_engines import (
    T0,
    TS,
    assert_same_profiles,
    logs,
    spec_for,
    write_lake,
)

K = 40


def test_sample_hash_is_the_documented_function() -> None:
    # FNV-1a 64 of "abc#0" then fmix64, worked out by hand from the published constants
    h = 0xCBF29CE484222325
    for b in b"abc#0":
        h = ((h ^ b) * 0x100000001B3) % (1 << 64)
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) % (1 << 64)
    h ^= h >> 33
    h = (h * 0xC4CEB93FE53E1A85) % (1 << 64)
    h ^= h >> 33
    assert sample_hash("abc") == h
    ids = pa.array(["abc", "", "ü€", None, "r1-7"])
    keys = sample_keys(ids)
    for i, v in enumerate(ids.to_pylist()):
        if v is not None:
            assert int(keys[i]) == sample_hash(v) - (1 << 63)
    # a slice (non-zero offset) and another seed
    assert int(sample_keys(ids.slice(4), seed=2)[0]) == sample_hash("r1-7", 2) - (1 << 63)


def lake_spec(ref: pa.Table) -> ProfileSpec:
    base = spec_for(ref)
    return ProfileSpec(
        base.numeric,
        base.categorical,
        K,
        ("x", "plan", "prediction", "score"),
        LabelSpec("binary", "prediction", ("score",)),
    )


def with_null_ids(table: pa.Table, every: int = 97) -> pa.Table:
    ids = np.asarray(table.column("request_id").to_pylist(), dtype=object)
    ids[::every] = None
    return table.set_column(0, "request_id", pa.array(ids, pa.string()))


def labels_for(table: pa.Table, seed: int) -> pa.Table:
    """Labels of about half the rows, some sent with the row's tenant, some without one;
    received 0-3 days after the inference; one label repeated later with another value (the
    first received wins)."""
    rng = np.random.default_rng(seed)
    df = table.to_pandas()
    df = df[df.request_id.notna()]
    pick = df.sample(frac=0.5, random_state=seed)
    tenanted = rng.random(len(pick)) < 0.6
    received = pick.ts + pd.to_timedelta(rng.uniform(60, 3 * 86400, len(pick)), unit="s")
    out = pa.table(
        {
            "request_id": pa.array(pick.request_id.tolist(), pa.string()),
            "label": pa.array(rng.integers(0, 2, len(pick)), pa.int64()),
            "ts": pa.array(pick.ts.tolist(), TS),
            "received_at": pa.array(received.tolist(), TS),
            "tenant_id": pa.array(np.where(tenanted, pick.tenant_id, None).tolist(), pa.string()),
        }
    )
    dup = out.slice(0, 1)
    dup = dup.set_column(1, "label", pa.array([1 - dup.column("label")[0].as_py()], pa.int64()))
    dup = dup.set_column(
        3, "received_at", pa.array([dup.column("received_at")[0].as_py() + timedelta(hours=5)], TS)
    )
    return pa.concat_tables([out, dup])


def write_labels(root, model: str, table: pa.Table, name: str) -> None:
    days = table.column("received_at").cast(pa.date32()).to_pylist()
    by_day: dict[date, list[int]] = {}
    for i, d in enumerate(days):
        by_day.setdefault(d, []).append(i)
    for d, idx in by_day.items():
        folder = root / "labels" / f"model={model}" / f"date={d.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.take(pa.array(idx)), folder / f"{name}.parquet")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("rowlake")
    first = with_null_ids(logs(5000, 21))
    late = with_null_ids(logs(300, 22, start=T0 + timedelta(days=1), days=1, prefix="late"))
    write_lake(root, "churn", first, "part-0")
    write_lake(root, "churn", late, "late")
    labels = labels_for(pa.concat_tables([first, late]), 23)
    write_labels(root, "churn", labels, "labels-0")
    return root, pa.concat_tables([first, late]), labels, lake_spec(logs(2000, 3))


def lake_rows(root, spec: ProfileSpec, engine=duckdb_lake_dates) -> DayRows:
    parts = list_partitions(str(root), "churn")
    lparts = list_partitions(str(root / "labels"), "churn")
    assert spec.labels is not None
    labels = {d: label_files_for(d, lparts, spec.labels.days) for d in parts}
    out = dict(engine(parts, spec, labels=labels))
    return DayRows(
        pa.concat_tables([r.profiles for r in out.values()]),
        pa.concat_tables([r.samples for r in out.values()], promote_options="permissive"),
        pa.concat_tables([r.labels for r in out.values()]),
    )


def joined(rows: pa.Table, labels: pa.Table) -> pd.DataFrame:
    """The rows with their label, as storage.logstore.label_join joins (pandas)."""
    df = rows.to_pandas()
    lab = labels.to_pandas().sort_values(["received_at", "label"])
    lab = lab.drop_duplicates(["tenant_id", "request_id"], keep="first")
    own = lab[lab.tenant_id.notna()][["tenant_id", "request_id", "label", "received_at"]]
    none = lab[lab.tenant_id.isna()][["request_id", "label", "received_at"]]
    df = df.merge(own, on=["tenant_id", "request_id"], how="left")
    df = df.merge(none, on="request_id", how="left", suffixes=("", "_u"))
    df["label"] = df.label.fillna(df.label_u)
    df["received_at"] = df.received_at.fillna(df.received_at_u)
    df["hour"] = df.ts.dt.floor("h")
    df["mv"] = df.model_version.fillna("")
    return df


def brute_sample(df: pd.DataFrame, k: int) -> pd.DataFrame:
    df = df[df.request_id.notna()].copy()
    df["key"] = [sample_hash(r) - (1 << 63) for r in df.request_id]
    df = df.sort_values(["hour", "tenant_id", "mv", "key", "request_id"])
    return df.groupby(["hour", "tenant_id", "mv"], sort=True).head(k)


def test_duckdb_sample_is_the_bottom_k_of_each_hour_and_segment(lake) -> None:
    root, data, labels, spec = lake
    got = sort_samples(lake_rows(root, spec).samples)
    want = brute_sample(joined(data, labels), K)
    assert got.num_rows == len(want)
    assert got.column("request_id").to_pylist() == want.request_id.tolist()
    assert got.column("sample_key").to_pylist() == want.key.tolist()
    x = got.column("x").to_numpy(zero_copy_only=False)
    assert np.array_equal(x, want.x.to_numpy(dtype=float), equal_nan=True)
    assert got.column("plan").to_pylist() == [None if pd.isna(v) else v for v in want.plan]


def test_a_window_sample_is_the_bottom_n_of_its_hours(lake) -> None:
    root, data, labels, spec = lake
    samples = lake_rows(root, spec).samples
    df = joined(data, labels)
    for tenant in (None, "acme"):
        part = df if tenant is None else df[df.tenant_id == tenant]
        part = part[(part.ts >= T0) & (part.ts < T0 + timedelta(hours=30))]
        part = part[part.request_id.notna()].copy()
        part["key"] = [sample_hash(r) - (1 << 63) for r in part.request_id]
        want = part.sort_values(["key", "request_id"]).head(K).request_id.tolist()
        sel = samples.to_pandas()
        sel = sel[(sel.ts >= T0) & (sel.ts < T0 + timedelta(hours=30))]
        if tenant is not None:
            sel = sel[sel.tenant_id == tenant]
        assert sel.sort_values(["sample_key", "request_id"]).head(K).request_id.tolist() == want


def test_label_aggregates_equal_the_joined_rows(lake) -> None:
    root, data, labels, spec = lake
    got = lake_rows(root, spec).labels.to_pandas()
    df = joined(data, labels)
    agg = {(h, t, v, name): (n, val) for h, t, v, name, n, val in got.itertuples(index=False)}
    lab = df[df.label.notna()]
    no_id = df[df.request_id.isna()]
    for (h, t, v), g in no_id.groupby(["hour", "tenant_id", "mv"]):
        assert agg[(h, t, v, "no_id")][0] == len(g)
    for (h, t, v), g in lab.groupby(["hour", "tenant_id", "mv"]):
        n, delay = agg[(h, t, v, "labelled")]
        assert n == len(g)
        assert math.isclose(delay, (g.received_at - g.ts).dt.total_seconds().sum(), rel_tol=1e-9)
        y, p, s = g.label.to_numpy(float), g.prediction.to_numpy(float), g.score.to_numpy()
        for name, want in (
            ("bin:tp", np.sum((y == 1) & (p == 1))),
            ("bin:fp", np.sum((y == 0) & (p == 1))),
            ("bin:fn", np.sum((y == 1) & (p == 0))),
            ("bin:tn", np.sum((y == 0) & (p == 0))),
        ):
            assert agg.get((h, t, v, name), (0, 0.0))[0] == want
        sc = np.clip(s, np.finfo(float).eps, 1 - np.finfo(float).eps)
        ll = -(y * np.log(sc) + (1 - y) * np.log(1 - sc)).sum()
        assert math.isclose(agg[(h, t, v, "bin:log_loss")][1], ll, rel_tol=1e-12)
        assert math.isclose(agg[(h, t, v, "bin:brier")][1], ((s - y) ** 2).sum(), rel_tol=1e-12)
    # the repeated label counts once
    assert sum(n for (_, _, _, name), (n, _) in agg.items() if name == "labelled") == len(lab)


def test_partials_of_any_split_merge_to_one_pass(lake) -> None:
    _, data, labels, spec = lake
    df = joined(data, labels)
    table = pa.table(
        {
            "request_id": pa.array(df.request_id.tolist(), pa.string()),
            "ts": pa.array(df.ts.tolist(), TS),
            "tenant_id": df.tenant_id.tolist(),
            "model_version": pa.array(df.model_version.tolist(), pa.string()),
            "x": pa.array(df.x.to_numpy(), pa.float64()),
            "plan": pa.array([None if pd.isna(v) else v for v in df.plan], pa.string()),
            "prediction": df.prediction.to_numpy(),
            "score": df.score.to_numpy(),
            "label": pa.array([None if pd.isna(v) else int(v) for v in df.label], pa.int64()),
            "label_received_at": pa.array([None if pd.isna(v) else v for v in df.received_at], TS),
        }
    )
    whole = ProfileAccumulator(spec, table.column_names)
    whole.add(table)
    samples, aggs = [], []
    for i in range(0, table.num_rows, 611):
        acc = ProfileAccumulator(spec, table.column_names)
        acc.add(table.slice(i, 611))
        samples.append(acc.samples())
        aggs.append(acc.label_rows())
    merged, one = merge_samples(samples, K), sort_samples(whole.samples())
    assert merged.schema == one.schema
    assert merged.num_rows == one.num_rows and merged.to_pandas().equals(one.to_pandas())
    m, w = merge_labels(aggs), sort_labels(whole.label_rows())
    for c in ("hour", "tenant_id", "model_version", "name", "n"):
        assert m.column(c).to_pylist() == w.column(c).to_pylist()
    assert np.allclose(m.column("value").to_numpy(), w.column("value").to_numpy(), rtol=1e-12)


@pytest.mark.slow
@pytest.mark.timeout(900)  # the JVM's start: ~11 s on a quiet machine, minutes at load 15+
def test_spark_gives_the_same_samples_and_label_aggregates_as_duckdb(lake, spark) -> None:
    from storage.spark_engine import spark_lake_dates

    root, _, _, spec = lake

    def engine(dates, spec, labels):
        return spark_lake_dates(spark, dates, spec, labels=labels)

    got, want = lake_rows(root, spec, engine), lake_rows(root, spec)
    assert_same_profiles(got.profiles, want.profiles)
    gs, ws = sort_samples(got.samples), sort_samples(want.samples)
    assert gs.num_rows == ws.num_rows > 0
    for name in ws.column_names:
        g = gs.column(name).cast(ws.schema.field(name).type)
        assert g.to_pandas().equals(ws.column(name).to_pandas()), name
    gl, wl = got.labels, want.labels
    for c in ("hour", "tenant_id", "model_version", "name", "n"):
        assert gl.column(c).to_pylist() == wl.column(c).to_pylist(), c
    assert np.allclose(gl.column("value").to_numpy(), wl.column("value").to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_metrics_from_label_aggregates_equal_realized_performance(task: str) -> None:
    """The label aggregates of any batch split give realized_performance's values on the same
    rows (NaN and missing labels/predictions left out as it leaves them out)."""
    from detectors.performance import (
        TASK_METRICS,
        performance_from_aggregates,
        realized_performance,
    )
    from storage.row_kernel import LabelAccumulator, merge_labels

    rng = np.random.default_rng(7)
    n = 3000
    if task == "multiclass":
        classes = np.array(["cat", "dog", "émeu"], dtype=object)
        label = rng.choice(classes, n).astype(object)
        pred = np.where(rng.random(n) < 0.7, label, rng.choice(classes, n)).astype(object)
        pred[rng.random(n) < 0.03] = None
        lab_arr, pred_arr, scores = pa.array(label, pa.string()), pa.array(pred, pa.string()), None
    elif task == "binary":
        label = rng.integers(0, 2, n).astype(float)
        scores = np.clip(label * 0.6 + rng.random(n) * 0.5, 0, 1)
        scores[rng.random(n) < 0.02] = np.nan
        pred = (scores > 0.5).astype(float)
        lab_arr, pred_arr = pa.array(label.astype(np.int64)), pa.array(pred.astype(np.int64))
    else:
        label = rng.normal(50, 10, n)
        pred = label + rng.normal(0, 3, n)
        pred[rng.random(n) < 0.02] = np.nan
        lab_arr, pred_arr, scores = pa.array(label), pa.array(pred), None
    has = rng.random(n) < 0.8  # 20 % unlabelled
    ts = pa.array([T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 7200, n)], TS)
    batch = pa.table(
        {
            "ts": ts,
            "prediction": pred_arr,
            "score": pa.array(scores if scores is not None else np.zeros(n)),
            "label": pa.array(
                [v if h else None for v, h in zip(lab_arr.to_pylist(), has, strict=True)],
                lab_arr.type,
            ),
            "label_received_at": ts,
        }
    )
    spec = LabelSpec(task, "prediction", ("score",) if task == "binary" else ())
    groups = [(T0, "a", "")]
    parts = []
    for i in range(0, n, 700):
        acc = LabelAccumulator(spec)
        part = batch.slice(i, 700)
        acc.add(part, np.zeros(part.num_rows, np.int64), 1)
        parts.append(acc.rows(groups))
    merged = merge_labels(parts)
    sums = {
        name: (int(k), float(v))
        for name, k, v in zip(
            *(merged.column(c).to_pylist() for c in ("name", "n", "value")), strict=True
        )
    }
    assert sums["labelled"][0] == int(has.sum())
    got = performance_from_aggregates(task, sums)
    want = realized_performance(
        task,
        label[has],
        pred[has],
        scores[has] if scores is not None else None,
    )
    assert got.n == want.n
    for m in TASK_METRICS[task]:
        if m in ("roc_auc", "pr_auc"):
            assert got.metrics[m] is None
            continue
        a, b = got.metrics[m], want.metrics[m]
        assert (a is None) == (b is None), m
        if a is not None:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (m, a, b)
