"""Log store round trips: tables per kind, schema evolution, idempotency, labels, events,
references, quarantine, reopen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from storage import logstore as logstore_module
from storage.logstore import LogStore, LogStoreError, SchemaChangeError, UnknownModelError
from storage.types import FeatureSpec, ModelSchema, QuarantineRow

T0 = datetime(2026, 3, 1, tzinfo=UTC)

CHURN = ModelSchema(
    task="binary",
    features=(
        FeatureSpec("age", "numeric"),
        FeatureSpec("plan", "categorical", segment=True),
        FeatureSpec("vip", "boolean"),
        FeatureSpec("note", "text"),
    ),
    scores=("p_churn",),
)


def rows(ids: list[str], *, tenant: str = "acme", t0: datetime = T0, **extra: list) -> pa.Table:
    """A validated churn batch with one row per id (values derived from the position)."""
    n = len(ids)
    data = {
        "request_id": ids,
        "ts": pa.array([t0 + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", "UTC")),
        "tenant_id": [tenant] * n,
        "model_version": ["v1"] * n,
        "age": [float(i) for i in range(n)],
        "plan": ["pro" if i % 2 else "free" for i in range(n)],
        "vip": [i % 3 == 0 for i in range(n)],
        "note": [f"note {i}" for i in range(n)],
        "prediction": pa.array([i % 2 for i in range(n)], pa.int32()),
        "p_churn": [i / max(n, 1) for i in range(n)],
    }
    data.update(extra)
    return pa.table(data)


@pytest.fixture(params=[False, True], ids=["alone", "group-commit"])
def store(request: pytest.FixtureRequest) -> Iterator[LogStore]:
    """Every append test runs with one transaction per append and with group commit."""
    s = LogStore(":memory:", group_commit=request.param)
    s.ensure_model("churn", CHURN)
    yield s
    s.close()


def stored_ids(store: LogStore, model: str = "churn") -> list[str]:
    return store.read_inferences(model, columns=["request_id"])["request_id"].to_pylist()


# --- tables and schema ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "prediction_type", "scores", "classes"),
    [
        ("binary", pa.int32(), ("p",), ()),
        ("multiclass", pa.string(), ("p_a", "p_b"), ("a", "b")),
        ("regression", pa.float64(), (), ()),
    ],
)
def test_tables_typed_per_task(
    task: str, prediction_type: pa.DataType, scores: tuple[str, ...], classes: tuple[str, ...]
) -> None:
    schema = ModelSchema(
        task=task,  # type: ignore[arg-type]
        features=(
            FeatureSpec("x", "numeric"),
            FeatureSpec("c", "categorical"),
            FeatureSpec("b", "boolean"),
            FeatureSpec("t", "text"),
        ),
        prediction="pred",
        scores=scores,
        classes=classes,
    )
    with LogStore(":memory:") as s:
        s.ensure_model("m", schema)
        got = s.read_inferences("m").schema
        want = s.arrow_schema("m", schema)
        assert got.names == [*want.names, "received_at"]
        for f in want:
            assert got.field(f.name).type == f.type, f.name
        assert want.field("ts").type == pa.timestamp("us", tz="UTC")
        assert want.field("x").type == pa.float64()
        assert want.field("c").type == pa.string()
        assert want.field("b").type == pa.bool_()
        assert want.field("t").type == pa.string()
        assert want.field("pred").type == prediction_type
        for sc in scores:
            assert want.field(sc).type == pa.float64()
        labels = s.read_labels("m").schema
        assert labels.names == ["request_id", "label", "ts", "received_at", "tenant_id"]
        assert labels.field("label").type == prediction_type
        assert s.read_events().schema.names == [
            "event_id",
            "tenant_id",
            "ts",
            "name",
            "value",
            "request_id",
            "model",
            "received_at",
        ]
        assert s.read_quarantine().num_rows == 0
        assert s.models() == ["m"]


def test_new_feature_adds_nullable_column(store: LogStore) -> None:
    store.append_inferences("churn", rows(["a", "b"]))
    evolved = ModelSchema(
        task="binary",
        features=(*CHURN.features, FeatureSpec("income", "numeric")),
        scores=("p_churn",),
    )
    store.ensure_model("churn", evolved)
    store.ensure_model("churn", evolved)  # idempotent
    store.append_inferences("churn", rows(["c"], income=[42.0]))
    got = store.read_inferences("churn", columns=["request_id", "income"]).to_pylist()
    # Ordered by ts: "c" (new batch) shares "a"'s ts.
    assert got == [
        {"request_id": "a", "income": None},
        {"request_id": "c", "income": 42.0},
        {"request_id": "b", "income": None},
    ]
    # An old-shaped batch (without the new column) is still accepted.
    assert store.append_inferences("churn", rows(["d"])).accepted == 1


def test_type_change_is_refused_and_changes_nothing(store: LogStore) -> None:
    changed = ModelSchema(
        task="binary",
        features=(
            FeatureSpec("age", "categorical"),  # was numeric
            FeatureSpec("plan", "categorical"),
            FeatureSpec("vip", "boolean"),
            FeatureSpec("note", "text"),
            FeatureSpec("brand_new", "numeric"),
        ),
        scores=("p_churn",),
    )
    with pytest.raises(SchemaChangeError) as err:
        store.ensure_model("churn", changed)
    msg = str(err.value)
    assert "'age'" in msg and "DOUBLE" in msg and "VARCHAR" in msg
    assert "brand_new" not in store.read_inferences("churn").schema.names

    with pytest.raises(SchemaChangeError, match=r"'label'.*INTEGER to VARCHAR"):
        store.ensure_model(
            "churn", ModelSchema("multiclass", CHURN.features, scores=(), classes=("a", "b"))
        )


@pytest.mark.parametrize(
    ("model", "features"),
    [
        ("Bad-Name", (FeatureSpec("x", "numeric"),)),
        ('x"; DROP TABLE events; --', (FeatureSpec("x", "numeric"),)),
        ("ok", (FeatureSpec('x" DOUBLE); --', "numeric"),)),
        ("ok", (FeatureSpec("request_id", "numeric"),)),
        ("ok", (FeatureSpec("Age", "numeric"), FeatureSpec("age", "numeric"))),
        ("ok", (FeatureSpec("x", "vector"),)),  # type: ignore[arg-type]
    ],
)
def test_bad_names_are_refused(model: str, features: tuple[FeatureSpec, ...]) -> None:
    with LogStore(":memory:") as s:
        with pytest.raises(LogStoreError):
            s.ensure_model(model, ModelSchema("regression", features))
        assert s.models() == []


def test_unknown_model(store: LogStore) -> None:
    with pytest.raises(UnknownModelError, match="nope") as err:
        store.append_inferences("nope", rows(["a"]))
    assert isinstance(err.value, KeyError)
    with pytest.raises(KeyError):
        store.count_inferences("nope")


def test_bad_batches_are_refused_whole(store: LogStore) -> None:
    with pytest.raises(LogStoreError, match="surprise"):
        store.append_inferences("churn", rows(["a"], surprise=[1]))
    with pytest.raises(LogStoreError, match="request_id"):
        store.append_inferences("churn", rows(["a"]).drop_columns(["request_id"]))
    with pytest.raises(LogStoreError, match="null"):
        store.append_inferences("churn", rows(["a", None]))  # type: ignore[list-item]
    with pytest.raises(LogStoreError, match="age"):
        store.append_inferences("churn", rows(["a"], age=["not a number"]))
    assert store.count_inferences("churn") == 0


def test_batch_is_cast_to_table_types(store: LogStore) -> None:
    batch = rows(["a", "b"]).set_column(
        8, "prediction", pa.array([1, 0], pa.int64())
    )  # int64 from JSON decoding
    batch = batch.set_column(1, "ts", pa.array([T0.replace(tzinfo=None)] * 2, pa.timestamp("ms")))
    assert store.append_inferences("churn", batch).accepted == 2
    got = store.read_inferences("churn")
    assert got.schema.field("prediction").type == pa.int32()
    assert got["ts"].to_pylist() == [T0, T0]


# --- idempotency ---------------------------------------------------------------------------
def test_retry_of_same_batch_is_all_duplicates(store: LogStore) -> None:
    batch = rows([f"r{i}" for i in range(100)])
    assert store.append_inferences("churn", batch) == logstore_module.AppendResult(100, 0)
    assert store.append_inferences("churn", batch) == logstore_module.AppendResult(0, 100)
    assert store.count_inferences("churn") == 100


def test_in_batch_duplicates_first_wins(store: LogStore) -> None:
    batch = rows(["a", "b", "a", "c", "b"])
    res = store.append_inferences("churn", batch)
    assert (res.accepted, res.duplicates) == (3, 2)
    got = store.read_inferences("churn", columns=["request_id", "age"]).to_pylist()
    assert sorted((r["request_id"], r["age"]) for r in got) == [("a", 0.0), ("b", 1.0), ("c", 3.0)]


def test_many_repeats_in_a_large_batch_first_wins(store: LogStore) -> None:
    """Thousands of rows with every key repeated (equal hashes in any order of the unstable
    sort): the first occurrence of each key is stored, once, and the index then knows each."""
    rng = np.random.default_rng(7)
    keys = [f"k{i}" for i in range(1500)]
    ids = [keys[i] for i in rng.integers(0, len(keys), 6000)] + keys  # every key at least once
    res = store.append_inferences("churn", rows(ids))
    assert (res.accepted, res.duplicates) == (1500, len(ids) - 1500)
    first = {}
    for i, k in enumerate(ids):
        first.setdefault(k, float(i))
    got = store.read_inferences("churn", columns=["request_id", "age"]).to_pylist()
    assert sorted((r["request_id"], r["age"]) for r in got) == sorted(first.items())
    more = [f"n{i}" for i in range(300)]
    again = [*more, *ids[:3000], *more]
    assert store.append_inferences("churn", rows(again)) == logstore_module.AppendResult(
        300, len(again) - 300
    )
    assert len(stored_ids(store)) == 1800


def test_partial_overlap_with_other_ts(store: LogStore) -> None:
    store.append_inferences("churn", rows(["a", "b", "c"]))
    # The same ids with another ts must still be recognised (no reliance on the ts range).
    later = rows(["c", "d", "a"], t0=T0 + timedelta(days=30))
    assert store.append_inferences("churn", later) == logstore_module.AppendResult(1, 2)
    assert sorted(stored_ids(store)) == ["a", "b", "c", "d"]


def test_hash_collisions_do_not_drop_rows(store: LogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """If every hash looked stored (worst-case collisions), new rows are still accepted."""
    store.append_inferences("churn", rows(["a", "b"]))
    monkeypatch.setattr(
        logstore_module._KeyIndex,
        "contains_sorted",
        lambda self, h: np.ones(h.shape, dtype=bool),
    )
    res = store.append_inferences("churn", rows(["b", "x", "y"], t0=T0 + timedelta(hours=5)))
    assert res == logstore_module.AppendResult(2, 1)
    assert sorted(stored_ids(store)) == ["a", "b", "x", "y"]


def test_keys_are_per_tenant(store: LogStore) -> None:
    """An id stored by one tenant neither shows as a duplicate to another nor blocks its row."""
    assert store.append_inferences("churn", rows(["r1", "r2"])) == logstore_module.AppendResult(
        2, 0
    )
    globex = rows(["r2", "r1", "r3"], tenant="globex", age=[7.0, 8.0, 9.0])
    assert store.append_inferences("churn", globex) == logstore_module.AppendResult(3, 0)
    # retries are still recognised, each within its own tenant
    assert store.append_inferences("churn", globex) == logstore_module.AppendResult(0, 3)
    assert store.append_inferences("churn", rows(["r1"])) == logstore_module.AppendResult(0, 1)
    got = store.read_inferences("churn", columns=["tenant_id", "request_id", "age"]).to_pylist()
    assert sorted((r["tenant_id"], r["request_id"], r["age"]) for r in got) == [
        ("acme", "r1", 0.0),
        ("acme", "r2", 1.0),
        ("globex", "r1", 8.0),
        ("globex", "r2", 7.0),
        ("globex", "r3", 9.0),
    ]


def test_in_batch_repeats_are_per_tenant(store: LogStore) -> None:
    """One unscoped batch holding the same id for two tenants keeps both (first wins within
    each tenant)."""
    batch = pa.concat_tables([rows(["a", "b"]), rows(["a", "a"], tenant="globex")])
    assert store.append_inferences("churn", batch) == logstore_module.AppendResult(3, 1)
    assert store.count_inferences("churn", "globex") == 1


def test_key_index_runs_stay_few_and_exact() -> None:
    rng = np.random.default_rng(3)
    idx = logstore_module._KeyIndex(np.array([], dtype=np.uint64))
    added: list[np.ndarray] = []
    for _ in range(64):
        h = np.sort(rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64))
        idx.add_sorted(h)
        added.append(h)
    assert len(idx) == 64_000 and len(idx._runs) <= 7
    every = np.sort(np.concatenate(added))
    assert idx.contains_sorted(every).all()
    fresh = np.sort(rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64))
    assert idx.contains_sorted(fresh).sum() == np.isin(fresh, every).sum()


def test_retry_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "logs.duckdb"
    batch = rows([f"r{i}" for i in range(50)])
    with LogStore(path) as s:
        s.ensure_model("churn", CHURN)
        assert s.append_inferences("churn", batch).accepted == 50
        s.append_labels("churn", pa.table({"request_id": ["r1"], "label": [1]}))
        s.append_events(events(["e1"]))
        s.put_reference("churn", "train", batch.select(["age", "plan"]))
        s.quarantine([QuarantineRow("inference", "churn", 0, "age", "bad", "{}")])
    with LogStore(path) as s:
        # the index is rebuilt by (tenant, id): the same ids of another tenant are new
        assert s.append_inferences("churn", rows(["r1", "r2"], tenant="globex")).accepted == 2
        assert s.append_events(events(["e1"], tenant="globex")).accepted == 1
        assert s.append_inferences("churn", batch).duplicates == 50
        assert (
            s.append_labels("churn", pa.table({"request_id": ["r1"], "label": [0]})).accepted == 0
        )
        assert s.append_events(events(["e1"])).duplicates == 1
        assert s.count_inferences("churn") == 52
        assert s.list_references("churn") == [("train", 1, 50)]
        assert s.read_quarantine().num_rows == 1
        # a label sent without a tenant labels r1 of every tenant without a label of its own
        assert s.read_joined("churn").filter(pc.field("request_id") == "r1")[
            "label"
        ].to_pylist() == [1, 1]


def test_closed_store_refuses_work() -> None:
    s = LogStore(":memory:")
    s.ensure_model("churn", CHURN)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(LogStoreError, match="closed"):
        s.append_inferences("churn", rows(["a"]))
    with pytest.raises(LogStoreError, match="closed"):
        s.count_inferences("churn")


def test_one_store_per_file_per_process(tmp_path: Path) -> None:
    path = tmp_path / "logs.duckdb"
    with LogStore(path), pytest.raises(LogStoreError, match="already open"):
        LogStore(path)
    with LogStore(path):  # released on close
        pass


# --- labels ---------------------------------------------------------------------------------
def test_labels_join_whatever_the_arrival_order(store: LogStore) -> None:
    # "early" gets its label before its inference row, "late" after.
    store.append_labels("churn", pa.table({"request_id": ["early"], "label": [1]}))
    store.append_inferences("churn", rows(["early", "late", "unlabelled"]))
    store.append_labels(
        "churn",
        pa.table(
            {
                "request_id": ["late", "early"],  # a second label for "early": first one wins
                "label": [0, 0],
                "ts": pa.array([T0, T0], pa.timestamp("us", "UTC")),
            }
        ),
    )
    joined = {r["request_id"]: r["label"] for r in store.read_joined("churn").to_pylist()}
    assert joined == {"early": 1, "late": 0, "unlabelled": None}
    assert store.read_labels("churn").num_rows == 2
    assert store.read_joined("churn", tenant_id="other").num_rows == 0


def test_label_retry_and_in_batch_repeat(store: LogStore) -> None:
    labels = pa.table({"request_id": ["a", "b", "a"], "label": [1, 0, 0]})
    assert store.append_labels("churn", labels) == logstore_module.AppendResult(2, 1)
    assert store.append_labels("churn", labels) == logstore_module.AppendResult(0, 3)
    got = {r["request_id"]: r["label"] for r in store.read_labels("churn").to_pylist()}
    assert got == {"a": 1, "b": 0}


def labels(ids: list[str], values: list[int], tenant: str | None = None) -> pa.Table:
    return pa.table(
        {
            "request_id": ids,
            "label": pa.array(values, pa.int32()),
            "tenant_id": pa.array([tenant] * len(ids), pa.string()),
        }
    )


def test_labels_are_per_tenant_and_join_their_tenant_first(store: LogStore) -> None:
    """Two tenants label the same request_id differently; an unscoped label without a tenant
    labels every tenant's row that has no label of its own, and never a row twice."""
    store.append_inferences("churn", rows(["r1", "r2"]))
    store.append_inferences("churn", rows(["r1", "r2"], tenant="globex"))
    store.append_inferences("churn", rows(["r1"], tenant="initech"))
    assert store.append_labels("churn", labels(["r1"], [1], "acme")).accepted == 1
    assert store.append_labels("churn", labels(["r1"], [0], "globex")).accepted == 1  # no leak
    assert store.append_labels("churn", labels(["r1", "r2"], [0, 1])).accepted == 2
    assert store.append_labels("churn", labels(["r1"], [1], "globex")).duplicates == 1
    assert store.append_labels("churn", labels(["r1"], [1])).duplicates == 1
    joined = {
        (r["tenant_id"], r["request_id"]): r["label"]
        for r in store.read_joined("churn").to_pylist()
    }
    assert joined == {
        ("acme", "r1"): 1,
        ("acme", "r2"): 1,
        ("globex", "r1"): 0,
        ("globex", "r2"): 1,
        ("initech", "r1"): 0,
    }
    assert store.read_joined("churn").num_rows == 5  # each row once
    assert store.rows_per_window("churn", timedelta(days=1), labelled=True) == [5]


