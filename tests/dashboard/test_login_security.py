"""Dashboard log-in hardening (issue 12, item 5), against a real server on 127.0.0.1:
throttling per user and per address (429 + Retry-After, audited), server-side session
revocation on logout and on password change, POST-only logout with a CSRF token, the Secure
flag behind https, a session expiry, a strict same-origin ``next``, CSRF on the log-in form."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.accounts import Accounts, LoginThrottle
from tests.api.conftest import make_settings
from tests.dashboard.conftest import csrf_of
from tests.support import Live, live_server

PASSWORD = "correct horse battery"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Live]:
    """A server of its own per test (lockouts and sessions change it), not the demo ``site``."""
    settings = make_settings(tmp_path, scheduler_enabled=False, alert_worker=False)
    with live_server(settings) as live:
        accounts = Accounts(live.services.metadata)
        for name in ("alice", "bob"):
            accounts.create(name, PASSWORD, "engineer")
        yield live


def browser(live: Live) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=30)


def login(c: httpx.Client, user: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
    data = {"username": user, "password": password, "csrf_token": csrf_of(c), **extra}
    return c.post("/login", data=data)


def logged_in(c: httpx.Client) -> bool:
    r = c.get("/monitors")
    return r.status_code == 200 and "/login" not in r.headers.get("location", "")


def layout_csrf(c: httpx.Client) -> str:
    """The token in the shell's log-out form, as the browser receives the layout."""

    def walk(node: object) -> str | None:
        if isinstance(node, dict):
            props = node.get("props", {})
            if isinstance(props, dict) and props.get("id") == "shell-csrf":
                return str(props["value"])
            return next((v for v in map(walk, node.values()) if v), None)
        if isinstance(node, list):
            return next((v for v in map(walk, node) if v), None)
        return None

    token = walk(c.get("/_dash-layout").json())
    assert token
    return token


def audit(live: Live, action: str) -> list:
    return [e for e in live.services.metadata.list_audit(limit=1000) if e.action == action]


def test_wrong_passwords_lock_the_user_even_for_the_right_one(server: Live) -> None:
    with browser(server) as c:
        answers = [login(c, "alice", "wrong password") for _ in range(5)]
        assert [r.status_code for r in answers] == [401, 401, 401, 401, 429]
        assert int(answers[-1].headers["Retry-After"]) > 0
        r = login(c, "alice")  # the right password does not get in while locked
        assert r.status_code == 429 and "Too many failed log-ins" in r.text
        assert 0 < int(r.headers["Retry-After"]) <= 300
        assert not logged_in(c)
        # another user from the same address is not locked by alice's failures
        assert login(c, "bob").status_code == 302
    failed = audit(server, "user.login_failed")
    assert len(failed) == 5 and failed[0].detail["locked"] is True
    assert failed[0].actor == "ip:127.0.0.1" and failed[0].object_id == "alice"
    assert audit(server, "user.login_throttled")[0].object_id == "alice"
    assert audit(server, "user.login")[0].object_id == "bob"


def test_many_usernames_from_one_address_lock_the_address(server: Live) -> None:
    with browser(server) as c:
        codes = [login(c, f"guess{i}", "wrong password").status_code for i in range(20)]
        assert codes[:19] == [401] * 19 and codes[19] == 429
        r = login(c, "bob")
        assert r.status_code == 429 and "Retry-After" in r.headers


def test_throttle_releases_after_the_lockout() -> None:
    now = [1000.0]
    t = LoginThrottle(max_per_user=3, max_per_address=100, lockout=60, clock=lambda: now[0])
    assert [t.failed("eve", "1.2.3.4") for _ in range(3)] == [False, False, True]
    assert t.retry_after("EVE", "5.6.7.8") == 60  # usernames compare case-insensitively
    now[0] += 59.5
    assert t.retry_after("eve", "1.2.3.4") == 1
    now[0] += 1
    assert t.retry_after("eve", "1.2.3.4") == 0
    t.failed("eve", "1.2.3.4")
    t.succeeded("eve")  # a good log-in clears the user's count
    assert [t.failed("eve", "1.2.3.4") for _ in range(2)] == [False, False]


