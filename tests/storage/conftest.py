"""Fixtures for the metadata store: every test runs on SQLite and on PostgreSQL.

PostgreSQL runs only when ``DRIFTWATCH_TEST_POSTGRES_URL`` is set (CI sets it); each test gets
its own freshly created database, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from storage.metadata import MetadataStore

POSTGRES_ENV = "DRIFTWATCH_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """URL of an empty metadata database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL variant skipped")
    url = make_url(base)
    name = f"dw_{uuid.uuid4().hex[:16]}"
    # CREATE/DROP DATABASE cannot run in a transaction.
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class FakeClock:
    """A settable clock for ``MetadataStore(clock=...)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metadata_store(metadata_url: str) -> Iterator[MetadataStore]:
    """A migrated ``MetadataStore`` on the real clock."""
    store = MetadataStore(metadata_url)
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture
def clocked_store(metadata_url: str, clock: FakeClock) -> Iterator[MetadataStore]:
    """A migrated ``MetadataStore`` whose time is ``clock``."""
    store = MetadataStore(metadata_url, clock=clock)
    store.upgrade()
    yield store
    store.dispose()