# --- events ---------------------------------------------------------------------------------
def events(ids: list[str], tenant: str = "acme") -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "event_id": ids,
            "tenant_id": [tenant] * n,
            "ts": pa.array([T0 + timedelta(hours=i) for i in range(n)], pa.timestamp("us", "UTC")),
            "name": ["revenue"] * n,
            "value": [float(i) for i in range(n)],
            "request_id": [None] * n,
        }
    )


def test_events_idempotent_by_event_id(store: LogStore) -> None:
    assert store.append_events(events(["e1", "e2", "e1"])) == logstore_module.AppendResult(2, 1)
    # another tenant's e2 is its own event, not a duplicate of acme's
    assert store.append_events(events(["e2", "e3"], tenant="globex")).accepted == 2
    assert store.append_events(events(["e2", "e3"], tenant="globex")).duplicates == 2
    got = store.read_events()
    assert sorted(zip(got["tenant_id"].to_pylist(), got["event_id"].to_pylist(), strict=True)) == [
        ("acme", "e1"),
        ("acme", "e2"),
        ("globex", "e2"),
        ("globex", "e3"),
    ]
    assert store.read_events(tenant_id="globex")["event_id"].to_pylist() == ["e2", "e3"]
    assert store.read_events(start=T0 + timedelta(minutes=30))["event_id"].to_pylist() == [
        "e2",
        "e3",
    ]
    with pytest.raises(LogStoreError, match="event_id"):
        store.append_events(events(["x"]).drop_columns(["event_id"]))