def test_logout_revokes_the_session_server_side(server: Live) -> None:
    with browser(server) as a, browser(server) as stolen:
        assert login(a, "alice").status_code == 302
        stolen.cookies = httpx.Cookies(a.cookies)  # a copy of the cookie, kept by an attacker
        assert logged_in(a) and logged_in(stolen)
        assert a.get("/logout").status_code == 405  # GET cannot log out (nor be forged by <img>)
        assert a.post("/logout", data={}).status_code == 403  # no CSRF token
        assert logged_in(stolen)
        token = layout_csrf(a)
        r = a.post("/logout", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert not logged_in(stolen)  # the copied cookie died with the session
        assert not logged_in(a)
    assert audit(server, "user.logout")[0].object_id == "alice"


def test_password_change_revokes_open_sessions(server: Live) -> None:
    with browser(server) as c:
        assert login(c, "alice").status_code == 302 and logged_in(c)
        Accounts(server.services.metadata).set_password("alice", "a new password!")
        assert not logged_in(c)
        assert login(c, "alice").status_code == 401
        assert login(c, "alice", "a new password!").status_code == 302 and logged_in(c)


def _session_cookie(r: httpx.Response) -> str:
    (cookie,) = [v for k, v in r.headers.multi_items() if k == "set-cookie" and "session" in v]
    return cookie


def test_cookie_is_secure_behind_https_and_expires(tmp_path: Path) -> None:
    for external, secure in (("https://dw.example.com", True), ("", False)):
        settings = make_settings(
            tmp_path / (external[:5] or "plain"),
            scheduler_enabled=False,
            alert_worker=False,
            external_url=external,
        )
        with live_server(settings) as live:
            Accounts(live.services.metadata).create("alice", PASSWORD, "engineer")
            with browser(live) as c:
                # a Secure cookie is not sent back over http by the client: carry it by hand
                first = c.get("/login")
                jar = _session_cookie(first).split(";", 1)[0]
                token = re.search(r"name=.csrf_token. value=.([\w-]+).", first.text)
                assert token
                data = {"username": "alice", "password": PASSWORD, "csrf_token": token[1]}
                r = c.post("/login", data=data, headers={"Cookie": jar})
                assert r.status_code == 302, r.text[:300]
                cookie = _session_cookie(r).lower()
                assert ("; secure" in cookie) is secure, cookie
                assert "httponly" in cookie and "samesite=lax" in cookie
                assert "expires=" in cookie  # a persistent cookie with an end


def test_session_expires_on_the_server(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, scheduler_enabled=False, alert_worker=False, session_hours=1 / 3600
    )
    with live_server(settings) as live:
        Accounts(live.services.metadata).create("alice", PASSWORD, "engineer")
        with browser(live) as c:
            assert login(c, "alice").status_code == 302
            time.sleep(2.5)  # past the 1 s lifetime, however busy the machine
            assert not logged_in(c)


@pytest.mark.parametrize(
    "nxt",
    [
        "//evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%0a",  # kept: a harmless path once encoded (asserted below)
    ],
)
def test_next_must_stay_on_this_site(server: Live, nxt: str) -> None:
    with browser(server) as c:
        r = login(c, "alice", next=nxt)
    assert r.status_code == 302
    location = r.headers["location"]
    if nxt == "/%0a":
        assert location == "/%0a"
    else:
        assert location == "/", (nxt, location)


def test_next_keeps_a_path_with_its_query(server: Live) -> None:
    with browser(server) as c:
        r = login(c, "alice", next="/models/churn?tenant=acme")
    assert r.headers["location"] == "/models/churn?tenant=acme"


def test_login_form_refuses_cross_site_posts(server: Live) -> None:
    with browser(server) as c:
        token = csrf_of(c)
        data = {"username": "alice", "password": PASSWORD}
        assert c.post("/login", data=data).status_code == 403  # no token
        assert c.post("/login", data={**data, "csrf_token": "forged"}).status_code == 403
        evil = {"Origin": "http://evil.example"}
        r = c.post("/login", data={**data, "csrf_token": token}, headers=evil)
        assert r.status_code == 403
        ref = {"Referer": "http://evil.example/page"}
        assert c.post("/login", data={**data, "csrf_token": token}, headers=ref).status_code == 403
        assert not logged_in(c)
        own = {"Origin": server.url}
        r = c.post("/login", data={**data, "csrf_token": token}, headers=own)
        assert r.status_code == 302 and logged_in(c)
    # a foreign page cannot get a token for the victim's browser: a fresh browser has none
    with browser(server) as victim:
        r = victim.post("/login", data={**data, "csrf_token": token}, headers=evil)
        assert r.status_code == 403 and not logged_in(victim)
