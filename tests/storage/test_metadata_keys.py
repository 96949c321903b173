"""API keys: format, authentication, revocation, expiry, last_used throttling, audit."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.metadata import Ambiguous, MetadataStore, NotFound, keys
from tests.storage.conftest import FakeClock

KEY_RE = re.compile(r"^dw_[0-9A-Za-z]{43}$")


def test_base62_is_fixed_width_and_exact() -> None:
    assert keys.base62(bytes(32)) == "0" * 43
    assert len(keys.base62(b"\xff" * 32)) == 43  # 2**256 - 1 needs all 43 digits
    assert keys.base62(b"\x00\x3e", width=4) == "0010"
    n = 123456789
    # Decode with our alphabet to check the value really round-trips.
    digits = keys.base62(n.to_bytes(32, "big"))
    value = 0
    for c in digits:
        value = value * 62 + keys.ALPHABET.index(c)
    assert value == n


def test_generated_keys_have_the_documented_shape() -> None:
    generated = {keys.generate_key() for _ in range(200)}
    assert len(generated) == 200
    assert all(KEY_RE.match(k) and keys.looks_like_key(k) for k in generated)
    assert not keys.looks_like_key("dw_short")
    assert not keys.looks_like_key("xx_" + "a" * 43)
    assert not keys.looks_like_key("dw_" + "a" * 42 + "-")


def test_create_and_authenticate(metadata_store: MetadataStore) -> None:
    info, secret = metadata_store.create_api_key("ci", "engineer", actor="alice")
    assert KEY_RE.match(secret)
    assert info.prefix == secret[3:11]
    assert (info.name, info.role, info.tenant_id) == ("ci", "engineer", None)
    assert info.active and info.revoked_at is None and info.last_used_at is None
    assert info.created_at.tzinfo is UTC

    authed = metadata_store.authenticate(secret)
    assert authed is not None
    assert authed.id == info.id
    assert authed.last_used_at is not None and authed.last_used_at.tzinfo is UTC
    assert metadata_store.list_api_keys() == [authed]

    # Wrong, malformed or foreign keys do not authenticate.
    assert metadata_store.authenticate(secret[:-1] + ("0" if secret[-1] != "0" else "1")) is None
    assert metadata_store.authenticate("dw_nope") is None
    assert metadata_store.authenticate("") is None
    assert metadata_store.authenticate(keys.generate_key()) is None

    entry = metadata_store.list_audit(object_type="api_key")[0]
    assert (entry.actor, entry.action, entry.object_id) == ("alice", "api_key.create", str(info.id))
    assert entry.detail["role"] == "engineer" and entry.detail["prefix"] == info.prefix
    # The secret (and its hash) never reach the audit log.
    assert secret not in str(entry.detail) and keys.hash_key(secret) not in str(entry.detail)


def test_only_the_hash_is_stored(metadata_store: MetadataStore, migrated_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    _, secret = metadata_store.create_api_key("ci", "viewer")
    engine = create_engine(migrated_url, poolclass=NullPool)  # metadata_store's database
    try:
        with engine.connect() as conn:
            (row,) = conn.execute(text("SELECT key_hash, prefix FROM api_keys")).all()
    finally:
        engine.dispose()
    assert row.key_hash == keys.hash_key(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", row.key_hash)
    assert secret[3:] not in row.key_hash


def test_tenant_scoped_key_creates_its_tenant(metadata_store: MetadataStore) -> None:
    info, secret = metadata_store.create_api_key("acme-ingest", "engineer", tenant_id="acme")
    assert info.tenant_id == "acme"
    assert [t.tenant_id for t in metadata_store.list_tenants()] == ["acme"]
    authed = metadata_store.authenticate(secret)
    assert authed is not None and authed.tenant_id == "acme"


def test_bad_role_names_the_allowed_ones(metadata_store: MetadataStore) -> None:
    with pytest.raises(ValueError, match="admin, engineer, viewer"):
        metadata_store.create_api_key("x", "root")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        metadata_store.create_api_key(" ", "viewer")
    with pytest.raises(ValueError, match="expires_at"):
        metadata_store.create_api_key("x", "viewer", expires_at=datetime(2030, 1, 1))
    assert metadata_store.list_api_keys() == []
    assert metadata_store.list_audit() == []


def test_revoke_by_id_and_prefix(metadata_store: MetadataStore) -> None:
    a, secret_a = metadata_store.create_api_key("a", "admin")
    b, secret_b = metadata_store.create_api_key("b", "viewer")

    revoked = metadata_store.revoke_api_key(str(a.id), actor="root")
    assert revoked.id == a.id and revoked.revoked_at is not None and not revoked.active
    assert metadata_store.authenticate(secret_a) is None

    # The display prefix, with or without "dw_", or an abbreviation of it.
    for ref in ("dw_" + b.prefix, b.prefix[:5]):
        assert metadata_store.revoke_api_key(ref).id == b.id
    assert metadata_store.authenticate(secret_b) is None

    # Revoking again changes nothing and audits nothing.
    again = metadata_store.revoke_api_key(b.prefix)
    assert again.revoked_at == metadata_store.get_api_key(b.id).revoked_at  # type: ignore[union-attr]
    revokes = [e for e in metadata_store.list_audit() if e.action == "api_key.revoke"]
    assert [(e.object_id, e.actor) for e in revokes] == [(str(b.id), "system"), (str(a.id), "root")]

    with pytest.raises(NotFound):
        metadata_store.revoke_api_key("999")
    with pytest.raises(NotFound):
        metadata_store.revoke_api_key("zz")  # too short to be a prefix, not an id


def test_revoke_by_full_secret(metadata_store: MetadataStore) -> None:
    info, secret = metadata_store.create_api_key("leaked", "engineer")
    assert metadata_store.revoke_api_key(secret).id == info.id
    assert metadata_store.authenticate(secret) is None


def test_ambiguous_prefix_is_a_clear_error(
    metadata_store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force the random part so that two keys share their first characters.
    bodies = iter(["Ab3d" + "X" * 39, "Ab3d" + "Y" * 39, "0001" + "Z" * 39])
    monkeypatch.setattr(keys, "generate_key", lambda: "dw_" + next(bodies))
    first, _ = metadata_store.create_api_key("first", "viewer")
    second, _ = metadata_store.create_api_key("second", "viewer")
    third, _ = metadata_store.create_api_key("third", "viewer")
    assert (first.prefix, second.prefix, third.prefix) == ("Ab3dXXXX", "Ab3dYYYY", "0001ZZZZ")

    with pytest.raises(Ambiguous, match=r"matches several API keys.*'first'.*'second'"):
        metadata_store.revoke_api_key("Ab3d")
    # Prefix matching is case-sensitive, as base62 is (SQLite's LIKE is not).
    with pytest.raises(NotFound):
        metadata_store.revoke_api_key("ab3dx")
    # "0001" is both key id 1 and the prefix of the third key.
    with pytest.raises(Ambiguous, match="give the id"):
        metadata_store.revoke_api_key("0001")
    assert all(k.revoked_at is None for k in metadata_store.list_api_keys())

    assert metadata_store.revoke_api_key("Ab3dY").id == second.id
    # Revoked keys still count: a prefix names a key, not an active key.
    with pytest.raises(Ambiguous):
        metadata_store.revoke_api_key("Ab3d")
    assert metadata_store.revoke_api_key("dw_Ab3dX").id == first.id


def test_expired_key_does_not_authenticate(clocked_store: MetadataStore, clock: FakeClock):
    expires = clock.now + timedelta(hours=1)
    info, secret = clocked_store.create_api_key("temp", "viewer", expires_at=expires)
    assert clocked_store.authenticate(secret) is not None
    clock.advance(minutes=59, seconds=59)
    assert clocked_store.authenticate(secret) is not None
    clock.advance(seconds=1)
    assert clocked_store.authenticate(secret) is None
    assert clocked_store.get_api_key(info.id).expires_at == expires  # type: ignore[union-attr]


def test_last_used_is_written_at_most_once_a_minute(
    clocked_store: MetadataStore, clock: FakeClock
) -> None:
    info, secret = clocked_store.create_api_key("ci", "engineer")
    t0 = clock.now
    assert clocked_store.authenticate(secret).last_used_at == t0  # type: ignore[union-attr]

    clock.advance(seconds=30)
    assert clocked_store.authenticate(secret).last_used_at == t0  # type: ignore[union-attr]
    clock.advance(seconds=29)
    assert clocked_store.get_api_key(info.id).last_used_at == t0  # type: ignore[union-attr]
    assert clocked_store.authenticate(secret).last_used_at == t0  # type: ignore[union-attr]

    clock.advance(seconds=1)  # 60 s after the last write
    t1 = clock.now
    assert clocked_store.authenticate(secret).last_used_at == t1  # type: ignore[union-attr]
    assert clocked_store.list_api_keys()[0].last_used_at == t1
    # last_used_at is bookkeeping, not an audited change.
    assert [e.action for e in clocked_store.list_audit(object_type="api_key")] == ["api_key.create"]


def test_concurrent_authentication_writes_last_used_once(
    clocked_store: MetadataStore, clock: FakeClock
) -> None:
    _, secret = clocked_store.create_api_key("ci", "engineer")
    barrier = threading.Barrier(8)
    results: list[datetime | None] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                info = clocked_store.authenticate(secret)
                results.append(None if info is None else info.last_used_at)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [clock.now] * 40


def test_timestamps_round_trip_as_aware_utc(metadata_store: MetadataStore) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    expires = datetime(2031, 3, 4, 5, 6, 7, 891011, tzinfo=ist)
    info, _ = metadata_store.create_api_key("tz", "viewer", expires_at=expires)
    for seen in (info, metadata_store.get_api_key(info.id), metadata_store.list_api_keys()[0]):
        assert seen is not None
        assert seen.expires_at == expires  # the same instant...
        assert seen.expires_at is not None and seen.expires_at.tzinfo is UTC  # ...in UTC
        assert seen.expires_at.hour == 23 and seen.expires_at.day == 3
        assert seen.created_at.tzinfo is UTC


def _statements(store: MetadataStore) -> list[str]:
    """The SQL the store runs from now on (a listener on its engine)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(store._engine, "before_cursor_execute", record)
    return seen


