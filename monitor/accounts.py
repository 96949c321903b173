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
    the KPI pages: the business overview (``/kpis``, where ``/`` takes them) and each
    tenant's KPIs; no model, feature or alert page, and not the model overview, whose
    statistics are not theirs to read.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from monitor import tenancy
from storage.metadata import MetadataStore
from storage.metadata.users import USER_ROLES, UserRecord, UserStore

__all__ = [
    "PAGE_ROLES",
    "USER_ROLES",
    "Account",
    "Accounts",
    "LoginThrottle",
    "can_open",
]

# page name (the prefix of every component id on the page) -> roles that may open it
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": frozenset({"admin", "engineer", "oncall"}),
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
    session_version: int = 0  # a session cookie naming another version is void

    def sees_tenant(self, tenant_id: str) -> bool:
        return tenancy.sees(self.tenants, tenant_id)

    def scope(self, tenants: Iterable[str]) -> list[str]:
        """The given tenants this account may see, in order."""
        return tenancy.visible(self.tenants, tenants)

    def can_open(self, page: str) -> bool:
        return can_open(self.role, page)

    @classmethod
    def of(cls, user: UserRecord) -> Account:
        return cls(user.id, user.username, user.role, user.tenants, user.session_version)


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
            self._users.set_password_hash(
                user.username, _hasher.hash(password), "system", revoke_sessions=False
            )
        self._users.record_login(user.id)
        return Account.of(user)

    def load(self, user_id: int, session_version: int | None = None) -> Account | None:
        """The account of a session's user id; None when deleted or disabled, or when
        ``session_version`` is given and is not the user's current one (logged out, or the
        password changed, since the session began)."""
        user = self._users.get_by_id(user_id)
        if user is None or user.disabled:
            return None
        if session_version is not None and session_version != user.session_version:
            return None
        return Account.of(user)

    def set_password(self, username: str, password: str, actor: str = "local") -> None:
        """Change a password; every open session of the user stops working."""
        if len(password) < MIN_PASSWORD_LEN:
            raise ValueError(f"password must have at least {MIN_PASSWORD_LEN} characters")
        self._users.set_password_hash(username, _hasher.hash(password), actor)

    def logout(self, account: Account) -> None:
        """End the user's sessions server-side: their cookies stop working at once."""
        self._users.revoke_sessions(account.id, account.username)


class LoginThrottle:
    """Failed log-ins per username and per client address in a sliding window.

    After ``max_per_user`` failures for one username (or ``max_per_address`` from one address)
    within ``window`` seconds, further attempts are refused for ``lockout`` seconds, whatever
    the password, so guessing costs an attacker the lockout per few tries. A successful log-in
    clears the username's failures. State is per process (one server process owns the data).
    """

    def __init__(
        self,
        max_per_user: int = 5,
        max_per_address: int = 20,
        window: float = 900.0,
        lockout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_per_user = max_per_user
        self.max_per_address = max_per_address
        self.window = window
        self.lockout = lockout
        self._clock = clock
        self._fails: dict[tuple[str, str], deque[float]] = {}
        self._locked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def _keys(self, username: str, address: str) -> list[tuple[tuple[str, str], int]]:
        return [
            (("user", username.strip().lower()), self.max_per_user),
            (("addr", address), self.max_per_address),
        ]

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until this username/address may try again (0: now)."""
        now = self._clock()
        with self._lock:
            wait = 0.0
            for key, _ in self._keys(username, address):
                until = self._locked.get(key, 0.0)
                if until > now:
                    wait = max(wait, until - now)
                elif key in self._locked:
                    del self._locked[key]
            return math.ceil(wait)

    def failed(self, username: str, address: str) -> bool:
        """Record a failure; True when it locked the username or the address."""
        now = self._clock()
        locked = False
        with self._lock:
            for key, limit in self._keys(username, address):
                q = self._fails.setdefault(key, deque())
                q.append(now)
                while q and q[0] <= now - self.window:
                    q.popleft()
                if len(q) >= limit:
                    self._locked[key] = now + self.lockout
                    q.clear()
                    locked = True
            if len(self._fails) > 100_000:  # many distinct names: forget the oldest
                for key in list(self._fails)[:50_000]:
                    del self._fails[key]
        return locked

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(("user", username.strip().lower()), None)
