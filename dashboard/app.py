"""The Dash app (Flask underneath), and how it is served next to the API on one port.

One Dash app per process: Dash collects ``@callback`` functions and pages into module-level
registries that the first app takes, so a second app would have none. Each server that mounts
the dashboard passes its services through the request (``scope["app"].state.services``),
so several API servers in one process (tests) share the app but not their data.

``install(api, ...)`` makes the dashboard the API's fallback route: API routes, whenever they
are added, take precedence, and every other path goes to Dash. ``monitor.api.create_app``
finds ``install`` through the ``driftwatch.web`` entry point, so ``monitor`` never imports
``dashboard``.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import dash
from a2wsgi import WSGIMiddleware
from dash import Dash, dcc, html
from starlette.responses import JSONResponse

from dashboard import auth
from dashboard.components import shell
from monitor.settings import Settings

log = logging.getLogger("driftwatch.dashboard")

HERE = Path(__file__).resolve().parent
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json")
_lock = threading.Lock()
_app: Dash | None = None


def _secret(data_dir: Path | None) -> str:
    """The session-cookie key: $DRIFTWATCH_SECRET_KEY, else a random key kept in the data dir
    (so log-ins survive restarts), else a per-process random key."""
    env = os.environ.get("DRIFTWATCH_SECRET_KEY")
    if env:
        return env
    if data_dir is not None:
        path = Path(data_dir) / "dashboard_secret"
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(48))
            return path.read_text().strip()
        except OSError as exc:
            log.warning("cannot keep the session key in %s: %s", path, exc)
    return secrets.token_urlsafe(48)


def get_app(data_dir: Path | None = None) -> Dash:
    """The process's Dash app, built on first use."""
    global _app
    with _lock:
        if _app is None:
            _app = _build(data_dir)
        return _app


def _build(data_dir: Path | None) -> Dash:
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Driftwatch",
        update_title=None,  # type: ignore[arg-type]  # documented: None turns it off; typed str
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    server = app.server
    server.secret_key = _secret(data_dir)
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="driftwatch_session",
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    auth.init(server)
    app.layout = _layout
    return app


def _layout() -> Any:
    acct = auth.account()
    return shell(acct, dash.page_container, auth.csrf_token() if acct is not None else "")


class _Fallback:
    """ASGI app serving the dashboard (WSGI in a thread pool)."""

    def __init__(self, dash_app: Dash) -> None:
        self._wsgi = WSGIMiddleware(dash_app.server, workers=8)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope.get("path", "").startswith(API_PREFIXES):
            # an unknown API path stays an API 404, not the dashboard's log-in redirect
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await self._wsgi(scope, receive, send)


def install(api: Any, settings: Settings) -> None:
    """Serve the dashboard for every path the API does not route."""
    api.router.default = _Fallback(get_app(settings.data_dir))


__all__ = ["dcc", "get_app", "html", "install"]
