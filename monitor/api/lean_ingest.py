"""A lean path for small JSON ingest requests (issue 17 item 1).

``POST /api/v1/models/{model}/inferences``, ``.../labels`` and ``/api/v1/events`` with a JSON
or NDJSON body are answered here, in front of FastAPI's routing, when the request looks like
one that will be accepted: a declared ``Content-Length`` within ``max_body_bytes``, a key that
authenticated recently with the role the routes need (memory only, see
``MetadataStore.cached_key``) and, for a model's routes, a model the service has read before
(``Services.known_model``, however long ago: the writer's look-up decides).
Anything else (no or a bad key, a role too low, an unknown model, an oversized or chunked body,
another content type, ``DRIFTWATCH_INGEST_LEAN_PATH=false``) goes on to the FastAPI routes
unchanged, which answer it as before: an unauthenticated client never gets its body read.

What it saves is the stack's fixed cost, not any check. The body is parsed and validated
(``Services.prepare_ingest``: reads and writes nothing) on the event loop only when no other
lean request is in flight and the body is small (``LOOP_BODY_BYTES``): a lone writer then
pays no thread hop. Otherwise a validator thread does it and hands the request straight to
the writer, never back through the loop: under many writers the loop is left with HTTP and
the answers, so a dashboard read waits behind less ingest work there (issue 17; validating
64 requests on the loop held each of its turns for ~40 ms). The request waits on a future.
One writer thread takes every request queued by then and, for each in the order queued, runs
the route's checks: the same key dependency (``auth.require("engineer")``: the key's
generation read, once for the group; the rate limit, the role), the model look-up (404),
then the validation's outcome (its error, if any, in the route's order: after the key and
the model), new tenants; then one ``LogStore.append_many`` stores them all (one group
commit, durable when it returns), then each request's labels, quarantine and counters, and
only then are the futures resolved. The validation is redone there when the key's tenant
or the model's schema in force differ from the ones memory had. So every answer (status,
body, headers) is the one the route gives, in the same order of checks, except that a key
revoked between the memory check and the writer's read has had its (bounded) body read and
validated, never stored, before its 401.
Skipped: Starlette's routing over every route (a regex each), FastAPI's dependency solving
and response validation, anyio's worker-thread hops, and a thread per request.
``tests/api/test_lean_ingest.py`` sends the same requests through both paths and compares
the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from alerts.errors import AlertsError
from detectors.errors import DetectorError
from monitor import ingest
from monitor.api.auth import ROLE_RANK, presented_key, require
from monitor.api.routes_models import EMPTY_BODY, ingest_out
from monitor.errors import BadRequestError, DriftwatchError, PayloadTooLarge, translate
from monitor.service import IngestKind, IngestSummary, PreparedIngest, Services
from storage.errors import StorageError
from storage.types import ApiKeyInfo, ModelSchema

__all__ = ["LeanIngest"]

log = logging.getLogger("driftwatch.api")

MODEL_ROUTE = re.compile(r"/api/v1/models/([^/]+)/(inferences|labels)")
EVENTS_PATH = "/api/v1/events"
# A lone request's body up to this size is parsed and validated on the event loop (10 rows of
# JSON: ~0.3 ms of CPU, less than a hop to a thread). While other lean requests are in flight
# a small body goes to the one small-body validator thread (one thread: they reach the writer
# in arrival order, and a second thread only added GIL contention with the loop: -20% rows/s
# at 64 x 10); a larger body to one of LARGE_VALIDATORS threads, so it holds up neither the
# loop (and the dashboard reads it serves) nor the small bodies behind it.
LOOP_BODY_BYTES = 64 * 1024
LARGE_VALIDATORS = 2
# The writer thread ends after this many idle seconds (the next request starts another).
WRITER_IDLE_SECONDS = 10.0

ErrorResponse = Callable[[DriftwatchError], Response]


class LeanJob:
    """One admitted request on its way through the writer thread."""

    __slots__ = (
        "body",
        "error",
        "future",
        "kind",
        "loop",
        "model",
        "outcome",
        "parsed",
        "prepared",
        "reply",
        "request",
        "schema",
        "services",
        "tenant_scope",
    )

    def __init__(
        self, request: Request, services: Services, kind: IngestKind, model: str | None
    ) -> None:
        self.request = request
        self.services = services
        self.kind: IngestKind = kind
        self.model = model
        self.parsed: ingest.ParsedBody | None = None
        self.prepared: PreparedIngest | None = None
        self.tenant_scope: str | None = None  # the key's tenant as memory knew it
        self.schema: ModelSchema | None = None  # the model's schema as memory knew it
        self.error: BaseException | None = None  # raised in the route's order (after auth)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[Any] | None = None
        # a request from the ingest front (monitor.api.ingest_link): validated there, so its
        # body is kept to validate again should the tenant or schema have changed; its
        # answer goes back through ``reply`` (one call per group), not a future
        self.body: bytes | None = None
        self.reply: Callable[[list[LeanJob]], None] | None = None
        self.outcome: IngestSummary | BaseException | None = None


class LeanIngest:
    """ASGI middleware: the lean path described in the module docstring."""

    def __init__(self, app: Any, *, error_response: ErrorResponse, state: Any = None) -> None:
        self.app = app
        if state is not None:  # the ingest link (monitor.api.ingest_link) finds it here
            state.lean_ingest = self
        self._error_response = error_response
        self._engineer = require("engineer")  # the routes' dependency, unchanged
        self._validators: dict[bool, ThreadPoolExecutor] = {}  # by "large body"
        self._cv = threading.Condition()
        self._jobs: list[LeanJob] = []
        self._writer: threading.Thread | None = None
        # lean requests between their body and their answer (read and changed on the loop
        # only; several loops, as in tests, at worst move a body between loop and thread)
        self._in_flight = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        route = ingest_route(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        kind, model = route
        request = Request(scope, receive)
        state = scope["app"].state
        admitted = self._admitted(request, state, model)
        if admitted is None:
            await self.app(scope, receive, send)
            return
        limit, tenant_scope = admitted
        try:
            body = await read_body(receive, limit)
        except PayloadTooLarge as exc:
            await self._error_response(exc)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        services: Services = state.services
        services.count("ingest_lean_requests")  # driftwatch_ingest_lean_requests_total
        job = LeanJob(request, services, kind, model)
        job.loop = loop = asyncio.get_running_loop()
        job.future = loop.create_future()
        self._in_flight += 1
        try:
            large = len(body) > LOOP_BODY_BYTES
            if self._in_flight == 1 and not large:
                prepare_job(job, body, tenant_scope)
                self.submit(job)
            else:
                self._validator(large).submit(self._prepare_and_submit, job, body, tenant_scope)
            await job.future
        finally:
            self._in_flight -= 1
        response = self.response(job)
        await response(scope, receive, send)

    @staticmethod
    def _admitted(request: Request, state: Any, model: str | None) -> tuple[int, str | None] | None:
        """The body limit and the key's tenant when this request takes the lean path, else
        None (memory only)."""
        settings = state.settings
        if not settings.ingest_lean_path:
            return None
        limit: int = settings.max_body_bytes
        declared = lean_body_length(request.headers)
        if declared is None or declared > limit:
            return None
        presented = presented_key(request)
        key = admitted_key(state.services, presented, model) if presented else None
        return None if key is None else (limit, key.tenant_id)

    def _validator(self, large: bool) -> ThreadPoolExecutor:
        """The validator threads for small bodies (one) or large ones, started at first use."""
        pool = self._validators.get(large)
        if pool is None:
            pool = self._validators[large] = ThreadPoolExecutor(
                LARGE_VALIDATORS if large else 1,
                thread_name_prefix="lean-validate-large" if large else "lean-validate",
            )
        return pool

    def _prepare_and_submit(self, job: LeanJob, body: bytes, tenant_scope: str | None) -> None:
        """On a validator thread: :func:`_prepare`, then to the writer (no hop to the loop)."""
        prepare_job(job, body, tenant_scope)
        self.submit(job)

    # --- the writer thread ---------------------------------------------------------------
    def submit(self, *jobs: LeanJob) -> None:
        """Queue requests for the writer thread (several at once: the ingest front's, which
        then reach the writer together, in one group)."""
        with self._cv:
            self._jobs.extend(jobs)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="lean-ingest-writer", daemon=True
                )
                self._writer.start()
            self._cv.notify()

    def _write_loop(self) -> None:
        """Take every request queued, check and store them together (``_write``), wake
        their coroutines; again, until idle for ``WRITER_IDLE_SECONDS``."""
        while True:
            with self._cv:
                if not self._jobs:
                    self._cv.wait(WRITER_IDLE_SECONDS)
                    if not self._jobs:
                        self._writer = None
                        return
                jobs, self._jobs = self._jobs, []
            try:
                self._write(jobs)
            except BaseException as exc:  # e.g. KeyboardInterrupt: nobody is left waiting
                for job in jobs:
                    if job.outcome is None:
                        job.outcome = exc
                if not isinstance(exc, Exception):
                    _wake(jobs)
                    raise
            _wake(jobs)

    def _write(self, jobs: list[LeanJob]) -> None:
        """What the route does after reading the body, for each request in the order queued:
        the key dependency (``auth.require("engineer")``: the key against the group's one
        read of the keys' generation, the rate limit, the role), the model (404), the
        validation's outcome, new tenants; then one ``LogStore.append_many`` for all (a group
        commit: durable when it returns); then each request's labels, quarantine and
        counters."""
        # the group's keys checked at one moment: one read of the keys' generation, not one
        # a request (the route reads it per request; 18 % of this thread's time at 64 x 10)
        with jobs[0].services.metadata.one_key_generation():
            ready = self._check(jobs)
        if not ready:
            return
        results = ready[0][0].services.logstore.append_many(
            [prepared.append_args for _, prepared in ready]
        )
        for (job, prepared), result in zip(ready, results, strict=True):
            try:
                if isinstance(result, Exception):
                    raise result
                job.outcome = job.services.finish_ingest(prepared, result)
            except Exception as exc:
                job.outcome = exc

    def _check(self, jobs: list[LeanJob]) -> list[tuple[LeanJob, PreparedIngest]]:
        """The route's checks for each request, in the order queued (see :meth:`_write`):
        the requests that pass, with their validated batch; the others get their error as
        their outcome."""
        ready: list[tuple[LeanJob, PreparedIngest]] = []
        for job in jobs:
            try:
                caller = self._engineer(job.request)
                services = job.services
                info = services.get_model(job.model) if job.model is not None else None
                stale = job.tenant_scope != caller.tenant_id or (
                    info is not None and job.schema != info.schema
                )
                if stale and job.body is not None and job.parsed is None:  # from the front
                    ctype = job.request.headers.get("content-type", "")
                    job.parsed = ingest.parse_body(job.body, ctype)
                if stale and job.parsed is not None:
                    # validated for another tenant or schema than the ones in force now
                    prepared = services.prepare_ingest(job.kind, info, job.parsed, caller.tenant_id)
                elif job.error is not None:
                    raise job.error
                else:
                    assert job.prepared is not None
                    prepared = job.prepared
                services.admit_tenants(prepared)
                ready.append((job, prepared))
            except Exception as exc:
                job.outcome = exc
        return ready

    def response(self, job: LeanJob) -> Response:
        """The route's answer: the summary, or the app's error answer (an error it does not
        map propagates, as from the route: a JSON 500)."""
        outcome = job.outcome
        if isinstance(outcome, IngestSummary):
            out = ingest_out(outcome, job.services.settings.max_errors_reported)
            return Response(out.model_dump_json(), media_type="application/json")
        if isinstance(outcome, DriftwatchError):
            return self._error_response(outcome)
        if isinstance(outcome, StorageError | AlertsError | DetectorError):
            mapped = translate(outcome)
            if mapped is not None:
                return self._error_response(mapped)
        if outcome is None:  # pragma: no cover - the writer always sets one
            raise RuntimeError("the lean ingest writer left a request unanswered")
        raise outcome


def ingest_route(path: str) -> tuple[IngestKind, str | None] | None:
    """The kind and model of an ingest route's path (None: not one)."""
    if path == EVENTS_PATH:
        return "events", None
    m = MODEL_ROUTE.fullmatch(path)
    if m is None:
        return None
    return ("inferences" if m.group(2) == "inferences" else "labels"), m.group(1)


