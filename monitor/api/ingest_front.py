"""The ingest front process: ingest on a port of its own (``DRIFTWATCH_INGEST_PORT``).

Started by ``driftwatch serve`` (:class:`monitor.api.ingest_link.FrontProcess`); not a command
of its own. On its port it answers what the main port answers, split in two:

* A JSON or NDJSON ingest request (``POST /api/v1/models/{model}/inferences``, ``.../labels``,
  ``/api/v1/events``) of a key and model the server admits (:class:`Admission`, asked once and
  kept :data:`ADMISSION_SECONDS`) is read and validated here, then sent with every other
  request read meanwhile to the server, whose lean writer checks and stores them in one group
  commit; the server's answer, given only once the rows are durable, is sent back as is.
* Everything else (another route, a key or model the server's memory does not know, an
  oversized, chunked or Parquet body, a read) is passed on to the main port unchanged, so it
  gets the main port's answer: this port serves the whole API, only faster for ingest.

When the server goes (stopped, or killed) the link reads end-of-file: requests waiting for an
answer get a 503 (never acknowledged, so a client retries them) and this process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from multiprocessing.connection import Client, Connection
from typing import Any

import httpx
import pyarrow as pa
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse

from monitor import ingest
from monitor.api.app import SecurityHeaders, error_response
from monitor.api.auth import presented_key
from monitor.api.ingest_link import (
    LINK_ADDRESS_ENV,
    LINK_KEY_ENV,
    SETTINGS_ENV,
    Admission,
    FrontJob,
    connect_host,
    pack_tables,
)
from monitor.api.lean_ingest import LOOP_BODY_BYTES, ingest_route, lean_body_length, read_body
from monitor.errors import PayloadTooLarge
from monitor.ingest_prepare import BatchPreparer, IngestKind, PreparedIngest
from monitor.settings import Settings
from storage.types import ModelSchema

log = logging.getLogger("driftwatch.ingest_front")

# how long an admission is kept before the server is asked again: a key revoked meanwhile
# has its bodies read and validated here, never stored (the server's writer checks every
# request's key against the metadata store first). A refusal is kept for less: the request
# passed on to the main port may well make the server know the key or the model.
ADMISSION_SECONDS = 2.0
REFUSAL_SECONDS = 0.25
# headers of one connection, not passed on (RFC 9110, 7.6.1)
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
# headers this process's server sets itself on every answer
_OWN = frozenset({b"date", b"server"})
_GONE = {"error": {"type": "Unavailable", "message": "the server is stopping; send it again"}}


class Front:
    """The front's ASGI app (see the module docstring)."""

    def __init__(self, settings: Settings, address: str, authkey: bytes) -> None:
        self._settings = settings
        self._address = address
        self._authkey = authkey
        self._upstream = f"http://{connect_host(settings.host)}:{settings.port}"
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._asking: set[int] = set()  # the ids of admission questions pending
        self._outbox: list[FrontJob] = []
        self._gone = False
        # (key, model) -> (monotonic time asked, the server's admission or None)
        self._admissions: dict[tuple[str, str | None], tuple[float, Admission | None]] = {}
        # model -> (schema, Arrow schema its inferences are stored with), from admissions
        self._targets: dict[str, tuple[ModelSchema, pa.Schema]] = {}
        self._preparer = BatchPreparer(settings, lambda: datetime.now(UTC), self._target)
        self._large = ThreadPoolExecutor(2, thread_name_prefix="front-validate-large")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # the API serves no websocket
            return
        taken = await self._admitted(scope)
        if taken is None:
            await self._proxy(scope, receive, send)
            return
        kind, model, admission = taken
        try:
            body = await read_body(receive, admission.limit)
        except PayloadTooLarge as exc:
            await error_response(exc)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        ctype = Headers(scope=scope).get("content-type", "")
        if len(body) > LOOP_BODY_BYTES:  # a large body holds up neither the loop nor others
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(
                self._large, self._validate, kind, admission, body, ctype
            )
        else:
            prepared = self._validate(kind, admission, body, ctype)
        if self._gone:
            await JSONResponse(_GONE, status_code=503)(scope, receive, send)
            return
        rid = next(self._ids)
        future = self._future(rid)
        client = scope.get("client")
        headers = list(scope["headers"])
        path = scope["path"]
        self._queue((rid, kind, model, path, headers, client, body, admission.tenant, prepared))
        status, out_headers, out_body = await future
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out_body})

    # --- admission ----------------------------------------------------------------------
    async def _admitted(self, scope: Any) -> tuple[IngestKind, str | None, Admission] | None:
        """The request's kind, model and admission when it is read here, else None."""
        if scope["method"] != "POST" or self._gone:
            return None
        route = ingest_route(scope["path"])
        if route is None:
            return None
        kind, model = route
        declared = lean_body_length(Headers(scope=scope))
        if declared is None:
            return None
        presented = presented_key(Request(scope))
        if not presented:
            return None
        now = time.monotonic()
        known = self._admissions.get((presented, model))
        if known is None or now - known[0] > (
            ADMISSION_SECONDS if known[1] is not None else REFUSAL_SECONDS
        ):
            rid = next(self._ids)
            future = self._future(rid)
            self._asking.add(rid)
            self._send(("admit", rid, presented, model))
            try:
                admitted: Admission | None = await future
            except ConnectionError:
                return None
            known = (now, admitted)
            if len(self._admissions) > 10_000:  # keys come and go: keep the memory bounded
                self._admissions.clear()
            self._admissions[(presented, model)] = known
            if admitted is not None and admitted.info is not None:
                target = admitted.inference_target
                if target is not None:
                    self._targets[admitted.info.name] = (admitted.info.schema, target)
        admitted = known[1]
        if admitted is None or declared > admitted.limit:
            return None
        return kind, model, admitted

    def _target(self, model: str, schema: ModelSchema) -> pa.Schema:
        known = self._targets.get(model)
        if known is None or known[0] != schema:  # pragma: no cover - admitted with its target
            raise LookupError(f"no stored schema of model {model!r} from the server")
        return known[1]

    def _validate(
        self, kind: IngestKind, admission: Admission, body: bytes, ctype: str
    ) -> PreparedIngest | None:
        """The validated batch, or None: the server validates it again and answers the
        route's error in the route's order (after the key and the model)."""
        try:
            parsed = ingest.parse_body(body, ctype)
            return self._preparer.prepare(kind, admission.info, parsed, admission.tenant)
        except Exception:
            return None

    # --- the link to the server ---------------------------------------------------------
    def _future(self, rid: int) -> asyncio.Future[Any]:
        assert self._loop is not None
        future = self._loop.create_future()
        self._pending[rid] = future
        return future

    def _queue(self, job: FrontJob) -> None:
        """Queue a request for the server; every request queued in this turn of the loop
        goes in one message (one group, one wake-up of the server's link thread)."""
        self._outbox.append(job)
        if len(self._outbox) == 1:
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def announce_ready(self) -> None:
        """Tell the server this process's port listens (``driftwatch serve`` then says so)."""
        self._send(("ready",))

    def _flush(self) -> None:
        jobs, self._outbox = self._outbox, []
        self._send(("jobs", *pack_tables(jobs)))

    def _send(self, message: Any) -> None:
        assert self._conn is not None
        try:
            self._conn.send(message)
        except OSError:
            self._lost()

    def _read_link(self) -> None:
        """The link's reader thread: answers to the loop; at end-of-file, :meth:`_lost`."""
        assert self._conn is not None and self._loop is not None
        loop = self._loop
        try:
            while True:
                message = self._conn.recv()
                loop.call_soon_threadsafe(self._resolve, message)
        except (EOFError, OSError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop has closed: we are stopping
            loop.call_soon_threadsafe(self._lost)

    def _resolve(self, message: Any) -> None:
        if message[0] == "admit":
            _, rid, admitted = message
            self._done(rid, admitted)
            return
        for rid, status, headers, body in message[1]:
            self._done(rid, (status, headers, body))

    def _done(self, rid: int, result: Any) -> None:
        self._asking.discard(rid)
        future = self._pending.pop(rid, None)
        if future is not None and not future.done():
            future.set_result(result)

    def _lost(self) -> None:
        """The server has gone: what waits gets a 503, and this process stops."""
        if self._gone:
            return
        self._gone = True
        gone = (503, [(b"content-type", b"application/json")], JSONResponse(_GONE).body)
        for rid in list(self._pending):
            if rid in self._asking:  # an admission question: its request goes to the proxy
                self._asking.discard(rid)
                self._pending.pop(rid).set_exception(ConnectionError("the server has gone"))
            else:
                self._done(rid, gone)
        log.warning("the server has gone; the ingest front stops")
        os.kill(os.getpid(), signal.SIGTERM)

    # --- everything else: the main port's answer ----------------------------------------
    async def _proxy(self, scope: Any, receive: Any, send: Any) -> None:
        assert self._http is not None
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        client = scope.get("client")
        if client:  # the main server (uvicorn) trusts X-Forwarded-For from this machine
            headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-for"] + [
                (b"x-forwarded-for", _forwarded_for(scope["headers"], client[0]))
            ]
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]

        async def body() -> Any:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        request = self._http.build_request(
            scope["method"], target.decode("latin-1"), headers=headers, content=body()
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError:
            await JSONResponse(_GONE, status_code=503)(scope, receive, send)
            return
        try:
            out = [
                (k, v)
                for k, v in response.headers.raw
                if k.lower() not in _HOP_BY_HOP and k.lower() not in _OWN
            ]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    # --- start and stop -----------------------------------------------------------------
    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self._conn = Client(self._address, family="AF_UNIX", authkey=self._authkey)
                threading.Thread(target=self._read_link, name="front-link", daemon=True).start()
                self._http = httpx.AsyncClient(
                    base_url=self._upstream,
                    timeout=httpx.Timeout(None, connect=10.0),
                    limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                if self._conn is not None:
                    self._conn.close()
                self._large.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _forwarded_for(headers: list[tuple[bytes, bytes]], client: str) -> bytes:
    """X-Forwarded-For with this connection's client appended (as a proxy in front of it
    would have done)."""
    earlier = [v for k, v in headers if k.lower() == b"x-forwarded-for"]
    return b", ".join([*earlier, client.encode()])


def main() -> None:
    import uvicorn

    settings = Settings.model_validate_json(os.environ.pop(SETTINGS_ENV))
    address = "\0" + os.environ.pop(LINK_ADDRESS_ENV)  # an abstract socket
    authkey = bytes.fromhex(os.environ.pop(LINK_KEY_ENV))
    assert settings.ingest_port is not None
    front = Front(settings, address, authkey)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            # uvicorn has run the start-up (the link is open) and bound the port by now, or
            # returned early with should_exit set
            if self.started and not self.should_exit:
                front.announce_ready()
                # validation's first-call cost, off the first request's path
                threading.Thread(target=ingest.warm_up, name="ingest-warm-up", daemon=True).start()

    config = uvicorn.Config(
        SecurityHeaders(front),
        host=settings.host,
        port=settings.ingest_port,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=4,
    )
    Server(config).run()


if __name__ == "__main__":
    main()