# --- references -----------------------------------------------------------------------------
def test_reference_versions(store: LogStore) -> None:
    v1 = (
        rows([f"r{i}" for i in range(10)])
        .select(["age", "plan", "prediction"])
        .append_column("label", pa.array([1, 0] * 5, pa.int64()))
    )
    v2 = rows([f"r{i}" for i in range(4)]).select(["age", "vip"])
    assert store.put_reference("churn", "training", v1) == 1
    assert store.put_reference("churn", "training", v2) == 2
    assert store.put_reference("churn", "validation", v2) == 1
    assert store.list_references("churn") == [
        ("training", 1, 10),
        ("training", 2, 4),
        ("validation", 1, 4),
    ]
    latest = store.read_reference("churn", "training")
    assert latest.column_names == ["age", "vip"] and latest.num_rows == 4
    first = store.read_reference("churn", "training", version=1)
    assert first.column_names == ["age", "plan", "prediction", "label"] and first.num_rows == 10
    assert first.schema.field("label").type == pa.int32()
    assert first["label"].to_pylist() == [1, 0] * 5
    assert first["age"].to_pylist() == v1["age"].to_pylist()
    with pytest.raises(KeyError, match=r"'nope'.*training v1, training v2, validation v1"):
        store.read_reference("churn", "nope")
    with pytest.raises(KeyError, match="version 3"):
        store.read_reference("churn", "training", version=3)
    with pytest.raises(LogStoreError, match="unknown_col"):
        store.put_reference("churn", "training", pa.table({"unknown_col": [1.0]}))
    with pytest.raises(LogStoreError, match="reference name"):
        store.put_reference("churn", "../etc", v1)
    assert store.list_references("churn")[-1] == ("validation", 1, 4)
    assert store.count_inferences("churn") == 0  # references are not logs


