"""API-key authentication, role checks and per-key rate limiting."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from fastapi import Request

from monitor.errors import AuthenticationError, PermissionDenied, RateLimited
from monitor.service import Caller, Services

log = logging.getLogger("driftwatch.api")

ROLE_RANK = {"viewer": 0, "engineer": 1, "admin": 2}


class RateLimiter:
    """Token bucket per key: ``burst`` requests at once, refilled at ``per_minute``/60 per s."""

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self._clock = clock  # seconds, monotonic (a test's fixed clock)
        self.burst = float(burst)
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


class FailureAudit:
    """Failed API authentications go to the audit log (``auth.failed``), bounded so a flood
    of bad keys cannot fill it: ``burst`` entries at once, then ``per_minute``. Failures over
    the bound are counted, and the next entry written says how many were left out
    (``suppressed``); every failure also counts in ``driftwatch_auth_failures_total``."""

    def __init__(
        self, per_minute: int = 60, burst: int = 20, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bucket = RateLimiter(per_minute, burst, clock)
        self._suppressed = 0
        self._lock = threading.Lock()

    def record(self, services: Services, request: Request, reason: str, key: str | None) -> None:
        services.count("auth_failures")
        with self._lock:
            if self._bucket.take(0) > 0:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
        client = request.client.host if request.client else "unknown"
        prefix = key[3:11] if key and key.startswith("dw_") else None
        detail = {
            "reason": reason,
            "client": client,
            "method": request.method,
            "path": request.url.path[:200],
            "key_prefix": prefix,
            "suppressed": suppressed,
        }
        try:
            services.metadata.audit(f"ip:{client}", "auth.failed", "api_key", prefix or "-", detail)
        except Exception:  # the caller gets its 401 whatever the audit log does
            log.exception("could not audit a failed authentication")


def presented_key(request: Request) -> str | None:
    """The API key the request presents (``Authorization: Bearer`` or ``X-API-Key``)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def require(role: str, *, unscoped: bool = False) -> Callable[[Request], Caller]:
    """A FastAPI dependency: the caller's key must have ``role`` or higher.

    ``unscoped`` routes change objects shared by all tenants (model schemas, references), so a
    tenant-scoped key may not call them whatever its role.
    """
    needed = ROLE_RANK[role]

    def dependency(request: Request) -> Caller:
        services: Services = request.app.state.services
        presented = presented_key(request)
        failures: FailureAudit = request.app.state.auth_failures
        if not presented:
            failures.record(services, request, "missing key", None)
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer dw_...' (create one with "
                "`driftwatch keys create`)"
            )
        key = services.metadata.authenticate(presented)
        if key is None:
            failures.record(services, request, "unknown, revoked or expired key", presented)
            raise AuthenticationError("unknown, revoked or expired API key")
        wait = request.app.state.limiter.take(key.id)
        if wait > 0:
            raise RateLimited(
                f"rate limit of {services.settings.rate_limit_per_minute} requests/minute "
                f"exceeded for key {key.prefix}",
                retry_after=max(1, math.ceil(wait)),
            )
        if ROLE_RANK.get(key.role, -1) < needed:
            raise PermissionDenied(
                f"this route needs role {role!r} or higher; the key has {key.role!r}"
            )
        if unscoped and key.tenant_id is not None:
            raise PermissionDenied(
                f"this route changes objects shared by all tenants; the key is scoped to "
                f"tenant {key.tenant_id!r}"
            )
        return Caller.of_key(key)

    return dependency
