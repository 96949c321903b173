"""A lean path for small JSON ingest requests (issue 17 item 1).

``POST /api/v1/models/{model}/inferences``, ``.../labels`` and ``/api/v1/events`` with a JSON
or NDJSON body are answered here, in front of FastAPI's routing, when the request looks like
one that will be accepted: a declared ``Content-Length`` within ``max_body_bytes``, a key that
authenticated recently with the role the routes need (memory only, see
``MetadataStore.cached_key``) and, for a model's routes, a model the service has in memory.
Anything else (no or a bad key, a role too low, an unknown model, an oversized or chunked body,
another content type, ``DRIFTWATCH_INGEST_LEAN_PATH=false``) goes on to the FastAPI routes
unchanged, which answer it as before: an unauthenticated client never gets its body read.

What it saves is the stack's fixed cost, not any check. The routes' work runs as it does
there, on one worker thread instead of two hops (the key dependency's, then the handler's):
the same key dependency (``auth.require("engineer")``: the key's generation read, the rate
limit, the role), the model look-up, the service call with its validation, group commit and
quarantine, and the same response model and error translation. So every answer (status,
body, headers) is the one the route gives, in the same order of checks, except that a key
revoked in the microseconds between the memory check and the thread's read has had its
(bounded) body read before its 401. Skipped: Starlette's routing over every route (a regex
each), FastAPI's dependency solving and response validation, anyio's worker-thread hops
(a capacity limiter and cancel scopes each). ``tests/api/test_lean_ingest.py`` sends the
same requests through both paths and compares the answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
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
from monitor.service import Caller, IngestSummary, Services
from storage.errors import StorageError

__all__ = ["LeanIngest"]

_MODEL_ROUTE = re.compile(r"/api/v1/models/([^/]+)/(inferences|labels)")
_EVENTS_PATH = "/api/v1/events"
# Worker threads of the lean path (its own pool: ingest never waits for a thread behind
# dashboard reads, nor they behind ingest). Each request holds one while it validates and
# waits for its group's commit, so this bounds a group commit's size: 64 writers of 10 rows
# with 32 threads made groups of about 3 and cost 2.45 ms of server CPU a request; with 64,
# 1.7-2.0 ms and 4.3-5.3k rows/s instead of 2.4-3.4k (same session, load 9-10).
WORKERS = 64

ErrorResponse = Callable[[DriftwatchError], Response]


class LeanIngest:
    """ASGI middleware: the lean path described in the module docstring."""

    def __init__(self, app: Any, *, error_response: ErrorResponse) -> None:
        self.app = app
        self._error_response = error_response
        self._engineer = require("engineer")  # the routes' dependency, unchanged
        self._pool: ThreadPoolExecutor | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        model: str | None = None
        kind = "events"
        if path != _EVENTS_PATH:
            m = _MODEL_ROUTE.fullmatch(path)
            if m is None:
                await self.app(scope, receive, send)
                return
            model, kind = m.group(1), m.group(2)
        request = Request(scope, receive)
        state = scope["app"].state
        limit = self._admitted(request, state, model)
        if limit is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive, limit)
        except PayloadTooLarge as exc:
            await self._error_response(exc)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="lean-ingest")
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            self._pool, self._handle, request, state.services, kind, model, body
        )
        await response(scope, receive, send)

    @staticmethod
    def _admitted(request: Request, state: Any, model: str | None) -> int | None:
        """The body limit when this request takes the lean path, else None (memory only)."""
        settings = state.settings
        if not settings.ingest_lean_path:
            return None
        headers = request.headers
        if not ingest.defers_parsing(headers.get("content-type", "")):
            return None
        declared = headers.get("content-length", "")
        limit: int = settings.max_body_bytes
        if not declared.isdigit() or not 0 < int(declared) <= limit:
            return None
        services: Services = state.services
        presented = presented_key(request)
        key = services.metadata.cached_key(presented) if presented else None
        if key is None or ROLE_RANK.get(key.role, -1) < ROLE_RANK["engineer"]:
            return None
        if model is not None and services.cached_model(model) is None:
            return None
        return limit

    def _handle(
        self, request: Request, services: Services, kind: str, model: str | None, body: bytes
    ) -> Response:
        """What the route does, on this worker thread; an error becomes the app's error answer
        (one it does not map propagates, as from the route: a JSON 500)."""
        services.count("ingest_lean_requests")  # driftwatch_ingest_lean_requests_total
        try:
            caller: Caller = self._engineer(request)
            if model is not None:
                services.get_model(model)  # 404 listing the models, as the route
            if not body:  # pragma: no cover - a declared length of 0 stays on the routes
                raise BadRequestError(EMPTY_BODY)
            parsed = ingest.parse_body(body, request.headers.get("content-type", ""))
            summary: IngestSummary
            if kind == "inferences":
                assert model is not None
                summary = services.ingest_inferences(model, parsed, caller)
            elif kind == "labels":
                assert model is not None
                summary = services.ingest_labels(model, parsed, caller)
            else:
                summary = services.ingest_events(parsed, caller)
            out = ingest_out(summary, services.settings.max_errors_reported)
            return Response(out.model_dump_json(), media_type="application/json")
        except DriftwatchError as exc:
            return self._error_response(exc)
        except (StorageError, AlertsError, DetectorError) as exc:
            mapped = translate(exc)
            if mapped is None:
                raise
            return self._error_response(mapped)


async def _read_body(receive: Any, limit: int) -> bytes | None:
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
