"""Alerting fixtures: a migrated store on SQLite and PostgreSQL, a settable clock, an engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from alerts.engine import AlertEngine
from alerts.ssrf import Allowlist
from storage.metadata import MetadataStore
from storage.metadata.alerting import AlertStore
from tests.storage import conftest as _db
from tests.storage.conftest import FakeClock

# a copy of a database migrated once per session (the migrations are tested in tests/storage)
metadata_url = _db.migrated_url
LOCAL = Allowlist.parse(["127.0.0.1"])


@dataclass
class Alerting:
    engine: AlertEngine
    store: AlertStore
    clock: FakeClock
    metadata: MetadataStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def alerting(metadata_url: str, clock: FakeClock) -> Iterator[Alerting]:
    meta = MetadataStore(metadata_url, clock=clock)
    meta.upgrade()
    store = AlertStore(meta, "test-secret-key")
    engine = AlertEngine(store, base_url="https://dw.example", allowlist=LOCAL)
    yield Alerting(engine, store, clock, meta)
    meta.dispose()
