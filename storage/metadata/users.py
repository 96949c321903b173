"""``UserStore``: dashboard users (username, password hash, role, tenant scope, disabled).

Hashing is the caller's business (``monitor.accounts`` uses argon2): this store keeps the hash
string and never sees a password. Every change writes an audit entry in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.metadata.errors import AlreadyExists, NotFound
from storage.metadata.models_users import USER_ROLES, UserRow
from storage.metadata.store import MetadataStore

__all__ = ["USERNAME_RE", "USER_ROLES", "UserRecord", "UserStore"]

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class UserRecord:
    """A dashboard user. ``tenants`` is None for a user who sees every tenant."""

    id: int
    username: str
    password_hash: str
    role: str
    tenants: tuple[str, ...] | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    session_version: int = 0


def _user(row: UserRow) -> UserRecord:
    return UserRecord(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=row.role,
        tenants=None if row.tenants is None else tuple(row.tenants),
        disabled=bool(row.disabled),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        session_version=int(row.session_version or 0),
    )


class UserStore:
    """Users in the metadata database (shares the store's engine, clock and audit log)."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._m = metadata

    def create(
        self,
        username: str,
        password_hash: str,
        role: str,
        tenants: Sequence[str] | None = None,
        actor: str = "system",
    ) -> UserRecord:
        """Create a user.

        Raises
        ------
        ValueError
            Bad username (must match ``USERNAME_RE``), unknown role or an empty tenant list.
        AlreadyExists
            The username is taken.
        """
        if not USERNAME_RE.match(username):
            raise ValueError(f"username {username!r} must match {USERNAME_RE.pattern}")
        if role not in USER_ROLES:
            raise ValueError(f"role {role!r} is not one of: {', '.join(USER_ROLES)}")
        scope = None if tenants is None else sorted(set(tenants))
        if scope is not None and not scope:
            raise ValueError("tenants must list at least one tenant (or be None for all)")
        try:
            with self._m.writing() as s:
                if s.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                    raise AlreadyExists(f"user {username!r} already exists")
                if scope:
                    self._m.insert_tenants(s, scope, actor)
                row = UserRow(
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    tenants=scope,
                    disabled=False,
                    created_at=self._m.now(),
                    last_login_at=None,
                    session_version=0,
                )
                s.add(row)
                s.flush()
                self._m.record_audit(
                    s, actor, "user.create", "user", username, {"role": role, "tenants": scope}
                )
                return _user(row)
        except IntegrityError as exc:
            raise AlreadyExists(f"user {username!r} already exists") from exc

    def get(self, username: str) -> UserRecord | None:
        with self._m.reading() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            return None if row is None else _user(row)

    def get_by_id(self, user_id: int) -> UserRecord | None:
        with self._m.reading() as s:
            row = s.get(UserRow, int(user_id))
            return None if row is None else _user(row)

    def list(self) -> list[UserRecord]:
        with self._m.reading() as s:
            return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.username))]

    def set_disabled(self, username: str, disabled: bool, actor: str = "system") -> UserRecord:
        """Disable (or enable again) a user; a disabled user's sessions stop working."""
        with self._m.writing() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                raise NotFound(f"user {username!r} not found")
            if row.disabled != disabled:
                row.disabled = disabled
                action = "user.disable" if disabled else "user.enable"
                self._m.record_audit(s, actor, action, "user", username)
            return _user(row)

    def set_password_hash(
        self,
        username: str,
        password_hash: str,
        actor: str = "system",
        *,
        revoke_sessions: bool = True,
    ) -> None:
        """Store a new hash; the user's sessions stop working unless ``revoke_sessions`` is
        False (a re-hash of the same password with new parameters)."""
        with self._m.writing() as s:
            row = s.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                raise NotFound(f"user {username!r} not found")
            row.password_hash = password_hash
            if revoke_sessions:
                row.session_version = int(row.session_version or 0) + 1
            self._m.record_audit(s, actor, "user.password", "user", username)

    def revoke_sessions(self, user_id: int, actor: str = "system") -> int:
        """End every session of the user (logout); returns the new session version."""
        with self._m.writing() as s:
            row = s.get(UserRow, int(user_id))
            if row is None:
                raise NotFound(f"user {user_id} not found")
            row.session_version = int(row.session_version or 0) + 1
            self._m.record_audit(s, actor, "user.logout", "user", row.username)
            return row.session_version

    def record_login(self, user_id: int) -> None:
        with self._m.writing() as s:
            row = s.get(UserRow, int(user_id))
            if row is not None:
                row.last_login_at = self._m.now()
