"""Models and tenants in the metadata store: CRUD, audit trail, JSON and time round trips."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.metadata import AlreadyExists, MetadataStore, NotFound
from storage.types import FEATURE_KINDS, FeatureSpec, ModelSchema

SCHEMA = ModelSchema(
    task="binary",
    features=(
        FeatureSpec("age", "numeric"),
        FeatureSpec("country", "categorical", segment=True),
        FeatureSpec("is_new", "boolean"),
        FeatureSpec("comment", "text"),
    ),
    scores=("p_churn",),
)


def test_create_get_list_model(metadata_store: MetadataStore) -> None:
    before = datetime.now(UTC)
    created = metadata_store.create_model("churn", SCHEMA, description="churn v1", actor="alice")
    assert created.name == "churn"
    assert created.schema == SCHEMA
    assert created.task == "binary"
    assert created.description == "churn v1"
    assert created.created_at == created.updated_at
    assert before <= created.created_at <= datetime.now(UTC)

    assert metadata_store.get_model("churn") == created
    assert metadata_store.get_model("nope") is None
    metadata_store.create_model("alpha", ModelSchema("regression", ()))
    assert [m.name for m in metadata_store.list_models()] == ["alpha", "churn"]

    (entry, *_) = metadata_store.list_audit(object_type="model", object_id="churn")
    assert (entry.actor, entry.action, entry.object_type, entry.object_id) == (
        "alice",
        "model.create",
        "model",
        "churn",
    )
    assert entry.detail["schema"] == SCHEMA.to_dict()
    assert entry.detail["description"] == "churn v1"


def test_duplicate_model_is_refused_without_audit(metadata_store: MetadataStore) -> None:
    metadata_store.create_model("churn", SCHEMA)
    with pytest.raises(AlreadyExists, match="churn"):
        metadata_store.create_model("churn", SCHEMA)
    assert len(metadata_store.list_models()) == 1
    assert len(metadata_store.list_audit(object_type="model")) == 1


@pytest.mark.parametrize("name", ["", "Churn", "1model", "a-b", "x" * 64])
def test_bad_model_name_is_a_value_error(metadata_store: MetadataStore, name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        metadata_store.create_model(name, SCHEMA)


def test_bad_task_is_a_value_error(metadata_store: MetadataStore) -> None:
    with pytest.raises(ValueError, match="binary, multiclass, regression"):
        metadata_store.create_model("m", ModelSchema("ranking", ()))  # type: ignore[arg-type]


def test_update_schema_audits_before_and_after(metadata_store: MetadataStore) -> None:
    created = metadata_store.create_model("churn", SCHEMA)
    wider = ModelSchema(
        task="binary",
        features=(*SCHEMA.features, FeatureSpec("plan", "categorical")),
        scores=SCHEMA.scores,
    )
    updated = metadata_store.update_model_schema("churn", wider, actor="bob")
    assert updated.schema == wider
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    assert metadata_store.get_model("churn") == updated

    entry = metadata_store.list_audit(object_type="model")[0]
    assert (entry.actor, entry.action) == ("bob", "model.update_schema")
    assert entry.detail == {"before": SCHEMA.to_dict(), "after": wider.to_dict()}

    # Same schema again: nothing changes, nothing is audited.
    assert metadata_store.update_model_schema("churn", wider) == updated
    assert len(metadata_store.list_audit(object_type="model")) == 2


def test_update_description(metadata_store: MetadataStore) -> None:
    metadata_store.create_model("churn", SCHEMA)
    updated = metadata_store.update_model_description("churn", "v2", actor="carol")
    assert updated.description == "v2"
    assert metadata_store.list_audit(limit=1)[0].action == "model.update_description"


def test_unknown_model_updates_raise_not_found(metadata_store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="ghost"):
        metadata_store.update_model_schema("ghost", SCHEMA)
    with pytest.raises(NotFound, match="ghost"):
        metadata_store.update_model_description("ghost", "x")
    assert metadata_store.list_audit() == []


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
schemas = st.builds(
    ModelSchema,
    task=st.sampled_from(["binary", "multiclass", "regression"]),
    features=st.lists(
        st.builds(
            FeatureSpec, name=names, kind=st.sampled_from(FEATURE_KINDS), segment=st.booleans()
        ),
        max_size=6,
    ).map(tuple),
    prediction=names,
    scores=st.lists(names, max_size=3).map(tuple),
    classes=st.lists(st.text(min_size=1, max_size=8), max_size=3).map(tuple),
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(schema=schemas)
def test_schema_json_round_trip(metadata_store: MetadataStore, schema: ModelSchema) -> None:
    if metadata_store.get_model("m") is None:
        metadata_store.create_model("m", schema)
    else:
        metadata_store.update_model_schema("m", schema)
    stored = metadata_store.get_model("m")
    assert stored is not None
    assert stored.schema == schema
    assert ModelSchema.from_dict(stored.schema.to_dict()) == schema


def test_ensure_tenants_is_idempotent_and_audited(metadata_store: MetadataStore) -> None:
    metadata_store.ensure_tenants(["acme", "globex", "acme"], actor="ingest")
    metadata_store.ensure_tenants(["globex", "initech"])
    metadata_store.ensure_tenants([])
    tenants = metadata_store.list_tenants()
    assert [t.tenant_id for t in tenants] == ["acme", "globex", "initech"]
    assert all(t.name == t.tenant_id for t in tenants)
    assert all(t.created_at.tzinfo is UTC for t in tenants)
    assert metadata_store.get_tenant("acme") == tenants[0]
    assert metadata_store.get_tenant("nobody") is None
    audited = sorted(e.object_id for e in metadata_store.list_audit(object_type="tenant"))
    assert audited == ["acme", "globex", "initech"]


@pytest.mark.parametrize("bad", ["", "x" * 129])
def test_bad_tenant_id_is_a_value_error(metadata_store: MetadataStore, bad: str) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        metadata_store.ensure_tenants([bad])


def test_ensure_tenants_from_8_threads_at_once(metadata_url: str) -> None:
    # Separate stores, so the per-store cache of known tenants cannot hide a race in the
    # database: every thread really inserts the same rows at the same moment.
    stores = [MetadataStore(metadata_url) for _ in range(8)]
    stores[0].upgrade()
    tenant_ids = [f"t{i}" for i in range(20)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: MetadataStore) -> None:
        try:
            barrier.wait()
            store.ensure_tenants(tenant_ids)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sorted(t.tenant_id for t in stores[0].list_tenants()) == sorted(tenant_ids)
        # Each tenant was created (and audited) exactly once.
        audited = [e.object_id for e in stores[0].list_audit(limit=1000, object_type="tenant")]
        assert sorted(audited) == sorted(tenant_ids)
    finally:
        for s in stores:
            s.dispose()


def test_concurrent_writers_do_not_hit_locked_database(metadata_store: MetadataStore) -> None:
    # API threads share one store; on SQLite this exercises WAL + BEGIN IMMEDIATE + busy_timeout.
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        try:
            barrier.wait()
            for j in range(4):
                metadata_store.create_model(f"m{i}_{j}", SCHEMA)
                metadata_store.ensure_tenants([f"tenant{i}_{j}"])
                metadata_store.audit("worker", "test.ping", "thread", str(i))
                metadata_store.list_models()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(metadata_store.list_models()) == 32
    assert len(metadata_store.list_tenants()) == 32
    assert len(metadata_store.list_audit(limit=1000)) == 32 * 3


def test_audit_and_list_audit(metadata_store: MetadataStore) -> None:
    metadata_store.audit("dave", "reference.upload", "reference", "churn/train", {"rows": 10})
    metadata_store.audit("erin", "model.export", "model", "churn")
    newest, older = metadata_store.list_audit()
    assert (newest.actor, newest.action, newest.detail) == ("erin", "model.export", {})
    assert (older.object_type, older.object_id, older.detail) == (
        "reference",
        "churn/train",
        {"rows": 10},
    )
    assert older.ts.tzinfo is UTC and older.ts <= newest.ts
    assert metadata_store.list_audit(limit=1) == [newest]
    assert metadata_store.list_audit(object_type="reference") == [older]
    with pytest.raises(ValueError, match="limit"):
        metadata_store.list_audit(limit=0)
