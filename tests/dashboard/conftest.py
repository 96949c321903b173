"""One live server with the dashboard data set and one headless Chromium for the module.

Chromium comes from Debian (``make test`` installs it); Playwright drives it through
``executable_path``, no browser download.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.accounts import Accounts
from monitor.settings import Settings
from tests.dashboard.seed import seed
from tests.support import Live, free_port, live_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "dashboard-test-pw"
USERS = {
    "admin": ("admin", None),
    "eng": ("engineer", None),
    "exec": ("executive", None),
    "oncall": ("oncall", None),
    "acme-eng": ("engineer", ["acme"]),
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Site:
    live: Live
    ids: dict[str, int]
    api_key: str

    @property
    def url(self) -> str:
        return self.live.url


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("dashboard")
    settings = Settings(data_dir=data / "data", port=free_port(), alert_worker=False)
    with live_server(settings) as live:
        ids = seed(live.services)
        accounts = Accounts(live.services.metadata)
        for name, (role, tenants) in USERS.items():
            accounts.create(name, PASSWORD, role, tenants)
        _info, key = live.services.metadata.create_api_key("dashboard-tests", "admin")
        yield Site(live, ids, key)


def login_client(site: Site, user: str) -> httpx.Client:
    """An HTTP client holding ``user``'s session cookie."""
    client = httpx.Client(base_url=site.url, timeout=30)
    r = client.post("/login", data={"username": user, "password": PASSWORD, "next": "/"})
    assert r.status_code == 302 and r.headers["location"] == "/", r.text[:300]
    return client


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Tab:
    """A logged-in page that records console errors and failed responses."""

    def __init__(self, browser: Any, site: Site, user: str) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.goto(f"{site.url}/login")
        self.page.fill("#login-username", user)
        self.page.fill("#login-password", PASSWORD)
        self.page.click("#login-submit")
        self.page.wait_for_url(f"{site.url}/")

    def open(self, path: str, ready: str) -> Any:
        resp = self.page.goto(f"{self.site.url}{path}")
        self.page.wait_for_selector(ready, timeout=20_000)
        return resp

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="session")
def tabs(browser: Any, site: Site) -> Iterator[dict[str, Tab]]:
    opened: dict[str, Tab] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, user: str) -> Tab:
            opened[user] = self[user] = Tab(browser, site, user)
            return opened[user]

    yield Lazy()
    for tab in opened.values():
        tab.close()