def test_reference_keeps_upload_order(store: LogStore) -> None:
    values = np.random.default_rng(0).normal(size=50_000)
    store.put_reference("churn", "big", pa.table({"age": values}))
    assert store.read_reference("churn", "big")["age"].to_numpy().tolist() == values.tolist()


# --- quarantine -----------------------------------------------------------------------------
def test_quarantine_round_trip(store: LogStore) -> None:
    raw = '{"request_id": "r1", "age": "old", "ünïcode": "✓"}'
    store.quarantine(
        [
            QuarantineRow("inference", "churn", 3, "age", "expected a number", raw, "acme", "b1"),
            QuarantineRow("event", None, 0, "ts", "missing", "{}"),
        ]
    )
    store.quarantine([])
    got = store.read_quarantine().to_pylist()
    assert [g["id"] for g in got] == [1, 2]
    first = got[0]
    assert (first["kind"], first["model"], first["row_index"], first["field"]) == (
        "inference",
        "churn",
        3,
        "age",
    )
    assert (first["reason"], first["raw"], first["tenant_id"], first["batch_id"]) == (
        "expected a number",
        raw,
        "acme",
        "b1",
    )
    assert first["received_at"].tzinfo is not None
    assert store.read_quarantine(model="churn").num_rows == 1
    assert store.read_quarantine(limit=1).num_rows == 1


