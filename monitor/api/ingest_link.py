"""The server's end of the ingest front (``DRIFTWATCH_INGEST_PORT``, issue 17).

With an ingest port set, ``driftwatch serve`` starts a second process,
:mod:`monitor.api.ingest_front`, which listens on that port. It reads and parses HTTP there,
validates the JSON bodies of keys and models it has been told about (:class:`Admission`), and
sends each batch of requests it has read meanwhile, already validated, to this process over
one local socket (``multiprocessing.connection``: pickled frames, the connection
authenticated by a key only the two processes know). Here each request joins the lean path's
writer queue (:mod:`monitor.api.lean_ingest`) like one read on the main port: the same checks
in the same order (the key against the metadata store, the rate limit, the role, the model,
the validation's outcome, new tenants), one group commit, and an answer only once its rows
are durable. The answers (status, headers, body) go back in one message per group.

Why a process: HTTP parsing and JSON validation are Python work that holds the GIL; done in
the process that serves the dashboard, every read waited behind them (a read's p95 was 4-5x
its idle figure under 64 writers). The DuckDB file still has one owner, this process, so the
durability argument of group commit is unchanged (docs/architecture.md).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, Listener
from typing import Any

import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response

from monitor.api.app import internal_error_response
from monitor.api.lean_ingest import LeanIngest, LeanJob, admitted_key, prepare_job
from monitor.ingest.validation import Validated
from monitor.ingest_prepare import IngestKind, PreparedIngest
from monitor.service import Services
from monitor.settings import Settings
from storage.arrow_ipc import from_stream, to_stream
from storage.types import ModelInfo

log = logging.getLogger("driftwatch.api")

# the environment variables that hand the link to the front process (not its argv: a key
# on a command line is visible to every local user)
LINK_ADDRESS_ENV = "DRIFTWATCH_INGEST_LINK"
LINK_KEY_ENV = "DRIFTWATCH_INGEST_LINK_KEY"
SETTINGS_ENV = "DRIFTWATCH_INGEST_FRONT_SETTINGS"
# seconds the front has to accept on its port before ``serve`` gives up
FRONT_START_SECONDS = 60.0


@dataclass(frozen=True)
class Admission:
    """What the front needs to take a key's requests to a model (or events) itself: the body
    limit, the key's tenant and the model with the Arrow schema its inferences are stored
    with, as this process's memory knows them (the writer checks them again)."""

    limit: int
    tenant: str | None
    info: ModelInfo | None
    inference_target: pa.Schema | None


# one request from the front: (id, kind, model, path, headers, client, body, the tenant it
# was validated for, its validated batch or None when the front's validation failed)
FrontJob = tuple[
    int,
    IngestKind,
    str | None,
    str,
    list[tuple[bytes, bytes]],
    tuple[str, int] | None,
    bytes,
    str | None,
    PreparedIngest | None,
]
# a FrontJob on the link: its validated batch's fields but its tables (see _fields), and
# where its rows are in the message's tables (index, offset, rows); see pack_tables
PackedBatch = tuple[tuple[Any, ...], int, int, int]
# one answer to the front: (id, status, headers, body)
FrontAnswer = tuple[int, int, list[tuple[bytes, bytes]], bytes]


