"""Migrations: up from empty, idempotent, concurrent, reversible, and in step with the ORM."""

from __future__ import annotations

import threading

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from storage.metadata import MetadataStore
from storage.metadata.models import Base
from storage.migrations import make_config

TABLES = {"tenants", "models", "api_keys", "audit_log"}


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_reaches_head(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    try:
        assert store.current_revision() is None
        assert store.head_revision() == "0001"
        store.upgrade()
        assert store.current_revision() == store.head_revision()
        assert TABLES | {"alembic_version"} <= _tables(metadata_url)
        assert store.ping()
    finally:
        store.dispose()


def test_upgrade_twice_is_a_no_op_and_keeps_data(metadata_url: str) -> None:
    store = MetadataStore(metadata_url)
    try:
        store.upgrade()
        store.ensure_tenants(["acme"])
        store.upgrade()
        assert store.current_revision() == "0001"
        assert [t.tenant_id for t in store.list_tenants()] == ["acme"]
    finally:
        store.dispose()


def test_concurrent_upgrades_from_two_processes_worth_of_stores(metadata_url: str) -> None:
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
        assert all(s.current_revision() == "0001" for s in stores)
    finally:
        for s in stores:
            s.dispose()


def test_orm_metadata_matches_migrated_schema(metadata_store: MetadataStore, metadata_url: str):
    engine = create_engine(metadata_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_downgrade_to_base_and_up_again(metadata_store: MetadataStore, metadata_url: str):
    engine = create_engine(metadata_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(make_config(connection=conn), "base")
        assert not (TABLES & _tables(metadata_url))
        assert metadata_store.current_revision() is None
    finally:
        engine.dispose()
    metadata_store.upgrade()
    assert _tables(metadata_url) >= TABLES
