"""Delivery worker: sends the outbox with Standard Webhooks signatures, retries, dead letters.

For each due delivery the worker (a thread with a bounded pool of senders):

1. checks the channel URL against the SSRF rules again and connects to the vetted address;
2. signs the exact stored body per the Standard Webhooks spec: ``webhook-id`` (the delivery's
   id, the same on every retry: the receiver's idempotency key), ``webhook-timestamp`` (now)
   and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` for each
   active ``whsec_`` secret, space separated: two during a rotation);
3. POSTs with a 15 s timeout and no redirects (a 3xx is a failure);
4. records the attempt and decides: 2xx delivered; 410 Gone disables the channel; 4xx other
   than 408 and 429 is not retried (dead); everything else is retried on the schedule (at once,
   5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 24 h, 24 h: about 3 days, ±10 % jitter), where a
   ``Retry-After`` header (429/503) sets the wait; past the give-up time the delivery is dead.

Dead deliveries stay in the outbox, listed by the API, until retried by hand. A worker killed
mid-send leaves leased rows that any worker claims again when the lease expires.
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

__all__ = [
    "DeliveryWorker",
    "HttpxSender",
    "Outcome",
    "Response",
    "RetryPolicy",
    "Sender",
    "decide",
    "sign",
]

import httpx

from alerts.channels import channel_type
from alerts.signing import check_signing_secret, sign
from alerts.ssrf import Allowlist, Resolver, Target, UnsafeURL, system_resolver, vet_url
from storage.metadata.alerting import AlertStore, Claimed
from storage.types import DeliveryAttempt

log = logging.getLogger("driftwatch.alerts.delivery")

# Seconds to wait before attempt n+1 after attempt n failed (index 0: before the first).
DEFAULT_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    10 * 3600,
    24 * 3600,
    24 * 3600,
)
GIVE_UP_AFTER = 3 * 86400.0
USER_AGENT = "Driftwatch-Webhooks/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again. ``scale`` multiplies every delay and the give-up time (tests use
    0.001 to turn days into minutes); ``Retry-After`` is honoured up to ``max_retry_after``."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    give_up_after: float = GIVE_UP_AFTER
    scale: float = 1.0
    jitter: float = 0.1
    max_retry_after: float = 3600.0
    timeout: float = 15.0

    def delay(self, attempts_done: int, rng: random.Random) -> float | None:
        """Seconds until the next attempt after ``attempts_done`` attempts, or None."""
        if attempts_done >= len(self.schedule):
            return None
        base = self.schedule[attempts_done] * self.scale
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True)
class Response:
    status_code: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


class Sender(Protocol):
    """What the worker needs from HTTP: one POST to a vetted target."""

    def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> Response: ...

    def close(self) -> None: ...


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's verifying context for ``verify=True`` without the environment (certifi's CA
    bundle), built once per process and shared by the senders: building one loads the bundle,
    ~25 ms of CPU, which every worker (each restart, each test's) paid again."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class HttpxSender:
    """POSTs with httpx to the vetted address, keeping the original Host and TLS name."""

    def __init__(
        self,
        timeout: float = 15.0,
        max_connections: int = 16,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._client = httpx.Client(
            timeout=timeout,
            # certificates are checked against the URL's host (sni_hostname)
            verify=_default_tls() if verify is True else verify,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the address check
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def post(self, target: Target, body: bytes, headers: Mapping[str, str]) -> Response:
        try:
            r = self._client.post(
                target.connect_url,
                content=body,
                headers={**headers, "Host": target.host_header},
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
        except httpx.TimeoutException as exc:
            return Response(None, error=f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return Response(None, error=f"{type(exc).__name__}: {exc}")
        return Response(r.status_code, dict(r.headers))

    def close(self) -> None:
        self._client.close()


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered, pending (retry), dead
    next_attempt_at: datetime | None
    outcome: str  # delivered, retry, failed, dead, disabled
    disable_channel: str | None = None


def decide(
    response: Response,
    attempt: int,
    created_at: datetime,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> Outcome:
    """What one attempt's answer means for the delivery (pure)."""
    code = response.status_code
    if code is not None and 200 <= code < 300:
        return Outcome("delivered", None, "delivered")
    if code == 410:
        return Outcome("dead", None, "disabled", disable_channel="receiver answered 410 Gone")
    if code is not None and 400 <= code < 500 and code not in (408, 429):
        return Outcome("dead", None, "failed")
    wait = policy.delay(attempt, rng)
    hinted = retry_after_seconds(response.headers.get("retry-after"), now)
    if hinted is not None and code in (429, 503):
        wait = min(hinted, policy.max_retry_after)
    if wait is None:
        return Outcome("dead", None, "dead")
    next_at = now + timedelta(seconds=wait)
    if next_at > created_at + timedelta(seconds=policy.give_up_after * policy.scale):
        return Outcome("dead", None, "dead")
    return Outcome("pending", next_at, "retry")


