"""How the dashboard is served next to the API on one port, built on first use.

One Dash app per process: Dash collects ``@callback`` functions and pages into module-level
registries that the first app takes, so a second app would have none. Each server that mounts
the dashboard passes its services through the request (``scope["app"].state.services``),
so several API servers in one process (tests) share the app but not their data.

``install(api, ...)`` makes the dashboard the API's fallback route: API routes, whenever they
are added, take precedence, and every other path goes to Dash. ``monitor.api.create_app``
finds ``install`` through the ``driftwatch.web`` entry point, so ``monitor`` never imports
``dashboard``.

Building the Dash app (:mod:`dashboard.dash_app`: importing Dash, Flask and Plotly, loading
the pages) costs about a second of CPU, so it is not part of a server's start-up (issue 17:
ready in 3 s): ``install`` only mounts a fallback that builds the app on the first dashboard
request, and puts that build on ``api.state.after_ready``, which ``driftwatch serve`` runs in
a thread once its port is open, so the first page a user opens finds it built.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from monitor.settings import Settings

if TYPE_CHECKING:
    from dash import Dash

API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json")
_lock = threading.Lock()
_app: Dash | None = None


def get_app(data_dir: Path | None = None) -> Dash:
    """The process's Dash app, built on first use."""
    global _app
    with _lock:
        if _app is None:
            from dashboard.dash_app import build

            _app = build(data_dir)
        return _app


class _Fallback:
    """ASGI app serving the dashboard (WSGI in a thread pool); the Dash app is built by the
    first request or by :meth:`build`, whichever comes first."""

    def __init__(self, data_dir: Path | None) -> None:
        self._data_dir = data_dir
        self._wsgi: Any = None
        self._lock = threading.Lock()

    def build(self) -> Any:
        """Build the Dash app (once) and the WSGI bridge to it; blocking."""
        with self._lock:
            if self._wsgi is None:
                from a2wsgi import WSGIMiddleware

                self._wsgi = WSGIMiddleware(get_app(self._data_dir).server, workers=8)
            return self._wsgi

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope.get("path", "").startswith(API_PREFIXES):
            # an unknown API path stays an API 404, not the dashboard's log-in redirect
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        # built off the event loop: API requests keep being answered meanwhile
        wsgi = self._wsgi or await run_in_threadpool(self.build)
        await wsgi(scope, receive, send)


def install(api: Any, settings: Settings) -> None:
    """Serve the dashboard for every path the API does not route (built on first use, or
    by ``api.state.after_ready``)."""
    fallback = _Fallback(settings.data_dir)
    api.router.default = fallback
    api.state.after_ready.append(fallback.build)


__all__ = ["get_app", "install"]
