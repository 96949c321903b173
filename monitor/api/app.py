"""FastAPI application factory."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.errors import AlertsError
from detectors.errors import DetectorError
from monitor.api.auth import FailureAudit, RateLimiter
from monitor.api.lean_ingest import LeanIngest
from monitor.api.openapi import document_errors
from monitor.composition import compose, open_process
from monitor.errors import DriftwatchError, RateLimited, ValidationFailed, translate
from monitor.service import Services
from monitor.settings import Settings
from storage.errors import StorageError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

log = logging.getLogger("driftwatch.api")


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    scheduler: bool | None = None,
    worker: bool | None = None,
    start_after_ready: bool = False,
) -> FastAPI:
    """Build the API (and the dashboard, by entry point).

    With ``services`` given the caller owns the stores (tests) and the components are built
    now, so the app answers without its lifespan running (``httpx.ASGITransport``); otherwise
    the app opens the stores at start-up and closes them at shutdown. The lifespan starts the
    monitor scheduler and the alert delivery worker: ``scheduler`` / ``worker`` say whether
    (default: the settings ``scheduler_enabled`` / ``alert_worker``); see
    :mod:`monitor.composition`. With ``start_after_ready`` (``driftwatch serve``) they are
    started by ``app.state.after_ready`` instead, once the port is open: neither is needed to
    answer a request (a due window waits a tick, a notification waits in the outbox), and
    starting them loads APScheduler and numba's kernels on threads that would compete with
    the start-up for the GIL (issue 17: ready in 3 s).
    """
    run_scheduler = settings.scheduler_enabled if scheduler is None else scheduler
    run_worker = settings.alert_worker if worker is None else worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is None:
            components = open_process(settings)
            app.state.services = components.services
            app.state.components = components
        components = app.state.components
        app.state.scheduler = None
        # a start deferred to after ready and the shutdown exclude each other: a server told
        # to stop before its start ran never starts them
        started = threading.Lock()
        stopping = False

        def start() -> None:
            with started:
                if not stopping:
                    components.start(scheduler=run_scheduler, worker=run_worker)
                    app.state.scheduler = components.scheduler

        if start_after_ready:
            app.state.after_ready.append(start)
        else:
            start()
        try:
            yield
        finally:
            with started:
                stopping = True
            # Stop what runs on our threads first (each at its next window), then the stores.
            components.stop(timeout=3.0)
            if services is None:
                components.close()

    # FastAPIOffline (fastapi-offline): FastAPI with /docs and /redoc whose Swagger UI and
    # ReDoc files are served from the package, not a CDN, so the docs work offline
    app = FastAPIOffline(
        static_url="/docs/assets",
        title="Driftwatch",
        version="0.1.0",
        summary="Model monitoring for multi-tenant ML services",
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
        app.state.components = compose(services)
    # work a server does once its port is open (``driftwatch serve`` runs each in a thread):
    # what would delay "ready" and is not needed before the first request, such as building
    # the dashboard; a web app installed below appends to it
    app.state.after_ready = []
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    app.state.auth_failures = FailureAudit()
    app.state.settings = settings

    @app.exception_handler(DriftwatchError)
    async def _driftwatch_error(request: Request, exc: DriftwatchError) -> JSONResponse:
        return error_response(exc)

    # The lower layers' roots: one translation (monitor.errors.translate) for every route;
    # what it does not map stays an unexpected error (a JSON 500, logged).
    async def _layer_error(request: Request, exc: Exception) -> JSONResponse:
        mapped = translate(exc)
        if mapped is None:
            raise exc
        return error_response(mapped)

    for root in (StorageError, AlertsError, DetectorError):
        app.add_exception_handler(root, _layer_error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette lists only the methods of the first route matching the path; list
            # every method this path serves (one route per method here)
            headers["Allow"] = ", ".join(_methods_of(request))
        names = {404: "NotFoundError", 405: "MethodNotAllowed"}
        body = {
            "error": {"type": names.get(exc.status_code, "HTTPError"), "message": str(exc.detail)}
        }
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return JSONResponse(
            {"error": {"type": "ValidationFailed", "message": message, "errors": errors}},
            status_code=422,
        )

    # innermost of ours: its answers get the security headers, its unexpected errors the
    # JSON 500 (monitor.api.lean_ingest)
    app.add_middleware(LeanIngest, error_response=error_response, state=app.state)
    app.add_middleware(_ServerErrorAsJson)
    app.add_middleware(SecurityHeaders)

    from monitor.api import routes_admin, routes_models

    app.include_router(routes_admin.router, prefix="/api/v1")
    app.include_router(routes_models.router, prefix="/api/v1")
    from monitor.api import routes_alerts  # alerting (issue 6)

    app.include_router(routes_alerts.router, prefix="/api/v1")
    from monitor.api import routes_monitors

    app.include_router(routes_monitors.router, prefix="/api/v1")
    from monitor.api import routes_kpis

    app.include_router(routes_kpis.router, prefix="/api/v1")
    from monitor.api import routes_jobs

    app.include_router(routes_jobs.router, prefix="/api/v1")
    from monitor.api import routes_profiles  # profiles pushed by a lake job (issue 16)

    app.include_router(routes_profiles.router, prefix="/api/v1")
    install_web_apps(app, settings)  # the dashboard (issue 7): every path no API route takes
    app.openapi = lambda: document_errors(app)  # type: ignore[method-assign]
    return app


def internal_error_response() -> JSONResponse:
    """The answer to an unexpected error: a JSON 500 that tells nothing of it (it is logged)."""
    body = {"error": {"type": "InternalError", "message": "internal server error"}}
    return JSONResponse(body, status_code=500)


def error_response(exc: DriftwatchError) -> JSONResponse:
    """The API's answer for an error of the tree: its class's status and ``{"error": ...}``."""
    body: dict[str, object] = {"type": type(exc).__name__, "message": exc.message}
    headers = {}
    if isinstance(exc, ValidationFailed):
        body["errors"] = [e.to_dict() for e in exc.errors]
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": body}, status_code=exc.status_code, headers=headers)


def _methods_of(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path (what ``Allow`` says)."""
    table = getattr(request.app.state, "allow_table", None)
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"),
                sorted(m.upper() for m in ops),
            )
            # literal paths first: /kpis/summary before /kpis/{kpi}
            for path, ops in sorted(
                request.app.openapi()["paths"].items(), key=lambda item: item[0].count("{")
            )
        ]
        request.app.state.allow_table = table
    for pattern, methods in table:
        if pattern.match(request.url.path):
            return list(methods)
    return []


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # no page of ours may be framed (clickjacking): the old header and its CSP successor
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    # a JSON or CSV answer is never sniffed into HTML or script
    (b"x-content-type-options", b"nosniff"),
    # links out of the dashboard do not carry alert or tenant ids in the Referer
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP answer (API, docs and the dashboard) that
    does not set them itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


class _ServerErrorAsJson:
    """An unexpected exception becomes a JSON 500 without the traceback, and the exception
    stops here: Starlette's outer handler re-raises it after answering, which makes uvicorn
    drop the kept-alive connection, so the client's next request failed with a reset."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:  # part of the answer is out: only closing the connection is left
                raise
            await internal_error_response()(scope, receive, send)


@functools.cache
def _web_app_entry_points() -> tuple[EntryPoint, ...]:
    """The ``driftwatch.web`` entry points, looked up once per process: a lookup reads every
    installed distribution's metadata (~7 ms of CPU here, paid by each app a test builds)."""
    from importlib.metadata import entry_points

    return tuple(entry_points(group="driftwatch.web"))


def install_web_apps(app: FastAPI, settings: Settings) -> None:
    """Let web apps registered under the ``driftwatch.web`` entry point (the dashboard) serve
    the paths no API route matches. Found by entry point, so ``monitor`` never imports them."""
    for ep in _web_app_entry_points():
        try:
            ep.load()(app, settings)
        except Exception:  # the API must come up even when the dashboard cannot
            log.exception("web app %s could not be installed", ep.name)