# --- reads -----------------------------------------------------------------------------------
def group_by_tenant(store: LogStore, model: str = "churn") -> dict[str, int]:
    """DuckDB's own count of the stored rows per tenant (what the counts in memory must equal)."""
    t = store.query_arrow(
        f"SELECT tenant_id, count(*) AS n FROM inferences__{model} GROUP BY tenant_id"
    )
    return dict(zip(t["tenant_id"].to_pylist(), t["n"].to_pylist(), strict=True))


def test_tenant_counts_equal_the_table_after_every_append(store: LogStore) -> None:
    """``tenant_counts`` (and ``count_inferences``, ``tenants_seen``) are kept in memory: built
    by one scan at the first read, then added to by each append after its COMMIT. They equal
    DuckDB's GROUP BY at once after every append: duplicates (stored, in the batch, the same id
    under another tenant), a mixed-tenant batch, a refused batch, concurrent appends."""
    assert store.tenant_counts("churn") == {} and store.tenants_seen("churn") == []
    store.append_inferences("churn", rows(["a0", "a1"], tenant="acme"))
    assert store.tenant_counts("churn") == group_by_tenant(store) == {"acme": 2}
    store.append_inferences("churn", rows(["a1", "a2", "a2"], tenant="acme"))  # 1 stored, 1 twice
    store.append_inferences("churn", rows(["a0"], tenant="globex"))  # another tenant's id: new
    mixed = pa.concat_tables([rows(["m0", "m1"], tenant="initech"), rows(["m0"], tenant="acme")])
    assert store.append_inferences("churn", mixed).accepted == 3
    with pytest.raises(LogStoreError, match="bogus"):
        store.append_inferences("churn", rows(["x0"], tenant="acme", bogus=[1.0]))
    assert store.tenant_counts("churn") == group_by_tenant(store)
    assert store.tenant_counts("churn") == {"acme": 4, "globex": 1, "initech": 2}

    def worker(w: int) -> None:  # with group commit these share commits
        for k in range(10):
            ids = [f"w{w}-{k}-{j}" for j in range(w + 1)] + [f"w{w}-0-0"]  # and a retry
            store.append_inferences(
                "churn", rows(ids, tenant=("acme", "globex", "umbrella")[w % 3])
            )

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    truth = group_by_tenant(store)
    assert store.tenant_counts("churn") == truth
    assert truth["umbrella"] == 10 * 3 + 10 * 6  # workers 2 and 5
    assert store.count_inferences("churn") == sum(truth.values())
    assert store.count_inferences("churn", "globex") == truth["globex"]
    assert store.count_inferences("churn", "nobody") == 0
    assert store.tenants_seen("churn") == ["acme", "globex", "initech", "umbrella"]


