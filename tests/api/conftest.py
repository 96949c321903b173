"""The API app per test, in process (``tests.support.in_process``: no server, scheduler and
delivery worker off) on a migrated metadata database, with keys of every kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor import cli_common
from monitor.settings import Settings
from tests.storage import conftest as _db
from tests.support import Live, free_port, in_process

CHURN = {
    "name": "churn",
    "task": "binary",
    "features": [
        {"name": "age", "kind": "numeric"},
        {"name": "plan", "kind": "categorical", "segment": True},
        {"name": "mobile", "kind": "boolean"},
        {"name": "note", "kind": "text"},
    ],
    "prediction": "prediction",
    "scores": ["score"],
}


# every API test runs on SQLite and on PostgreSQL metadata, a copy of a database migrated once
# per session (the tests of the migrations themselves are in tests/storage)
metadata_url = _db.migrated_url


@dataclass
class Keys:
    admin: str
    engineer: str
    viewer: str
    acme: str  # engineer scoped to tenant acme
    globex: str  # engineer scoped to tenant globex
    revoked: str


def make_settings(tmp_path: Path, metadata_url: str | None = None, **more: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=metadata_url or "",
        port=free_port(),
        **more,  # type: ignore[arg-type]
    )


def make_keys(live: Live) -> Keys:
    meta = live.services.metadata
    keys = {}
    for name, role, tenant in [
        ("admin", "admin", None),
        ("engineer", "engineer", None),
        ("viewer", "viewer", None),
        ("acme", "engineer", "acme"),
        ("globex", "engineer", "globex"),
        ("revoked", "engineer", None),
    ]:
        info, secret = meta.create_api_key(name, role, tenant)
        keys[name] = secret
        if name == "revoked":
            meta.revoke_api_key(str(info.id))
    return Keys(**keys)


@pytest.fixture
def live(tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    with in_process(make_settings(tmp_path, metadata_url)) as app:
        monkeypatch.setattr(cli_common, "TRANSPORT", app.transport)  # `--url` reaches the app
        yield app


@pytest.fixture
def keys(live: Live) -> Keys:
    return make_keys(live)


def client(live: Live, key: str | None) -> httpx.Client:
    return live.http(key)


@pytest.fixture
def eng(live: Live, keys: Keys) -> Iterator[httpx.Client]:
    with client(live, keys.engineer) as c:
        yield c


@pytest.fixture
def churn(eng: httpx.Client) -> dict:
    r = eng.post("/models", json=CHURN)
    assert r.status_code == 201, r.text
    return r.json()
