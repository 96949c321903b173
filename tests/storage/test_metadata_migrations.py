"""Migrations: up from empty, idempotent, concurrent, reversible, and in step with the ORM."""

from __future__ import annotations

import threading

from storage.metadata import MetadataStore

TABLES = {
    "tenants",
    "models",
    "api_keys",
    "audit_log",
    # 0002 alerting
    "alert_rules",
    "alerts",
    "alert_silences",
    "alert_channels",
    "alert_groups",
    "alert_notifications",
    "alert_deliveries",
    "alert_delivery_attempts",
    "alert_series",
    # 0003 monitoring
    "monitors",
    "monitor_versions",
    "monitor_runs",
    "metric_results",
    # 0004 KPIs
    "kpis",
    # 0005 users
    "users",
}
HEAD = "0005"  # update when adding a migration


def test_upgrade_from_empty_reaches_head(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    try:
        assert store.current_revision() is None
        assert store.table_names() == []
        assert store.head_revision() == HEAD
        store.upgrade()
        assert store.current_revision() == HEAD
        assert set(store.table_names()) == TABLES | {"alembic_version"}
        assert store.ping()
    finally:
        store.dispose()


def test_upgrade_twice_is_a_no_op_and_keeps_data(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    try:
        store.upgrade()
        store.ensure_tenants(["acme"])
        store.upgrade()
        assert store.current_revision() == HEAD
        assert [t.tenant_id for t in store.list_tenants()] == ["acme"]
    finally:
        store.dispose()


def test_concurrent_upgrades_do_not_collide(metadata_url: str) -> None:
    # Two service processes starting at once must not both try to create the tables.
    stores = [MetadataStore(metadata_url) for _ in range(2)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(store: MetadataStore) -> None:
        try:
            barrier.wait()
            store.upgrade()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert all(s.current_revision() == HEAD for s in stores)
    finally:
        for s in stores:
            s.dispose()


def test_orm_metadata_matches_migrated_schema(metadata_store: MetadataStore) -> None:
    assert metadata_store.schema_diff() == []


def test_schema_diff_sees_a_missing_migration(metadata_url: str) -> None:
    # The agreement test above is only worth something if a difference is reported.
    store = MetadataStore(metadata_url)
    try:
        diffs = store.schema_diff()
    finally:
        store.dispose()
    assert {t for t in TABLES if any(f"'{t}'" in d for d in diffs)} == TABLES
    assert all(d.startswith("('add_table'") or "add_index" in d for d in diffs)


def test_downgrade_to_base_and_up_again(metadata_store: MetadataStore) -> None:
    metadata_store.ensure_tenants(["acme"])
    metadata_store.downgrade("base")
    assert metadata_store.current_revision() is None
    assert not TABLES & set(metadata_store.table_names())
    metadata_store.upgrade()
    assert metadata_store.current_revision() == HEAD
    assert metadata_store.schema_diff() == []
    assert metadata_store.list_tenants() == []