def test_tenant_counts_built_from_a_reopened_file(tmp_path: Path) -> None:
    """Counts are not stored: a new process (a reopened store) builds them from the table,
    including rows appended before any read, then keeps them."""
    path = tmp_path / "logs.duckdb"
    with LogStore(path, group_commit=True) as s:
        s.ensure_model("churn", CHURN)
        s.append_inferences("churn", rows([f"a{i}" for i in range(7)], tenant="acme"))
        assert s.tenant_counts("churn") == {"acme": 7}
        s.append_inferences("churn", rows(["g0"], tenant="globex"))
    with LogStore(path) as s:
        s.append_inferences("churn", rows(["g1", "g0"], tenant="globex"))  # before any read
        assert s.tenant_counts("churn") == group_by_tenant(s) == {"acme": 7, "globex": 2}
        s.append_inferences("churn", rows(["g2"], tenant="globex"))
        assert s.count_inferences("churn", "globex") == 3
    with pytest.raises(LogStoreError, match="closed"):
        s.count_inferences("churn")
    assert s.cached_tenant_counts("churn") is None


def test_read_filters(store: LogStore) -> None:
    store.append_inferences("churn", rows([f"a{i}" for i in range(10)], tenant="acme"))
    store.append_inferences("churn", rows([f"g{i}" for i in range(5)], tenant="globex"))
    assert store.count_inferences("churn") == 15
    assert store.count_inferences("churn", tenant_id="globex") == 5
    assert store.tenants_seen("churn") == ["acme", "globex"]
    window = store.read_inferences(
        "churn", start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=4), tenant_id="acme"
    )
    assert window["request_id"].to_pylist() == ["a2", "a3"]
    naive = store.read_inferences("churn", start=datetime(2026, 3, 1, 0, 8), tenant_id="acme")
    assert naive["request_id"].to_pylist() == ["a8", "a9"]
    assert store.read_inferences("churn", limit=3).num_rows == 3
    assert store.read_inferences("churn", columns=["age"]).column_names == ["age"]
    with pytest.raises(LogStoreError, match="bogus"):
        store.read_inferences("churn", columns=["bogus"])
    ts = store.read_inferences("churn")["ts"]
    assert ts.type == pa.timestamp("us", tz="UTC")
    assert store.read_inferences("churn")["received_at"].null_count == 0


def _wait(predicate, seconds: float = 15.0) -> bool:
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    while datetime.now(UTC) < deadline:
        if predicate():
            return True
        import time

        time.sleep(0.05)
    return predicate()


def test_background_checkpoint_folds_the_wal_after_the_commit_and_retries_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    path = tmp_path / "bg.duckdb"
    wal = Path(f"{path}.wal")

    def wal_bytes() -> int:
        return wal.stat().st_size if wal.exists() else 0

    store = LogStore(path, background_checkpoint="1MB")
    store.ensure_model("churn", CHURN)
    assert store._checkpointer is not None and store._checkpointer.is_alive()
    # DuckDB's inline threshold is moved out of the way (4x), so the commit returns first
    setting = store._run("SELECT current_setting('checkpoint_threshold')")[0][0]
    assert setting.startswith("3.8 MiB"), setting

    # the first background checkpoint fails (as on a full disk): the WAL keeps the rows and
    # the thread tries again a second later
    failures = []
    real_run = store._run

    def run(sql: str, params=None):
        if sql == "CHECKPOINT" and not failures:
            failures.append(sql)
            raise duckdb.IOException("No space left on device")
        return real_run(sql, params)

    monkeypatch.setattr(store, "_run", run)
    # a reader's open transaction neither blocks the checkpoint nor loses its snapshot
    reader = store._con.cursor()
    reader.execute("BEGIN TRANSACTION")
    assert reader.execute("SELECT count(*) FROM inferences__churn").fetchall() == [(0,)]
    sizes = []
    for b in range(4):
        store.append_inferences("churn", rows([f"a{b}-{i}" for i in range(4000)]))
        sizes.append(wal_bytes())
    assert max(sizes) >= 1_000_000  # no commit folded the WAL inline
    assert _wait(lambda: failures and wal_bytes() < 1_000_000), "the WAL was never folded in"
    assert reader.execute("SELECT count(*) FROM inferences__churn").fetchall() == [(0,)]
    reader.execute("COMMIT")
    reader.close()
    assert store.count_inferences("churn") == 16_000

    thread = store._checkpointer
    store.close()
    assert not thread.is_alive()
    with LogStore(path) as again:
        assert again.count_inferences("churn") == 16_000