class DeliveryWorker:
    """Sends due deliveries on a background thread with at most ``concurrency`` in flight.

    Parameters
    ----------
    store : AlertStore
    allowlist : Allowlist
        Hosts/addresses exempt from the HTTPS and global-address rules.
    policy : RetryPolicy
    concurrency : int
        Parallel sends (and HTTP connections).
    before_claim : callable, optional
        Called with ``now`` at each turn before claiming, e.g. ``AlertEngine.flush_due`` so
        grouped notifications are written to the outbox by the same loop.
    sender, resolver, rng : for tests and benchmarks.
    """

    def __init__(
        self,
        store: AlertStore,
        *,
        allowlist: Allowlist | None = None,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        before_claim: Callable[[datetime], Any] | None = None,
        sender: Sender | None = None,
        resolver: Resolver = system_resolver,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} must be ≥ 1")
        self.store = store
        self.allowlist = allowlist or Allowlist()
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.lease_seconds = max(lease_seconds, self.policy.timeout * 2)
        self.poll_seconds = poll_seconds
        self.before_claim = before_claim
        self.sender = sender or HttpxSender(self.policy.timeout, concurrency)
        self.resolver = resolver
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="dw-delivery")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ loop
    def start(self) -> DeliveryWorker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dw-delivery-loop", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the outbox now (called after new deliveries are written)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current turn; past ``timeout`` s the sends still in flight are
        abandoned (their rows stay leased and are sent again after the lease: at least
        once), so a server can always stop in bounded time."""
        self._stop.set()
        self._wake.set()
        finished = True
        if self._thread is not None:
            self._thread.join(timeout)
            finished = not self._thread.is_alive()
            self._thread = None
        self._pool.shutdown(wait=finished, cancel_futures=True)
        if finished:
            self.sender.close()

    def __enter__(self) -> DeliveryWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # the loop must survive a database hiccup; it retries next turn
                log.exception("delivery loop turn failed")
                sent = 0
            if sent:
                continue
            self._wake.wait(self._sleep_seconds())
            self._wake.clear()

    def _sleep_seconds(self) -> float:
        try:
            due = self.store.next_due_at()
        except Exception:
            return self.poll_seconds
        if due is None:
            return self.poll_seconds
        wait = (due - self.store.now()).total_seconds()
        return min(self.poll_seconds, max(0.01, wait))

    def run_once(self) -> int:
        """One turn: flush due groups, claim due deliveries, send them; returns how many."""
        now = self.store.now()
        if self.before_claim is not None:
            try:
                self.before_claim(now)
            except Exception:  # a group that cannot be planned must not stop the sending
                log.exception("planning due notification groups failed")
        claimed = self.store.claim_due(now, self.concurrency * 4, self.lease_seconds)
        if not claimed:
            return 0
        # Sent in parallel, recorded in one transaction. A crash between the two leaves the
        # rows leased: they are sent again after the lease (same webhook-id: at least once).
        # _safe_attempt never raises, so every delivery of the batch gets its record.
        self._finish(list(self._pool.map(self._safe_attempt, claimed)))
        return len(claimed)

    def _finish(
        self, records: list[tuple[int, DeliveryAttempt, Any, datetime | None, str | None]]
    ) -> None:
        """Record a batch in one transaction; when that fails, each record on its own, so
        one record the database refuses does not leave the batch's sent deliveries leased
        (they would be sent again when the lease expires)."""
        try:
            self.store.finish_attempts(records)
            return
        except Exception:
            if len(records) == 1:
                log.exception("recording delivery %s failed", records[0][0])
                return
            log.exception(
                "recording %d deliveries at once failed; recording one by one", len(records)
            )
        for record in records:
            try:
                self.store.finish_attempts([record])
            except Exception:
                log.exception("recording delivery %s failed", record[0])

    # ------------------------------------------------------------------ one delivery
    def deliver(self, item: Claimed) -> str:
        """Send one claimed delivery and record the attempt; returns the outcome."""
        record = self._safe_attempt(item)
        self.store.finish_attempts([record])
        return record[1].outcome

    def _safe_attempt(
        self, item: Claimed
    ) -> tuple[int, DeliveryAttempt, Any, datetime | None, str | None]:
        """:meth:`_attempt`, with any unexpected error turned into a dead letter that says
        what went wrong (a delivery must never stay ``sending``)."""
        t0 = time.perf_counter()
        try:
            return self._attempt(item)
        except Exception as exc:
            log.exception("delivery %s failed unexpectedly", item.delivery.id)
            return self._record(
                item.delivery.id,
                item.delivery.attempts + 1,
                datetime.now(UTC),
                t0,
                None,
                f"internal error: {type(exc).__name__}: {exc}"[:2000],
                "dead",
                None,
                "failed",
            )

    def _render(self, item: Claimed, at: datetime) -> tuple[str, dict[str, str]]:
        """The body to send and its headers (Standard Webhooks signature)."""
        d = item.delivery
        body = d.body
        body = channel_type(item.channel.kind).at_send(d.body, item.secrets.routing_key)
        for secret in item.secrets.secrets:
            check_signing_secret(secret)  # stored before secrets were checked on the way in
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **sign(d.webhook_id, body, item.secrets.secrets, at),
        }
        return body, headers

    def _attempt(
        self, item: Claimed
    ) -> tuple[int, DeliveryAttempt, Any, datetime | None, str | None]:
        """Send one delivery; returns what :meth:`AlertStore.finish_attempts` records."""
        d = item.delivery
        attempt = d.attempts + 1
        started = self.store.now()
        t0 = time.perf_counter()
        try:
            body, headers = self._render(item, started)
        except Exception as exc:  # a bad secret or body: retrying cannot help, so dead-letter
            reason = f"cannot sign or render the webhook: {type(exc).__name__}: {exc}"
            log.warning("delivery %s to channel %s: %s", d.id, item.channel.name, reason)
            return self._record(d.id, attempt, started, t0, None, reason, "dead", None, "failed")
        try:
            target = vet_url(item.secrets.url, self.allowlist, self.resolver)
        except UnsafeURL as exc:
            return self._record(d.id, attempt, started, t0, None, str(exc), "dead", None, "failed")
        try:
            response = self.sender.post(target, body.encode(), headers)
        except Exception as exc:  # a sender bug is retried on the schedule like a network error
            response = Response(None, error=f"{type(exc).__name__}: {exc}")
        done = self.store.now()
        with self._rng_lock:
            outcome = decide(response, attempt, d.created_at, done, self.policy, self._rng)
        error = response.error
        if error is None and outcome.status != "delivered":
            error = f"HTTP {response.status_code}"
        return self._record(
            d.id,
            attempt,
            started,
            t0,
            response.status_code,
            error,
            outcome.status,
            outcome.next_attempt_at,
            outcome.outcome,
            outcome.disable_channel,
        )

    @staticmethod
    def _record(
        delivery_id: int,
        attempt: int,
        started: datetime,
        t0: float,
        status_code: int | None,
        error: str | None,
        status: str,
        next_at: datetime | None,
        outcome: str,
        disable: str | None = None,
    ) -> tuple[int, DeliveryAttempt, Any, datetime | None, str | None]:
        return (
            delivery_id,
            DeliveryAttempt(
                attempt=attempt,
                at=started,
                status_code=status_code,
                error=error,
                duration_ms=(time.perf_counter() - t0) * 1000,
                outcome=outcome,
            ),
            status,
            next_at,
            disable,
        )
