"""Dashboard accounts: argon2 password hashes, log-in, roles and what each role may open.

The dashboard and ``driftwatch users`` both go through here; ``storage.metadata.users`` only
stores hash strings.

Roles
-----
``admin``, ``engineer``
    every page, for the tenants in their scope;
``oncall``
    the overview, alerts, and model and feature pages;
``executive``
    the overview and the KPI pages.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from storage.metadata import MetadataStore
from storage.metadata.users import USER_ROLES, UserRecord, UserStore

__all__ = [
    "PAGE_ROLES",
    "USER_ROLES",
    "Account",
    "Accounts",
    "can_open",
]

# page name (the prefix of every component id on the page) -> roles that may open it
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": frozenset({"admin", "engineer", "oncall", "executive"}),
    "model": frozenset({"admin", "engineer", "oncall"}),
    "feature": frozenset({"admin", "engineer", "oncall"}),
    "alerts": frozenset({"admin", "engineer", "oncall"}),
    "alert": frozenset({"admin", "engineer", "oncall"}),
    "kpis": frozenset({"admin", "engineer", "executive"}),
    "monitors": frozenset({"admin", "engineer"}),
}
MIN_PASSWORD_LEN = 8

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A fixed hash verified when the username is unknown, so a miss costs the same time as a
    hit. Made on first use: argon2 takes ~0.5 s, which every CLI start would otherwise pay."""
    return _hasher.hash("driftwatch-dummy-password")


def can_open(role: str, page: str) -> bool:
    """True when ``role`` may open ``page`` (unknown pages are refused)."""
    return role in PAGE_ROLES.get(page, frozenset())


@dataclass(frozen=True)
class Account:
    """The logged-in user as pages see it (no hash)."""

    id: int
    username: str
    role: str
    tenants: tuple[str, ...] | None  # None: every tenant

    def sees_tenant(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants

    def scope(self, tenants: Iterable[str]) -> list[str]:
        """The given tenants this account may see, in order."""
        return [t for t in tenants if self.sees_tenant(t)]

    def can_open(self, page: str) -> bool:
        return can_open(self.role, page)

    @classmethod
    def of(cls, user: UserRecord) -> Account:
        return cls(user.id, user.username, user.role, user.tenants)


class Accounts:
    """Users of one metadata store."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._users = UserStore(metadata)

    def create(
        self,
        username: str,
        password: str,
        role: str,
        tenants: Sequence[str] | None = None,
        actor: str = "local",
    ) -> Account:
        if len(password) < MIN_PASSWORD_LEN:
            raise ValueError(f"password must have at least {MIN_PASSWORD_LEN} characters")
        user = self._users.create(username, _hasher.hash(password), role, tenants, actor)
        return Account.of(user)

    def list(self) -> list[UserRecord]:
        return self._users.list()

    def disable(self, username: str, actor: str = "local") -> UserRecord:
        return self._users.set_disabled(username, True, actor)

    def enable(self, username: str, actor: str = "local") -> UserRecord:
        return self._users.set_disabled(username, False, actor)

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account when the password matches and the user is enabled, else None."""
        user = self._users.get(username.strip().lower())
        try:
            _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            self._users.set_password_hash(user.username, _hasher.hash(password), "system")
        self._users.record_login(user.id)
        return Account.of(user)

    def load(self, user_id: int) -> Account | None:
        """The account of a session's user id; None when deleted or disabled."""
        user = self._users.get_by_id(user_id)
        if user is None or user.disabled:
            return None
        return Account.of(user)