class IngestLink:
    """Listens for the front process on an abstract local socket and serves each connection
    on a thread of its own (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        # an abstract socket (Linux): no file to clean up, and a long data dir path is fine
        self.address = f"\0driftwatch-ingest-{os.getpid()}-{secrets.token_hex(8)}"
        self.authkey = secrets.token_bytes(32)
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self._closed = False
        self.ready = threading.Event()  # set once the front says its port listens
        threading.Thread(target=self._accept, name="ingest-link-accept", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except Exception:  # closed, or a peer without the key: keep serving the front
                if self._closed:
                    return
                log.warning("refused a connection to the ingest link", exc_info=True)
                continue
            threading.Thread(
                target=self._serve, args=(conn,), name="ingest-link", daemon=True
            ).start()

    def _serve(self, conn: Connection) -> None:
        """One front's messages until it goes away: ``admit`` questions, answered at once,
        and ``jobs``, queued for the lean writer, whose answers ``reply`` sends back."""
        state = self._app.state
        lean: LeanIngest = state.lean_ingest
        services: Services = state.services
        lock = threading.Lock()
        ids: dict[int, int] = {}  # id(job) -> the front's id of its request

        def send(message: Any) -> None:
            with lock:
                conn.send(message)

        def reply(jobs: list[LeanJob]) -> None:
            send(("done", [answer(lean, job, ids.pop(id(job))) for job in jobs]))

        try:
            while True:
                message = conn.recv()
                if message[0] == "ready":
                    self.ready.set()
                    continue
                if message[0] == "admit":
                    _, rid, presented, model = message
                    send(("admit", rid, admission(services, presented, model)))
                    continue
                _, items, streams = message
                tables = unpack_tables(streams)
                jobs = []
                for item in items:
                    job = self._job(services, item, tables)
                    ids[id(job)] = item[0]
                    job.reply = reply
                    jobs.append(job)
                services.count("ingest_lean_requests", len(jobs))
                services.count("ingest_front_requests", len(jobs))
                lean.submit(*jobs)
        except (EOFError, OSError):
            return  # the front has gone (its unanswered requests were never acknowledged)
        finally:
            conn.close()

    def _job(self, services: Services, item: tuple[Any, ...], tables: list[pa.Table]) -> LeanJob:
        _, kind, model, path, headers, client, body, tenant, packed = item
        scope = {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": client,
            "server": None,
            "app": self._app,
        }
        job = LeanJob(Request(scope), services, kind, model)
        job.body = body
        if packed is None:  # the front's validation failed: redone here for its error
            prepare_job(job, body, tenant)
        else:
            prepared = unpack_batch(packed, tables)
            job.tenant_scope = tenant
            job.schema = prepared.schema
            job.prepared = prepared
        return job


def pack_tables(jobs: list[FrontJob]) -> tuple[list[tuple[Any, ...]], list[bytes]]:
    """The ``jobs`` message's items and tables: the validated batches' tables concatenated,
    one table per schema (a model's batches share theirs), each batch keeping where its rows
    are, each table as an Arrow IPC stream. Pickling an Arrow table costs per column and
    chunk, not per row: 24 ten-row tables took ~3.5 ms to pickle and ~2 ms to unpickle, one
    table of their rows a tenth of it; and a one-row table still ~0.11 ms to pickle and
    ~0.11 ms to unpickle, against ~0.015 ms each way as an IPC stream (issue 17: a lone
    writer on the front pays both on every request)."""
    parts: list[list[pa.Table]] = []
    sizes: list[int] = []
    items: list[tuple[Any, ...]] = []
    for job in jobs:
        prepared = job[-1]
        if prepared is None:
            items.append(job)
            continue
        table = prepared.table
        at = next((i for i, p in enumerate(parts) if p[0].schema.equals(table.schema)), None)
        if at is None:
            at = len(parts)
            parts.append([])
            sizes.append(0)
        parts[at].append(table)
        items.append((*job[:-1], (_fields(prepared), at, sizes[at], table.num_rows)))
        sizes[at] += table.num_rows
    return items, [to_stream(pa.concat_tables(p).combine_chunks()) for p in parts]


def unpack_tables(streams: list[bytes]) -> list[pa.Table]:
    """The tables of :func:`pack_tables` (zero-copy over the message's bytes)."""
    return [from_stream(s) for s in streams]


def unpack_batch(packed: PackedBatch, tables: list[pa.Table]) -> PreparedIngest:
    """A batch of :func:`pack_tables` with its rows again (a zero-copy slice)."""
    fields, at, offset, rows = packed
    kind, model, schema, tenant_scope, batch_id, errors, rejected, received, tenants, labels = (
        fields
    )
    table = tables[at].slice(offset, rows)
    # v.table, the validated rows (with an inference batch's label column), is read by
    # nothing after validation: it gets the rows to append
    v = Validated(table=table, errors=errors, rejected=rejected, received=received, tenants=tenants)
    return PreparedIngest(
        kind=kind,
        model=model,
        schema=schema,
        tenant_scope=tenant_scope,
        batch_id=batch_id,
        v=v,
        table=table,
        labels=labels,
    )


def _fields(p: PreparedIngest) -> tuple[Any, ...]:
    """A validated batch's fields but its tables, which travel in the message's tables (and
    the validated table, which the server does not read); built by hand, as
    :func:`unpack_batch` reads them: ``dataclasses.replace`` took ~10 us a call, four a
    request (40 % of a 22-request message's packing and unpacking)."""
    v = p.v
    return (
        p.kind,
        p.model,
        p.schema,
        p.tenant_scope,
        p.batch_id,
        v.errors,
        v.rejected,
        v.received,
        v.tenants,
        p.labels,
    )


def admission(services: Services, presented: str, model: str | None) -> Admission | None:
    """The key's admission to the front for ``model`` (None: the front passes its requests
    on to this process's routes)."""
    key = admitted_key(services, presented, model)
    if key is None:
        return None
    info = services.known_model(model) if model is not None else None
    target = None if info is None else services.logstore.arrow_schema(info.name, info.schema)
    return Admission(services.settings.max_body_bytes, key.tenant_id, info, target)


def answer(lean: LeanIngest, job: LeanJob, rid: int) -> FrontAnswer:
    """The answer the main port's lean path gives ``job`` (security headers aside: the front
    adds them as the main app does)."""
    response: Response
    try:
        response = lean.response(job)
    except Exception:
        log.exception("unhandled error in POST %s (ingest front)", job.request.url.path)
        response = internal_error_response()
    return rid, response.status_code, list(response.raw_headers), bytes(response.body)


class FrontProcess:
    """The front process of ``driftwatch serve`` (``settings.ingest_port``): started with a
    link of its own, stopped with the server. It exits by itself when this process goes,
    even killed: its end of the link then reads end-of-file."""

    def __init__(self, app: Any, settings: Settings) -> None:
        assert settings.ingest_port is not None
        self.settings = settings
        self.link = IngestLink(app)
        env = {
            **os.environ,
            LINK_ADDRESS_ENV: self.link.address[1:],  # without the abstract socket's NUL
            LINK_KEY_ENV: self.link.authkey.hex(),
            SETTINGS_ENV: settings.model_dump_json(),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.api.ingest_front"], env=env, stdin=subprocess.DEVNULL
        )

    def wait_accepting(self, timeout: float = FRONT_START_SECONDS) -> None:
        """Return once the front says its port listens (its own word over the link: a
        connection that succeeds may reach another program on a taken port); raise when
        the front exits first."""
        deadline = time.monotonic() + timeout
        while not self.link.ready.wait(0.05):
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"the ingest front exited with code {code} before listening on port "
                    f"{self.settings.ingest_port} (DRIFTWATCH_INGEST_PORT); see its error above"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the ingest front did not listen on port {self.settings.ingest_port} "
                    f"within {timeout:.0f} s"
                )

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.link.close()


def connect_host(host: str) -> str:
    """An address to reach a server listening on ``host`` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
