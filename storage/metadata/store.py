"""``MetadataStore``: tenants, models, API keys and the audit log behind typed methods.

One Engine per store, one short session per call. Every mutating method writes its audit entry
in the same transaction as the change, so the log never misses nor invents a change.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import inspect, or_, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.metadata import keys
from storage.metadata.engine import WRITE_OPTION, make_engine
from storage.metadata.errors import AlreadyExists, Ambiguous, NotFound
from storage.metadata.key_cache import GENERATION_SQL, Generation, KeyCache
from storage.metadata.models import ApiKeyRow, AuditRow, Base, ModelRow, TenantRow
from storage.migrations import include_name, make_config, script_head
from storage.types import (
    NAME_RE,
    ROLES,
    TASKS,
    ApiKeyInfo,
    AuditEntry,
    ModelInfo,
    ModelSchema,
    Role,
    Tenant,
)

# authenticate() writes last_used_at at most this often per key: a busy client must not turn
# every request into a write (and, on SQLite, into a wait for the single write lock).
LAST_USED_INTERVAL = timedelta(minutes=1)
# Shortest key prefix revoke_api_key accepts; shorter ones would match too many keys.
MIN_PREFIX_LEN = 4
MAX_TENANT_ID_LEN = 128
# Arbitrary constant for pg_advisory_xact_lock: serialises concurrent upgrade() calls.
_UPGRADE_LOCK_KEY = 0x44574D31  # "DWM1"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}={value!r} is naive: pass a timezone-aware datetime")
    return value.astimezone(UTC)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of: {', '.join(ROLES)}")


def _check_tenant_id(tenant_id: str) -> None:
    if not isinstance(tenant_id, str) or not tenant_id or len(tenant_id) > MAX_TENANT_ID_LEN:
        raise ValueError(
            f"tenant_id {tenant_id!r} must be a non-empty string of at most "
            f"{MAX_TENANT_ID_LEN} characters"
        )


def _tenant(row: TenantRow) -> Tenant:
    return Tenant(tenant_id=row.tenant_id, name=row.name, created_at=row.created_at)


def _model(row: ModelRow) -> ModelInfo:
    return ModelInfo(
        name=row.name,
        schema=ModelSchema.from_dict(row.schema),
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _key(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=cast(Role, row.role),
        tenant_id=row.tenant_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _audit_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        detail=dict(row.detail or {}),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class MetadataStore:
    """Tenants, models, API keys and audit log in SQLite or PostgreSQL.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql+psycopg://user@host/db``.
    clock : callable, optional
        Returns the current aware UTC datetime; tests pass a fake one to step time.

    Notes
    -----
    Safe to share between threads: each call checks a connection out of the Engine's pool
    and uses its own short transaction. Call :meth:`upgrade` once before use.

    Examples
    --------
    >>> store = MetadataStore("sqlite://")
    >>> store.upgrade()
    >>> info, secret = store.create_api_key("ci", "engineer")
    >>> store.authenticate(secret).id == info.id
    True
    >>> store.dispose()
    """

    def __init__(self, url: str, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine: Engine = make_engine(url)
        self._clock = clock or _utcnow
        self._known_tenants: set[str] = set()
        self._known_lock = threading.Lock()
        self._keys = KeyCache()  # authenticated keys (storage/metadata/key_cache.py)
        self._pinned = threading.local()  # a thread's generation in one_key_generation

    def __repr__(self) -> str:
        return f"MetadataStore({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        now = _aware(self._clock(), "clock()")
        assert now is not None
        return now

    def now(self) -> datetime:
        """The store's clock (aware UTC): what key expiry and audit times are compared with."""
        return self._now()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in a write transaction, committed on success, rolled back on error."""
        with self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads (the repositories of ``storage.metadata`` and ``storage.reads``)."""
        with Session(self._engine, expire_on_commit=False) as session:
            yield session

    def record_audit(
        self,
        session: Session,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        session.add(
            AuditRow(
                ts=self._now(),
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=str(object_id),
                detail=dict(detail or {}),
            )
        )

    def insert_tenants(self, session: Session, tenant_ids: Iterable[str], actor: str) -> None:
        """INSERT ... ON CONFLICT DO NOTHING, auditing only the rows this call created."""
        ids = sorted(set(tenant_ids))
        if not ids:
            return
        present = set(
            session.scalars(select(TenantRow.tenant_id).where(TenantRow.tenant_id.in_(ids)))
        )
        missing = [t for t in ids if t not in present]
        if not missing:
            return
        now = self._now()
        if self.backend == "postgresql":
            # imported here: the PostgreSQL dialect's module costs ~0.3 s of a SQLite start-up
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert: Any = pg_insert
        else:
            insert = sqlite_insert
        # Another thread or process may insert the same tenant between the SELECT and here:
        # ON CONFLICT DO NOTHING makes that a no-op instead of an IntegrityError.
        stmt = (
            insert(TenantRow)
            .values([{"tenant_id": t, "name": t, "created_at": now} for t in missing])
            .on_conflict_do_nothing(index_elements=["tenant_id"])
            .returning(TenantRow.tenant_id)
        )
        for tenant_id in session.scalars(stmt).all():
            self.record_audit(
                session, actor, "tenant.create", "tenant", tenant_id, {"name": tenant_id}
            )

    # ------------------------------------------------------------------ lifecycle

    def upgrade(self) -> None:
        """Run Alembic migrations up to head (idempotent; safe to call concurrently).

        Runs in one transaction on the store's own engine; on PostgreSQL an advisory lock
        serialises concurrent callers, on SQLite ``BEGIN IMMEDIATE`` does. A database already
        at head is left alone without Alembic being imported (see :meth:`at_head`).
        """
        if self.at_head():
            return
        from alembic import command  # ~1 s to import: only when there is something to run

        with self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if self.backend == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY}
                    )
                command.upgrade(make_config(connection=conn), "head")

    def at_head(self) -> bool:
        """True when the revision stored in ``alembic_version`` is the scripts' head
        (:func:`storage.migrations.script_head`): one ``SELECT``, no Alembic. Every start-up
        calls :meth:`upgrade`; on an existing data dir this is what it costs."""
        try:
            with self._engine.connect() as conn:
                stored = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except SQLAlchemyError:  # no alembic_version table: a database never migrated
            return False
        return [row[0] for row in stored] == [script_head()]

    def downgrade(self, revision: str) -> None:
        """Migrate down to ``revision`` (``"base"`` drops every table). Destroys data: for
        development and for backing out a release, never called by the service itself."""
        from alembic import command

        with self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                command.downgrade(make_config(connection=conn), revision)
        with self._known_lock:
            # Tables may have been dropped: forget which tenants we believed to exist.
            self._known_tenants.clear()

    def schema_diff(self) -> list[str]:
        """Differences between the ORM tables and the database, as Alembic autogenerate sees
        them; empty when the migrations and ``models.py`` agree (and the database is at head).

        Returns
        -------
        list of str
            One readable line per difference, e.g. ``"('add_column', None, 'models', ...)"``.
        """
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
            return [repr(diff) for diff in compare_metadata(context, Base.metadata)]

    def table_names(self) -> list[str]:
        """Names of the tables in the database (``alembic_version`` included), sorted."""
        with self._engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, or None before the first upgrade."""
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision shipped with this code (``current_revision`` after upgrade)."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(make_config()).get_current_head()

    def ping(self) -> bool:
        """True when the database answers ``SELECT 1``."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        """Close all pooled connections (the store can still be used; it reconnects)."""
        self._engine.dispose()

    # ------------------------------------------------------------------ tenants

    def ensure_tenants(self, tenant_ids: Iterable[str], actor: str = "system") -> None:
        """Create the tenants that do not exist yet (name = id); idempotent and thread-safe.

        Parameters
        ----------
        tenant_ids : iterable of str
            Tenant ids seen in a batch; duplicates and already known ids are fine.
        actor : str
            Recorded in the audit entry of each tenant actually created.
        """
        wanted = set(tenant_ids)
        for tenant_id in wanted:
            _check_tenant_id(tenant_id)
        with self._known_lock:
            # Tenants are never deleted, so a tenant seen once needs no further query: this
            # keeps the ingest hot path off the database.
            wanted -= self._known_tenants
        if not wanted:
            return
        with self.writing() as session:
            self.insert_tenants(session, wanted, actor)
        with self._known_lock:
            self._known_tenants |= wanted

    def list_tenants(self) -> list[Tenant]:
        """All tenants, ordered by id."""
        with self.reading() as session:
            rows = session.scalars(select(TenantRow).order_by(TenantRow.tenant_id))
            return [_tenant(r) for r in rows]

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """One tenant, or None."""
        with self.reading() as session:
            row = session.get(TenantRow, tenant_id)
            return None if row is None else _tenant(row)

    # ------------------------------------------------------------------ models

    def create_model(
        self, name: str, schema: ModelSchema, description: str = "", actor: str = "system"
    ) -> ModelInfo:
        """Register a model.

        Raises
        ------
        ValueError
            ``name`` does not match ``storage.types.NAME_RE`` or the task is unknown.
        AlreadyExists
            A model with this name exists.
        """
        if not NAME_RE.match(name):
            raise ValueError(f"model name {name!r} must match {NAME_RE.pattern}")
        if schema.task not in TASKS:
            raise ValueError(f"task {schema.task!r} is not one of: {', '.join(TASKS)}")
        try:
            with self.writing() as session:
                if session.scalar(select(ModelRow.id).where(ModelRow.name == name)) is not None:
                    raise AlreadyExists(f"model {name!r} already exists")
                now = self._now()
                row = ModelRow(
                    name=name,
                    description=description,
                    task=schema.task,
                    schema=schema.to_dict(),
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                self.record_audit(
                    session,
                    actor,
                    "model.create",
                    "model",
                    name,
                    {"description": description, "schema": schema.to_dict()},
                )
                session.flush()
                return _model(row)
        except IntegrityError as exc:
            # Lost a race with a concurrent create of the same name.
            raise AlreadyExists(f"model {name!r} already exists") from exc

    def update_model_schema(
        self, name: str, schema: ModelSchema, actor: str = "system"
    ) -> ModelInfo:
        """Replace a model's schema (compatibility is checked by the caller and the log store).

        An identical schema is a no-op: nothing is written and no audit entry is made.

        Raises
        ------
        NotFound
            No model with this name.
        """
        if schema.task not in TASKS:
            raise ValueError(f"task {schema.task!r} is not one of: {', '.join(TASKS)}")
        with self.writing() as session:
            row = session.scalar(select(ModelRow).where(ModelRow.name == name))
            if row is None:
                raise NotFound(f"model {name!r} not found")
            before = row.schema
            after = schema.to_dict()
            if before == after:
                return _model(row)
            row.schema = after
            row.task = schema.task
            row.updated_at = self._now()
            self.record_audit(
                session,
                actor,
                "model.update_schema",
                "model",
                name,
                {"before": before, "after": after},
            )
            session.flush()
            return _model(row)

    def update_model_description(
        self, name: str, description: str, actor: str = "system"
    ) -> ModelInfo:
        """Change a model's description.

        Raises
        ------
        NotFound
            No model with this name.
        """
        with self.writing() as session:
            row = session.scalar(select(ModelRow).where(ModelRow.name == name))
            if row is None:
                raise NotFound(f"model {name!r} not found")
            if row.description != description:
                self.record_audit(
                    session,
                    actor,
                    "model.update_description",
                    "model",
                    name,
                    {"before": row.description, "after": description},
                )
                row.description = description
                row.updated_at = self._now()
                session.flush()
            return _model(row)

    def get_model(self, name: str) -> ModelInfo | None:
        """The model, or None when unknown."""
        with self.reading() as session:
            row = session.scalar(select(ModelRow).where(ModelRow.name == name))
            return None if row is None else _model(row)

    def list_models(self) -> list[ModelInfo]:
        """All models, ordered by name."""
        with self.reading() as session:
            return [_model(r) for r in session.scalars(select(ModelRow).order_by(ModelRow.name))]

    # ------------------------------------------------------------------ API keys

    def create_api_key(
        self,
        name: str,
        role: Role,
        tenant_id: str | None = None,
        expires_at: datetime | None = None,
        actor: str = "system",
    ) -> tuple[ApiKeyInfo, str]:
        """Create a key; returns the stored info and the plaintext ``dw_<base62>`` (shown once).

        Parameters
        ----------
        name : str
            Human label (``"ci"``, ``"alice laptop"``).
        role : {"admin", "engineer", "viewer"}
        tenant_id : str, optional
            Scope the key to one tenant; the tenant is created if unknown.
        expires_at : datetime, optional
            Timezone-aware expiry; the key stops authenticating at this instant.
        actor : str
            Who did it, for the audit log.

        Raises
        ------
        ValueError
            Unknown role, empty name, bad tenant id or naive ``expires_at``.
        """
        _check_role(role)
        if not name or not name.strip():
            raise ValueError("API key name must not be empty")
        expires_at = _aware(expires_at, "expires_at")
        if tenant_id is not None:
            _check_tenant_id(tenant_id)
        plaintext = keys.generate_key()
        with self.writing() as session:
            if tenant_id is not None:
                self.insert_tenants(session, [tenant_id], actor)
            row = ApiKeyRow(
                name=name,
                prefix=keys.display_prefix(plaintext),
                key_hash=keys.hash_key(plaintext),
                role=role,
                tenant_id=tenant_id,
                created_at=self._now(),
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            self.record_audit(
                session,
                actor,
                "api_key.create",
                "api_key",
                str(row.id),
                {
                    "name": name,
                    "prefix": row.prefix,
                    "role": role,
                    "tenant_id": tenant_id,
                    "expires_at": _iso(expires_at),
                },
            )
            return _key(row), plaintext

    def authenticate(self, plaintext: str) -> ApiKeyInfo | None:
        """The key's info if it exists, is not revoked and not expired; else None.

        Updates ``last_used_at`` at most once a minute per key, to keep writes off the hot
        path; the returned info carries the value stored after this call.
        """
        if not isinstance(plaintext, str) or not keys.looks_like_key(plaintext):
            return None
        digest = keys.hash_key(plaintext)
        generation = self._key_generation()
        cached = self._keys.get(digest, generation)
        if cached is not None:
            now = self._now()
            fresh = (
                cached.last_used_at is not None and now - cached.last_used_at < LAST_USED_INTERVAL
            )
            if fresh and (cached.expires_at is None or cached.expires_at > now):
                return cached
        info = self._authenticate_row(digest)
        if info is not None:
            self._keys.put(digest, info, generation)
        return info

    def cached_key(self, plaintext: str) -> ApiKeyInfo | None:
        """The key's info if it authenticated recently and is still usable as far as memory
        knows (not expired, at the last generation read), without touching the database;
        None otherwise. Not an authentication: :meth:`authenticate` still decides. A caller
        uses it to decide how much work to do for a request before that (e.g. whether to
        read its body first)."""
        if not isinstance(plaintext, str) or not keys.looks_like_key(plaintext):
            return None
        info = self._keys.peek(keys.hash_key(plaintext))
        if info is None or (info.expires_at is not None and info.expires_at <= self._now()):
            return None
        return info

    @contextmanager
    def one_key_generation(self) -> Iterator[None]:
        """Within the block, this thread's :meth:`authenticate` calls share one read of the
        ``api_keys`` generation, taken on entry: for requests checked together (the lean
        ingest writer's group), as if at that one moment. A revocation committed by another
        process before entry refuses them all; one committed during the block counts from
        the first check after the block. A revocation through this store empties its cache,
        so within the block such a key is read again from its row (and refused). Nested
        blocks share the outer read."""
        if getattr(self._pinned, "generation", None) is not None:
            yield
            return
        self._pinned.generation = self._read_key_generation()
        try:
            yield
        finally:
            self._pinned.generation = None

    def _key_generation(self) -> Generation:
        """The generation :meth:`one_key_generation` pinned for this thread, else read now."""
        pinned: Generation | None = getattr(self._pinned, "generation", None)
        return pinned if pinned is not None else self._read_key_generation()

    def _read_key_generation(self) -> Generation:
        """``(keys, revoked keys)``: changes whenever a key is revoked, by any process."""
        # the pooled DBAPI connection itself: a SQLAlchemy Connection with its transaction
        # (BEGIN hook, events) cost about 60 us of CPU against 9 us, on every request
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(GENERATION_SQL)
                count, revoked = cast(tuple[int, int], cursor.fetchone())
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool, which ends the read transaction (rollback)
        return int(count), int(revoked)

    def _authenticate_row(self, digest: str) -> ApiKeyInfo | None:
        """``authenticate`` from the key's row (the cache's miss path)."""
        with self.reading() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
            if row is None:
                return None
            info = _key(row)
            stored_hash = row.key_hash
        # The index lookup already matched; compare again in constant time so no code path
        # ever depends on a byte-by-byte comparison of secrets.
        if not hmac.compare_digest(stored_hash, digest):
            return None
        now = self._now()
        if info.revoked_at is not None:
            return None
        if info.expires_at is not None and info.expires_at <= now:
            return None
        if info.last_used_at is None or now - info.last_used_at >= LAST_USED_INTERVAL:
            threshold = now - LAST_USED_INTERVAL
            with self.writing() as session:
                # The WHERE repeats the throttle so that concurrent requests write once.
                session.execute(
                    update(ApiKeyRow)
                    .where(
                        ApiKeyRow.id == info.id,
                        or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at <= threshold),
                    )
                    .values(last_used_at=now),
                    execution_options={"synchronize_session": False},
                )
            info = self.get_api_key(info.id) or info
        return info

    def get_api_key(self, key_id: int) -> ApiKeyInfo | None:
        """One key's info by id, or None."""
        with self.reading() as session:
            row = session.get(ApiKeyRow, int(key_id))
            return None if row is None else _key(row)

    def list_api_keys(self) -> list[ApiKeyInfo]:
        """All keys, revoked and expired ones included, ordered by id."""
        with self.reading() as session:
            return [_key(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke_api_key(self, key_id_or_prefix: str | int, actor: str = "system") -> ApiKeyInfo:
        """Revoke a key given its id, its display prefix (with or without ``dw_``, at least
        ``MIN_PREFIX_LEN`` characters of it) or the full plaintext key.

        Revoking a revoked key changes nothing and returns it as it is.

        Raises
        ------
        NotFound
            Nothing matches.
        Ambiguous
            The prefix (or a numeric prefix that is also an id) matches several keys.
        """
        ref = str(key_id_or_prefix).strip()
        with self.writing() as session:
            matches: dict[int, ApiKeyRow] = {}
            if keys.looks_like_key(ref):
                row = session.scalar(
                    select(ApiKeyRow).where(ApiKeyRow.key_hash == keys.hash_key(ref))
                )
                if row is not None:
                    matches[row.id] = row
            else:
                # ASCII digits only ("²" is a digit to str.isdigit) and within BIGINT
                if ref.isascii() and ref.isdigit() and int(ref) < 2**63:
                    row = session.get(ApiKeyRow, int(ref))
                    if row is not None:
                        matches[row.id] = row
                prefix = ref.removeprefix(keys.KEY_PREFIX)
                if MIN_PREFIX_LEN <= len(prefix) <= keys.PREFIX_LEN and prefix.isalnum():
                    # LIKE is case-insensitive on SQLite; base62 is not, so filter again.
                    for row in session.scalars(
                        select(ApiKeyRow).where(
                            ApiKeyRow.prefix.startswith(prefix, autoescape=True)
                        )
                    ):
                        if row.prefix.startswith(prefix):
                            matches[row.id] = row
            if not matches:
                raise NotFound(f"no API key with id or prefix {ref!r}")
            if len(matches) > 1:
                listed = ", ".join(
                    f"id {r.id} ({keys.KEY_PREFIX}{r.prefix}…, {r.name!r})"
                    for r in sorted(matches.values(), key=lambda r: r.id)
                )
                raise Ambiguous(f"{ref!r} matches several API keys: {listed}; give the id")
            (row,) = matches.values()
            if row.revoked_at is None:
                row.revoked_at = self._now()
                self.record_audit(
                    session,
                    actor,
                    "api_key.revoke",
                    "api_key",
                    str(row.id),
                    {"name": row.name, "prefix": row.prefix},
                )
                session.flush()
            info = _key(row)
        self._keys.clear()  # the generation moved too; this makes it plain
        return info

    # ------------------------------------------------------------------ audit

    def audit(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record an action done outside this store (e.g. a reference upload) in its own
        transaction. ``detail`` must be JSON-serialisable."""
        with self.writing() as session:
            self.record_audit(session, actor, action, object_type, object_id, detail)

    def list_audit(
        self, limit: int = 100, object_type: str | None = None, object_id: str | None = None
    ) -> list[AuditEntry]:
        """The newest ``limit`` audit entries, newest first, optionally for one object type
        (and one object)."""
        if limit < 1:
            raise ValueError(f"limit={limit} must be at least 1")
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if object_type is not None:
            stmt = stmt.where(AuditRow.object_type == object_type)
        if object_id is not None:
            stmt = stmt.where(AuditRow.object_id == str(object_id))
        with self.reading() as session:
            return [_audit_entry(r) for r in session.scalars(stmt)]
