"""UserStore: create, scope, disable, audit; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from storage.metadata import AlreadyExists, MetadataStore, NotFound
from storage.metadata.users import UserStore


def test_user_round_trip(metadata_store: MetadataStore) -> None:
    users = UserStore(metadata_store)
    u = users.create("ann", "hash", "executive", ["globex", "acme", "acme"], actor="t")
    assert u.tenants == ("acme", "globex") and u.role == "executive" and not u.disabled
    assert users.get("ann") == u and users.get_by_id(u.id) == u
    assert {t.tenant_id for t in metadata_store.list_tenants()} >= {"acme", "globex"}
    all_ = users.create("bob", "hash", "admin")
    assert all_.tenants is None
    assert [x.username for x in users.list()] == ["ann", "bob"]
    assert users.set_disabled("ann", True, actor="t").disabled
    assert [a.action for a in metadata_store.list_audit(object_type="user")][:2] == [
        "user.create",
        "user.disable",
    ][::-1]


def test_user_errors(metadata_store: MetadataStore) -> None:
    users = UserStore(metadata_store)
    users.create("ann", "h", "oncall")
    with pytest.raises(AlreadyExists):
        users.create("ann", "h", "oncall")
    with pytest.raises(ValueError, match="role"):
        users.create("zed", "h", "viewer")
    with pytest.raises(ValueError, match="username"):
        users.create("Bad Name", "h", "oncall")
    with pytest.raises(ValueError, match="at least one tenant"):
        users.create("zed", "h", "oncall", [])
    with pytest.raises(NotFound):
        users.set_disabled("nobody", True)