def _checkouts(store: MetadataStore) -> list[object]:
    """Connections the store takes from its pool from now on."""
    from sqlalchemy import event

    seen: list[object] = []
    event.listen(store._engine, "checkout", lambda conn, *args: seen.append(conn))
    return seen


def test_an_authenticated_key_is_cached_and_a_revocation_elsewhere_ends_it(
    metadata_store: MetadataStore, migrated_url: str
) -> None:
    """A second use of a key reads no key row (only the table's generation), and a revocation
    by another store on the same database (another process: ``driftwatch keys revoke`` while the
    server runs) is refused at the very next call. Control: the first call reads the row."""
    server = metadata_store
    other = MetadataStore(migrated_url)  # the CLI's store: its own engine and connections
    try:
        info, secret = server.create_api_key("ci", "engineer")
        _, bystander = server.create_api_key("other", "viewer")
        seen = _statements(server)
        assert server.authenticate(secret) is not None
        assert any("api_keys.key_hash" in s for s in seen)  # control: the row was read
        seen.clear()
        checkouts = _checkouts(server)
        for _ in range(3):
            assert server.authenticate(secret) is not None
        # each call reads only the generation, on the pooled DBAPI connection itself (no
        # SQLAlchemy statement, so the listener sees none): one checkout per call
        assert [s for s in seen if s.strip() != "BEGIN"] == [], seen
        assert len(checkouts) == 3
        assert server.authenticate(bystander) is not None
        other.revoke_api_key(str(info.id), actor="cli")
        assert server.authenticate(secret) is None  # at once, not after a time-to-live
        assert server.authenticate(bystander) is not None  # others still work
    finally:
        other.dispose()