def lean_body_length(headers: Mapping[str, str]) -> int | None:
    """The declared length of a body the lean path (or the ingest front) may read: JSON or
    NDJSON with a Content-Length above 0 (None: the routes take the request)."""
    if not ingest.defers_parsing(headers.get("content-type", "")):
        return None
    declared = headers.get("content-length", "")
    if not declared.isdigit() or int(declared) <= 0:
        return None
    return int(declared)


def admitted_key(services: Services, presented: str, model: str | None) -> ApiKeyInfo | None:
    """The key, when memory knows it with a role the routes accept and knows the model (for
    a model's routes): such a request's body is read on the lean path (or the ingest front)."""
    key = services.metadata.cached_key(presented)
    if key is None or ROLE_RANK.get(key.role, -1) < ROLE_RANK["engineer"]:
        return None
    if model is not None and services.known_model(model) is None:
        return None
    return key


def prepare_job(job: LeanJob, body: bytes, tenant_scope: str | None) -> None:
    """Parse and validate the body (reads and writes nothing) against the model in memory
    and the key's tenant as memory knows them; the writer re-validates if either differs
    from what the route's checks then find. An error waits for its turn, after those checks."""
    job.tenant_scope = tenant_scope
    try:
        if not body:  # pragma: no cover - a declared length of 0 stays on the routes
            raise BadRequestError(EMPTY_BODY)
        job.parsed = ingest.parse_body(body, job.request.headers.get("content-type", ""))
        info = job.services.known_model(job.model) if job.model is not None else None
        if job.model is not None and info is None:  # pragma: no cover - admitted: known
            return  # the writer validates after its model look-up
        job.schema = info.schema if info is not None else None
        job.prepared = job.services.prepare_ingest(job.kind, info, job.parsed, tenant_scope)
    except Exception as exc:
        job.error = exc


def _wake(jobs: list[LeanJob]) -> None:
    """Resolve the requests' futures on their loops (from the writer thread): one callback
    per loop for all of its requests (one wake-up of the loop, not one per request); the
    ingest front's requests go back through their ``reply``, one call for all of them."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Any]]] = {}
    by_reply: dict[Callable[[list[LeanJob]], None], list[LeanJob]] = {}
    for job in jobs:
        if job.reply is not None:
            by_reply.setdefault(job.reply, []).append(job)
            continue
        assert job.loop is not None and job.future is not None
        by_loop.setdefault(job.loop, []).append(job.future)
    for reply, replied in by_reply.items():
        try:
            reply(replied)
        except Exception:  # the front went away: its requests were not acknowledged
            log.exception("could not answer the ingest front")

    for loop, futures in by_loop.items():

        def done(futures: list[asyncio.Future[Any]] = futures) -> None:
            for future in futures:
                if not future.done():
                    future.set_result(None)

        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(done)


async def read_body(receive: Any, limit: int) -> bytes | None:
    """The body (None when the client disconnected first); 413 past ``limit``, with the
    message of ``deps.read_body``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
