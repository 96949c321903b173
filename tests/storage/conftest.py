"""Fixtures for the metadata store: every test runs on SQLite and on PostgreSQL.

PostgreSQL runs only when ``DRIFTWATCH_TEST_POSTGRES_URL`` is set (CI sets it); each test gets
its own freshly created database, dropped afterwards, so tests never see each other's rows.

``metadata_url`` is an empty database (for tests of the migrations themselves);
``migrated_url`` is one already at the head revision, copied from a template migrated once per
session (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL): what the store,
alerting, KPI, API, CLI and client tests start from without paying the migrations each time
(~0.35 s wall on SQLite, ~1.9 s on PostgreSQL per test at load 15; a copy: ~0 s and ~0.9 s).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from storage.metadata import MetadataStore

POSTGRES_ENV = "DRIFTWATCH_TEST_POSTGRES_URL"


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _postgres_base() -> URL:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL variant skipped")
    return make_url(base)


@contextmanager
def _postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template`` if given), dropped at the end."""
    url = _postgres_base()
    name = f"dw_{uuid.uuid4().hex[:16]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    # CREATE/DROP DATABASE cannot run in a transaction.
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty metadata database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    with _postgres_database() as url:
        yield url


class Templates:
    """Metadata databases migrated to head once per session, one per backend, on demand (the
    session fixture ``metadata_templates`` in ``tests/conftest.py``)."""

    def __init__(self, folder: Path, stack: ExitStack) -> None:
        self.folder = folder
        self.stack = stack
        self.made: dict[str, str] = {}

    def get(self, backend: str) -> str:
        if backend not in self.made:
            if backend == "sqlite":
                url = f"sqlite:///{self.folder / 'template.db'}"
            else:
                url = self.stack.enter_context(_postgres_database())
            store = MetadataStore(url)
            store.upgrade()
            store.dispose()  # no open connection: PostgreSQL copies only an idle template
            self.made[backend] = url
        return self.made[backend]


@pytest.fixture(params=BACKENDS)
def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, metadata_templates: Templates
) -> Iterator[str]:
    """URL of a metadata database already migrated to head (a copy of the session's template):
    a SQLite file, or a new PostgreSQL database."""
    with migrated_copy(request.param, tmp_path, metadata_templates) as url:
        yield url


@contextmanager
def migrated_copy(backend: str, folder: Path, templates: Templates) -> Iterator[str]:
    """A copy of the session's migrated ``backend`` database (a file in ``folder`` on SQLite),
    dropped at the end on PostgreSQL."""
    if backend == "postgres":
        _postgres_base()  # skips without PostgreSQL before a template is made
    template = templates.get(backend)
    if backend == "sqlite":
        path = folder / "metadata.db"
        shutil.copyfile(make_url(template).database or "", path)
        yield f"sqlite:///{path}"
        return
    with _postgres_database(make_url(template).database) as url:
        yield url


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
def metadata_store(migrated_url: str) -> Iterator[MetadataStore]:
    """A migrated ``MetadataStore`` on the real clock (a copy of the session's template; its
    ``upgrade`` finds it at head)."""
    store = MetadataStore(migrated_url)
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture
def clocked_store(migrated_url: str, clock: FakeClock) -> Iterator[MetadataStore]:
    """A migrated ``MetadataStore`` whose time is ``clock`` (a copy of the session's template)."""
    store = MetadataStore(migrated_url, clock=clock)
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session for the whole test session (its start is most of the cost),
    shared by the engine tests, the lake-row tests and the engine contract suite.

    Settings for small data (the tests' lakes hold thousands of rows, not millions): the JVM
    compiles with C1 only and collects with the serial GC (C2's compiler threads cost more CPU
    than they save in jobs of seconds), and two shuffle partitions (a Python task each) still
    merge several hours' partials per task. Measured at load 8-13, old vs new: 36 -> 25 s of
    CPU (JVM, Python workers and pytest) on two tests of the contract suite, 83 -> 60 s on
    the three Spark files."""
    from storage.spark_engine import session

    s = session(
        "local[2]",
        "driftwatch-tests",
        **{
            "spark.sql.shuffle.partitions": "2",
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        },
    )
    yield s
    s.stop()