def test_background_checkpoint_off_by_default_and_for_memory_stores(tmp_path: Path) -> None:
    with LogStore(tmp_path / "plain.duckdb") as plain:
        assert plain._checkpointer is None
    with LogStore(":memory:", background_checkpoint="1MB") as mem:
        assert mem._checkpointer is None
    with pytest.raises(LogStoreError, match="invalid size"):
        LogStore(tmp_path / "bad.duckdb", background_checkpoint="lots")


# --- group commit ----------------------------------------------------------------------------
def _queue(store: LogStore, results: dict[str, object], name: str, append) -> threading.Thread:
    """Start ``append`` on a thread and wait until it is queued behind the held writes."""
    before = store.queued_appends

    def run() -> None:
        try:
            results[name] = append()
        except Exception as exc:
            results[name] = exc

    t = threading.Thread(target=run)
    t.start()
    assert _wait(lambda: store.queued_appends == before + 1)
    return t


def test_group_commit_shares_one_commit_and_keeps_per_tenant_idempotency() -> None:
    """Appends queued while the writer is busy commit together, planned in queue order: a key
    sent twice in one group is stored once (by the first request), per tenant; a batch the
    store refuses fails only its own caller. Control: with ``group_commit=False`` nothing
    queues (each append waits for the lock and commits alone)."""
    store = LogStore(":memory:", group_commit=True)
    store.ensure_model("churn", CHURN)
    store.append_inferences("churn", rows(["old"]))
    results: dict[str, object] = {}
    with store.writes_held():
        threads = [
            _queue(store, results, "a", lambda: store.append_inferences("churn", rows(["a", "b"]))),
            _queue(
                store,
                results,
                "b",
                lambda: store.append_inferences("churn", rows(["b", "c", "old"], age=[9.0] * 3)),
            ),
            _queue(
                store,
                results,
                "globex",
                lambda: store.append_inferences("churn", rows(["b"], tenant="globex")),
            ),
            _queue(
                store,
                results,
                "bad",
                lambda: store.append_inferences("churn", rows(["z"], extra=["?"])),
            ),
            _queue(store, results, "event", lambda: store.append_events(events(["e1", "e1"]))),
        ]
        assert not results  # nobody is acknowledged before the commit
    for t in threads:
        t.join(timeout=30)
    assert results["a"] == logstore_module.AppendResult(2, 0)
    assert results["b"] == logstore_module.AppendResult(1, 2)
    assert results["globex"] == logstore_module.AppendResult(1, 0)
    assert isinstance(results["bad"], LogStoreError) and "extra" in str(results["bad"])
    assert results["event"] == logstore_module.AppendResult(1, 1)
    got = store.read_inferences("churn", columns=["tenant_id", "request_id", "age"]).to_pylist()
    assert sorted((r["tenant_id"], r["request_id"], r["age"]) for r in got) == [
        ("acme", "a", 0.0),
        ("acme", "b", 1.0),  # the first request's row, not the second's (age 9)
        ("acme", "c", 9.0),
        ("acme", "old", 0.0),
        ("globex", "b", 0.0),
    ]
    assert store.commit_stats()["appends"] - store.commit_stats()["commits"] >= 3
    store.close()


@pytest.mark.parametrize("group_commit", [True, False])
def test_append_many_gives_each_batch_its_own_outcome_in_order(group_commit: bool) -> None:
    """``append_many`` (the lean ingest writer's call): batches planned in the order given (a
    key sent twice is stored once, by the first), each with its own result or error (a bad
    batch, an unknown kind, a missing model fail alone), an empty batch is (0, 0); with
    group commit the stored batches share one commit."""
    store = LogStore(":memory:", group_commit=group_commit)
    store.ensure_model("churn", CHURN)
    store.append_inferences("churn", rows(["old"]))
    before = store.commit_stats()
    out = store.append_many(
        [
            ("inferences", "churn", rows(["a", "b"])),
            ("inferences", "churn", rows(["b", "c", "old"], age=[9.0] * 3)),
            ("inferences", "churn", rows(["z"], extra=["?"])),
            ("events", None, events(["e1", "e1"])),
            ("labels", None, rows(["a"])),
            ("nonsense", "churn", rows(["q"])),
            ("inferences", "churn", rows([])),
            ("labels", "churn", labels(["a", "zz"], [1, 0])),
        ]
    )
    assert out[0] == logstore_module.AppendResult(2, 0)
    assert out[1] == logstore_module.AppendResult(1, 2)
    assert isinstance(out[2], LogStoreError) and "extra" in str(out[2])
    assert out[3] == logstore_module.AppendResult(1, 1)
    assert isinstance(out[4], LogStoreError) and "needs a model" in str(out[4])
    assert isinstance(out[5], LogStoreError) and "unknown append kind" in str(out[5])
    assert out[6] == logstore_module.AppendResult(0, 0)
    assert out[7] == logstore_module.AppendResult(2, 0)
    got = store.read_inferences("churn", columns=["request_id", "age"]).to_pylist()
    assert sorted((r["request_id"], r["age"]) for r in got) == [
        ("a", 0.0),
        ("b", 1.0),  # the first batch's row, not the second's (age 9)
        ("c", 9.0),
        ("old", 0.0),
    ]
    stats = store.commit_stats()
    assert stats["appends"] - before["appends"] == 4
    commits = stats["commits"] - before["commits"]
    assert commits == (1 if group_commit else 4)
    store.close()
    (closed,) = store.append_many([("inferences", "churn", rows(["x"]))])
    assert isinstance(closed, LogStoreError) and "closed" in str(closed)


