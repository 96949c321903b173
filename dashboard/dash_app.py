"""The Dash app (Flask underneath): pages, layout, log-in and the session cookie.

Importing this module imports Dash, Flask and Plotly (about a second of CPU), so only
:func:`dashboard.app.get_app` imports it: on the first dashboard request, or in a thread once
``driftwatch serve``'s port is open.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import dash
from dash import Dash
from dash import _callback_context as dash_context

from dashboard import auth
from dashboard.components import shell

log = logging.getLogger("driftwatch.dashboard")

HERE = Path(__file__).resolve().parent


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


def build(data_dir: Path | None) -> Dash:
    """A new Dash app with the pages of ``dashboard/pages`` (one per process: see
    :mod:`dashboard.app`)."""
    # Dash sets its callback-context variable once, in the context of the thread that imports
    # dash, and page registration reads it: a build on another thread (the first request's,
    # or serve's after-ready thread) sets it in its own context
    if dash_context.context_value.get(None) is None:
        dash_context.context_value.set({})
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
