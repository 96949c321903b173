"""FastAPI application factory."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.api.auth import FailureAudit, RateLimiter
from monitor.api.openapi import document_errors
from monitor.errors import DriftwatchError, PayloadTooLarge, RateLimited, ValidationFailed
from monitor.service import Services
from monitor.settings import Settings

log = logging.getLogger("driftwatch.api")


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the API. With ``services`` given the caller owns them (tests); otherwise the app
    opens the stores at start-up and closes them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.open(settings)
        scheduler = None
        if getattr(settings, "scheduler_enabled", True):
            from monitor.scheduler import start_scheduler

            scheduler = start_scheduler(app.state.services)
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            # Stop what runs on our threads first (each at its next window), then the stores.
            from monitor.jobs import stop_jobs

            stop_jobs(app.state.services, timeout=3.0)
            if scheduler is not None:
                scheduler.service.runner.stop()
                scheduler.shutdown()
            if owned:
                app.state.services.close()

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
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    app.state.auth_failures = FailureAudit()
    app.state.settings = settings

    @app.exception_handler(DriftwatchError)
    async def _driftwatch_error(request: Request, exc: DriftwatchError) -> JSONResponse:
        body: dict[str, object] = {"type": type(exc).__name__, "message": exc.message}
        headers = {}
        if isinstance(exc, ValidationFailed):
            body["errors"] = [e.to_dict() for e in exc.errors]
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"error": body}, status_code=exc.status_code, headers=headers)

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
    install_web_apps(app, settings)  # the dashboard (issue 7): every path no API route takes
    app.openapi = lambda: document_errors(app)  # type: ignore[method-assign]
    return app


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
            body = {"error": {"type": "InternalError", "message": "internal server error"}}
            await JSONResponse(body, status_code=500)(scope, receive, send)


def install_web_apps(app: FastAPI, settings: Settings) -> None:
    """Let web apps registered under the ``driftwatch.web`` entry point (the dashboard) serve
    the paths no API route matches. Found by entry point, so ``monitor`` never imports them."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="driftwatch.web"):
        try:
            ep.load()(app, settings)
        except Exception:  # the API must come up even when the dashboard cannot
            log.exception("web app %s could not be installed", ep.name)


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes the configured limit."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
