"""Log-in (Flask-Login), and the server-side access checks every request goes through.

Three layers, so that hiding a link is never what protects data:

1. :func:`check_request` runs before every Flask request: anonymous users get the log-in page
   (or 401 for Dash's JSON endpoints); a page URL the role may not open is answered 403; a
   POST to ``/_dash-update-component`` is refused (403) unless the role may open the page
   that owns the callback's outputs (component ids are prefixed with the page name) or, for the
   page router, the page of the requested path.
2. :func:`guarded` wraps every page callback: it checks the role again and hands the callback
   the :class:`~monitor.accounts.Account`, whose tenant scope the read models filter by.
3. ``monitor.queries`` filters every row by that scope.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import flask
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from monitor.accounts import Account, Accounts, can_open
from monitor.service import Services

log = logging.getLogger("driftwatch.dashboard")

F = TypeVar("F", bound=Callable[..., Any])

# Page of a URL path: the first matching pattern wins.
PAGE_PATHS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/$"), "overview"),
    (re.compile(r"^/models/[^/]+/features/[^/]+/?$"), "feature"),
    (re.compile(r"^/models/[^/]+/?$"), "model"),
    (re.compile(r"^/alerts/?$"), "alerts"),
    (re.compile(r"^/alerts/[^/]+/?$"), "alert"),
    (re.compile(r"^/kpis(/[^/]+)?/?$"), "kpis"),
    (re.compile(r"^/monitors/?$"), "monitors"),
]
PUBLIC_PREFIXES = ("/login", "/_dash-component-suites/", "/assets/", "/_favicon.ico")
# Component id prefixes of the app shell (not a page): any logged-in user.
SHELL_PREFIXES = ("shell",)
ROUTER_IDS = {"_pages_location", "_pages_content", "_pages_store", "_pages_dummy"}


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        return str(self.account.id)


def services() -> Services:
    """The services of the server this request came through."""
    scope = flask.request.environ.get("asgi.scope") or {}
    app = scope.get("app")
    svc = getattr(getattr(app, "state", None), "services", None)
    if svc is None:
        svc = flask.current_app.config.get("DRIFTWATCH_SERVICES")
    if svc is None:
        raise RuntimeError("no Driftwatch services attached to this request")
    return svc  # type: ignore[no-any-return]


def account() -> Account | None:
    user = current_user
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.account  # type: ignore[no-any-return]


def page_of_path(path: str) -> str | None:
    for pattern, page in PAGE_PATHS:
        if pattern.match(path):
            return page
    return None


def page_of_component(component_id: Any) -> str | None:
    """The page owning a component id (``"model-heatmap"`` → ``"model"``)."""
    if isinstance(component_id, dict):
        component_id = component_id.get("type", "")
    return str(component_id).split("-", 1)[0] or None


def _outputs(body: dict[str, Any]) -> list[str]:
    out = body.get("outputs")
    items = out if isinstance(out, list) else [out] if out else []
    ids = []
    for o in items:
        if isinstance(o, dict) and "id" in o:
            ids.append(o["id"])
    if not ids and isinstance(body.get("output"), str):
        # "..id.prop...id2.prop2.." or "id.prop"
        ids = [p.rsplit(".", 1)[0] for p in body["output"].strip(".").split("...") if p]
    return ids


def callback_allowed(acct: Account, body: dict[str, Any]) -> bool:
    """May ``acct`` run the callback this ``/_dash-update-component`` body asks for?"""
    ids = _outputs(body)
    if not ids:
        return False
    for cid in ids:
        if isinstance(cid, str) and cid in ROUTER_IDS:
            # The page router renders the layout of the requested path: check that page.
            path = "/"
            for inp in body.get("inputs", []) or []:
                if (
                    isinstance(inp, dict)
                    and inp.get("id") == "_pages_location"
                    and inp.get("property") == "pathname"
                    and isinstance(inp.get("value"), str)
                ):
                    path = inp["value"]
            page = page_of_path(urlsplit(path).path)
            if page is not None and not acct.can_open(page):
                return False
            continue
        page = page_of_component(cid)
        if page in SHELL_PREFIXES:
            continue
        if page is None or not acct.can_open(page):
            return False
    return True


def check_request() -> flask.Response | None:
    """Flask ``before_request``: authentication and page/callback authorization."""
    path = flask.request.path
    if path.startswith(PUBLIC_PREFIXES):
        return None
    acct = account()
    dash_api = path.startswith("/_dash-") or path.startswith("/_reload-hash")
    if acct is None:
        if dash_api:
            return flask.Response("log in first", status=401)
        target = flask.request.full_path.rstrip("?")
        return flask.redirect(f"/login?next={quote(target, safe='')}")
    if path == "/_dash-update-component":
        try:
            body = json.loads(flask.request.get_data(cache=True) or b"{}")
        except ValueError:
            return flask.Response("bad callback body", status=400)
        if not isinstance(body, dict) or not callback_allowed(acct, body):
            log.warning("refused callback %s for %s (%s)", _outputs(body), acct.username, acct.role)
            return flask.Response("forbidden", status=403)
        return None
    if dash_api:
        return None
    page = page_of_path(path)
    if page is not None and not acct.can_open(page):
        return flask.Response(
            _page_html(
                "Not allowed",
                f"<p>Your role <b>{html.escape(acct.role)}</b> cannot open this page.</p>"
                '<p><a href="/">Back to the overview</a></p>',
            ),
            status=403,
            mimetype="text/html",
        )
    return None


def guarded(page: str) -> Callable[[F], F]:
    """Decorate a page callback: refuse (403) unless the user may open ``page``; the wrapped
    function receives the account as keyword ``account``."""

    def deco(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            acct = account()
            if acct is None or not can_open(acct.role, page):
                flask.abort(403)
            return func(*args, account=acct, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


# ------------------------------------------------------------------------------ log-in views
def _page_html(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} · Driftwatch</title>"
        "<link rel='stylesheet' href='/assets/style.css'></head>"
        f"<body class='login-body'><main class='login-card'><h1>Driftwatch</h1>{body}</main>"
        "</body></html>"
    )


def _safe_next(value: str | None) -> str:
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


def login_view() -> flask.Response | str:
    error = ""
    nxt = _safe_next(flask.request.values.get("next"))
    if flask.request.method == "POST":
        username = flask.request.form.get("username", "")
        password = flask.request.form.get("password", "")
        acct = Accounts(services().metadata).authenticate(username, password)
        if acct is not None:
            flask.session.clear()
            login_user(User(acct))
            return flask.redirect(nxt)
        error = "<p class='login-error' role='alert'>Wrong username or password.</p>"
    form = (
        f"{error}<form method='post' action='/login'>"
        f"<input type='hidden' name='next' value='{html.escape(nxt)}'>"
        "<label>Username <input id='login-username' name='username' autocomplete='username' "
        "autofocus required></label>"
        "<label>Password <input id='login-password' name='password' type='password' "
        "autocomplete='current-password' required></label>"
        "<button id='login-submit' type='submit'>Log in</button></form>"
        "<p class='muted'>No account? An admin creates one with "
        "<code>driftwatch users create NAME --role engineer</code>.</p>"
    )
    return _page_html("Log in", form)


def logout_view() -> flask.Response:
    logout_user()
    flask.session.clear()
    return flask.redirect("/login")


def init(server: flask.Flask) -> None:
    manager = LoginManager()
    manager.init_app(server)

    @manager.user_loader  # type: ignore[untyped-decorator]
    def _load(user_id: str) -> User | None:
        try:
            acct = Accounts(services().metadata).load(int(user_id))
        except ValueError:
            return None
        return None if acct is None else User(acct)

    server.add_url_rule("/login", "login", login_view, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout_view, methods=["GET", "POST"])
    server.before_request(check_request)
