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
import hmac
import html
import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import flask
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from itsdangerous import BadSignature

from monitor.accounts import PAGE_ROLES, Account, Accounts, LoginThrottle, can_open
from monitor.composition import of
from monitor.service import Services

if TYPE_CHECKING:  # flask.redirect answers werkzeug's Response, flask.Response's base
    from werkzeug.wrappers import Response as BaseResponse

log = logging.getLogger("driftwatch.dashboard")

F = TypeVar("F", bound=Callable[..., Any])

# Where "/" takes a role that may not open the model overview (the executive).
LANDING_FALLBACK = "/kpis"
PUBLIC_PREFIXES = ("/login", "/_dash-component-suites/", "/assets/", "/_favicon.ico")
# Component id prefixes of the app shell (not a page): any logged-in user.
SHELL_PREFIXES = ("shell",)
ROUTER_IDS = {"_pages_location", "_pages_content", "_pages_store", "_pages_dummy"}


class User(UserMixin):
    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        # the session version makes logout and password changes void the cookie server-side
        return f"{self.account.id}:{self.account.session_version}"


def services() -> Services:
    """The services of the server this request came through."""
    scope = flask.request.environ.get("asgi.scope") or {}
    app = scope.get("app")
    svc = getattr(getattr(app, "state", None), "services", None)
    if svc is None:
        svc = flask.current_app.config.get("DRIFTWATCH_SERVICES")
    if svc is None:
        raise RuntimeError("no Driftwatch services attached to this request")
    return svc


def account() -> Account | None:
    user = current_user
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.account


# Dash page modules whose page name (the PAGE_ROLES key) differs from the module name.
MODULE_PAGES = {"kpi_tenant": "kpis"}
NOT_FOUND_MODULE = "not_found_404"
UNKNOWN = "?"  # a path no rule can place: refused to everyone


def page_of_path(path: str) -> str | None:
    """The page Dash's router renders for ``path`` (None: the "not found" page).

    Resolved exactly as the router does (``strip_relative_path`` then the page registry), so
    ``//models/churn``, ``/models/churn/`` or ``/models//x`` cannot reach a layout by a
    spelling that a separate pattern list would read differently. :data:`UNKNOWN` when the
    router would fail or pick a module we do not know.
    """
    from dash import _pages, get_app  # the app this process serves (dashboard.app builds it)

    try:
        # the router's own function: any rule of ours could disagree with it
        page, _ = _pages._path_to_page(get_app().strip_relative_path(path))
    except Exception:
        return UNKNOWN
    module = str(page.get("module", "")).rsplit(".", 1)[-1] if page else NOT_FOUND_MODULE
    if module == NOT_FOUND_MODULE:
        return None
    name = MODULE_PAGES.get(module, module)
    return name if name in PAGE_ROLES else UNKNOWN


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
            page = page_of_path(path if path.startswith("/") else "/" + path)
            if page is not None and not acct.can_open(page):
                return False
            continue
        page = page_of_component(cid)
        if page in SHELL_PREFIXES:
            continue
        if page is None or not acct.can_open(page):
            return False
    return True


def check_request() -> BaseResponse | None:
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
    landing = page_of_path(LANDING_FALLBACK) or ""
    if page == "overview" and not acct.can_open(page) and acct.can_open(landing):
        # the executive's landing page is the business overview
        return flask.redirect(LANDING_FALLBACK)
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
    """``value`` when it is a path on this site, else ``/``.

    Browsers drop tabs and newlines from URLs and read ``\\`` as ``/``, so ``/\t/evil`` and
    ``/\\evil`` are protocol-relative links to another host: any control character or
    backslash, a leading ``//``, or a scheme or host after parsing refuses the value."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    return value


# ------------------------------------------------------------------------------ CSRF, origin
CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """This session's CSRF token (made on first use): forms that change state carry it."""
    token = flask.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        flask.session["csrf"] = token
    return token


def _csrf_ok() -> bool:
    sent = flask.request.form.get(CSRF_FIELD, "")
    token = flask.session.get("csrf", "")
    return bool(token) and isinstance(token, str) and hmac.compare_digest(sent, token)


def _same_origin() -> bool:
    """The POST came from a page of this site: ``Origin`` (else ``Referer``) names this host
    (or the configured external URL's). Neither header (old clients): the token decides."""
    origin = flask.request.headers.get("Origin")
    source = origin or flask.request.headers.get("Referer")
    if not source:
        return True
    if source == "null":  # sandboxed frames, file: pages, some redirects
        return False
    parts = urlsplit(source)
    allowed = {flask.request.host}
    external = services().settings.external_url
    if external:
        allowed.add(urlsplit(external).netloc)
    return parts.scheme in ("http", "https") and parts.netloc in allowed


def _refused(message: str, status: int) -> flask.Response:
    return flask.Response(
        _page_html(
            "Log in",
            f"<p class='login-error' role='alert'>{html.escape(message)}</p>"
            "<p><a href='/login'>Back to the log-in page</a></p>",
        ),
        status=status,
        mimetype="text/html",
    )


# ------------------------------------------------------------------------------ throttling
def throttle() -> LoginThrottle:
    """The log-in throttle of this request's server (one per process, built by
    :mod:`monitor.composition`)."""
    return of(services()).login_throttle