def test_without_group_commit_appends_do_not_queue() -> None:
    store = LogStore(":memory:")
    store.ensure_model("churn", CHURN)
    done = threading.Event()
    with store.writes_held():
        t = threading.Thread(
            target=lambda: (store.append_inferences("churn", rows(["a"])), done.set())
        )
        t.start()
        assert not done.wait(0.3)
        assert store.queued_appends == 0
    t.join(timeout=30)
    assert done.is_set() and stored_ids(store) == ["a"]
    store.close()


def test_small_and_large_batches_hash_keys_alike(tmp_path: Path) -> None:
    """Small batches hash their keys in Python (``storage.key_hash``) or, if that ever
    differed from DuckDB's hash, from list parameters; large ones from an Arrow scan; and the
    index is built by SQL over the stored rows: all must agree, or a retry would be stored
    twice. Ids with non-ASCII text, quotes and long strings; keys stored by one path are
    duplicates for the other, before and after a reopen (index rebuilt from the table)."""
    small = LogStore.SMALL_KEY_BATCH
    assert small < LogStore.PY_KEY_BATCH
    odd = ["é-ü-ñ", "a'b\"c", "x" * 500, "日本語", " lead", "tab\there", ""]
    ids = [f"{odd[i % len(odd)]}-{i}" for i in range(LogStore.PY_KEY_BATCH + 50)]
    path = tmp_path / "keys.duckdb"
    with LogStore(path) as s:
        s.ensure_model("churn", CHURN)
        table = rows(ids, tenant="tenant-u")
        pairs = pa.table({"t": table["tenant_id"], "k": table["request_id"]})
        python = s._key_hashes(pairs.slice(0, small))  # the Python path
        assert s._py_hash is True
        s._py_hash = False  # as if DuckDB's hash had changed: the list path
        listed = s._key_hashes(pairs.slice(0, small))
        s._py_hash = True
        scanned = s._key_hashes(pairs.slice(0, LogStore.PY_KEY_BATCH + 1))  # the Arrow path
        assert python.dtype == listed.dtype == scanned.dtype == np.uint64
        assert np.array_equal(python, listed)
        assert np.array_equal(listed, scanned[:small])
        assert s.append_inferences("churn", table.slice(0, 5)).accepted == 5  # Python path
        big = s.append_inferences("churn", table)  # Arrow path: the first 5 are duplicates
        assert (big.accepted, big.duplicates) == (len(ids) - 5, 5)
        again = s.append_inferences("churn", table.slice(small, 10))  # Python, stored by scan
        assert (again.accepted, again.duplicates) == (0, 10)
    with LogStore(path) as s:  # the index rebuilt by SQL over the stored rows
        for part in (table.slice(0, 7), table.slice(small - 3, 6), table):
            got = s.append_inferences("churn", part)
            assert (got.accepted, got.duplicates) == (0, part.num_rows)


def test_small_and_large_inserts_store_the_same_rows(tmp_path: Path) -> None:
    """One row is inserted as one VALUES row with uncast parameters, more rows from a scan of
    the Arrow table: every type of the table (text with quotes and non-ASCII, doubles,
    booleans, int32, timestamps with microseconds) and nulls read back the same in small
    scans, one large scan and row by row."""
    small = 7
    n = small * 15 + 5
    ids = [f"r{i}" for i in range(n)]
    t0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    table = rows(
        ids,
        t0=t0,
        note=[None if i % 4 == 0 else f"n'ö\"{i}" for i in range(n)],
        age=[None if i % 5 == 0 else i * 1.25 for i in range(n)],
        vip=[None if i % 6 == 0 else i % 2 == 0 for i in range(n)],
    )
    with LogStore(tmp_path / "a.duckdb") as by_parts, LogStore(tmp_path / "b.duckdb") as by_scan:
        for s in (by_parts, by_scan):
            s.ensure_model("churn", CHURN)
        for start in range(0, n, small):  # small scans, as a group commit of few writers
            part = table.slice(start, min(small, n - start))
            assert by_parts.append_inferences("churn", part).accepted == part.num_rows
        assert by_scan.append_inferences("churn", table).accepted == n  # one scan
        cols = table.column_names
        got = by_parts.read_inferences("churn", columns=cols).sort_by("request_id")
        want = by_scan.read_inferences("churn", columns=cols).sort_by("request_id")
        assert got.num_rows == n
        assert got.equals(want)
        assert set(got.column("ts").to_pylist()) == set(table.column("ts").to_pylist())
    with LogStore(tmp_path / "c.duckdb") as by_rows:
        by_rows.ensure_model("churn", CHURN)
        for i in range(n):  # one row at a time: the VALUES path
            assert by_rows.append_inferences("churn", table.slice(i, 1)).accepted == 1
        assert by_rows.read_inferences("churn", columns=cols).sort_by("request_id").equals(want)