def test_keys_checked_together_share_one_generation_read(
    metadata_store: MetadataStore, migrated_url: str
) -> None:
    """Inside ``one_key_generation`` (the lean ingest writer checks a group of requests there)
    five authentications take one connection for the generation; outside, one each (the
    control). A revocation by another store before the block refuses the key inside it; one
    during the block counts from the first check after it; one through this store inside
    the block refuses the key at once."""
    server = metadata_store
    other = MetadataStore(migrated_url)
    try:
        first, first_secret = server.create_api_key("one", "engineer")
        second, second_secret = server.create_api_key("two", "engineer")
        assert server.authenticate(first_secret) is not None
        assert server.authenticate(second_secret) is not None
        checkouts = _checkouts(server)
        with server.one_key_generation():
            for _ in range(5):
                assert server.authenticate(first_secret) is not None
        assert len(checkouts) == 1
        checkouts.clear()
        for _ in range(5):
            assert server.authenticate(first_secret) is not None
        assert len(checkouts) == 5  # control: one generation read a call

        other.revoke_api_key(str(first.id), actor="cli")
        with server.one_key_generation():
            assert server.authenticate(first_secret) is None  # revoked before the group
            assert server.authenticate(second_secret) is not None

        with server.one_key_generation():
            assert server.authenticate(second_secret) is not None
            other.revoke_api_key(str(second.id), actor="cli")
            # checked as at the group's start, as a request checked a moment earlier would be
            assert server.authenticate(second_secret) is not None
        assert server.authenticate(second_secret) is None  # the next check refuses it

        third, third_secret = server.create_api_key("three", "engineer")
        assert server.authenticate(third_secret) is not None
        with server.one_key_generation():
            server.revoke_api_key(str(third.id))
            assert server.authenticate(third_secret) is None
    finally:
        other.dispose()


def test_a_cached_key_expires_on_time(clocked_store: MetadataStore, clock: FakeClock) -> None:
    expires = clock() + timedelta(seconds=30)
    _, secret = clocked_store.create_api_key("ci", "engineer", expires_at=expires)
    seen = _statements(clocked_store)
    assert clocked_store.authenticate(secret) is not None
    seen.clear()
    assert clocked_store.authenticate(secret) is not None
    assert not any("api_keys.key_hash" in s for s in seen)  # from the cache
    clock.advance(seconds=31)
    assert clocked_store.authenticate(secret) is None