def _audit(action: str, username: str, detail: dict[str, Any]) -> None:
    try:
        services().metadata.audit(
            f"ip:{flask.request.remote_addr or 'unknown'}", action, "user", username[:64], detail
        )
    except Exception:  # the answer does not depend on the audit log
        log.exception("could not audit %s", action)


def _session_hours() -> float:
    return float(services().settings.session_hours)


def login_view() -> BaseResponse | str:
    error = ""
    status = 200
    nxt = _safe_next(flask.request.values.get("next"))
    if flask.request.method == "POST":
        if not _same_origin() or not _csrf_ok():
            # a form posted from another site (login CSRF), or a stale page
            return _refused(
                "This log-in form expired or came from another site. Reload the page and "
                "log in again.",
                403,
            )
        username = flask.request.form.get("username", "")[:256]
        password = flask.request.form.get("password", "")[:1024]
        address = flask.request.remote_addr or "unknown"
        guard = throttle()
        wait = guard.retry_after(username, address)
        if wait > 0:
            _audit("user.login_throttled", username, {"address": address, "retry_after": wait})
            answer = _refused(f"Too many failed log-ins. Try again in {wait} seconds.", 429)
            answer.headers["Retry-After"] = str(wait)
            return answer
        accounts = Accounts(services().metadata)
        acct = accounts.authenticate(username, password)
        if acct is not None:
            guard.succeeded(username)
            flask.session.clear()
            login_user(User(acct))
            flask.session.permanent = True
            flask.session["login_at"] = time.time()
            csrf_token()
            _audit("user.login", acct.username, {"address": address})
            return flask.redirect(nxt)
        locked = guard.failed(username, address)
        _audit("user.login_failed", username, {"address": address, "locked": locked})
        if locked:
            wait = guard.retry_after(username, address)
            answer = _refused(f"Too many failed log-ins. Try again in {wait} seconds.", 429)
            answer.headers["Retry-After"] = str(wait)
            return answer
        error = "<p class='login-error' role='alert'>Wrong username or password.</p>"
        status = 401
    form = (
        f"{error}<form method='post' action='/login'>"
        f"<input type='hidden' name='next' value='{html.escape(nxt)}'>"
        f"<input type='hidden' name='{CSRF_FIELD}' value='{html.escape(csrf_token())}'>"
        "<label>Username <input id='login-username' name='username' autocomplete='username' "
        "autofocus required></label>"
        "<label>Password <input id='login-password' name='password' type='password' "
        "autocomplete='current-password' required></label>"
        "<button id='login-submit' type='submit'>Log in</button></form>"
        "<p class='muted'>No account? An admin creates one with "
        "<code>driftwatch users create NAME --role engineer</code>.</p>"
    )
    return flask.Response(_page_html("Log in", form), status=status, mimetype="text/html")


def logout_view() -> BaseResponse:
    """POST only, with the session's CSRF token: ends every session of the user server-side
    (the cookie, even if kept, no longer loads a user)."""
    if flask.request.method != "POST":  # else Dash's catch-all page route would answer
        return flask.Response("log out with POST", status=405, headers={"Allow": "POST"})
    if not _same_origin() or not _csrf_ok():
        return _refused("Log-out must come from the dashboard's own button.", 403)
    acct = account()
    if acct is not None:
        Accounts(services().metadata).logout(acct)
    logout_user()
    flask.session.clear()
    return flask.redirect("/login", code=303)


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the ``Secure`` flag and the lifetime taken from
    the settings of the server the request came through (several servers may share the Dash
    app in one process)."""

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        try:
            external = str(services().settings.external_url)
        except RuntimeError:
            return bool(app.config["SESSION_COOKIE_SECURE"])
        return external.lower().startswith("https://")

    def get_expiration_time(self, app: flask.Flask, session: Any) -> Any:
        if session.permanent:
            return datetime.now(UTC) + timedelta(hours=_session_hours())
        return None

    def open_session(self, app: flask.Flask, request: flask.Request) -> Any:
        s = self.get_signing_serializer(app)
        if s is None:
            return None
        val = request.cookies.get(self.get_cookie_name(app))
        if not val:
            return self.session_class()
        try:
            max_age = int(_session_hours() * 3600)
        except RuntimeError:
            max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = s.loads(val, max_age=max_age)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        login_at = session.get("login_at")
        if isinstance(login_at, int | float) and time.time() - login_at > max_age:
            return self.session_class()  # past its lifetime however often it was refreshed
        return session


def init(server: flask.Flask) -> None:
    server.session_interface = _SessionInterface()
    manager = LoginManager()
    manager.init_app(server)

    @manager.user_loader
    def _load(user_id: str) -> User | None:
        # "<id>:<session version>"; a cookie from before logout, a password change or this
        # format names no current session
        uid, sep, version = user_id.partition(":")
        if not sep or not (uid.isascii() and uid.isdigit()):
            return None
        if not (version.isascii() and version.isdigit()):
            return None
        acct = Accounts(services().metadata).load(int(uid), int(version))
        return None if acct is None else User(acct)

    server.add_url_rule("/login", "login", login_view, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout_view, methods=["GET", "POST"])
    server.before_request(check_request)
