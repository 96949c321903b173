"""One real server with the demo scenario and one headless Chromium for the session.

The demo (``monitor.demo_scenario``: three tenants, two models, a drift for ``globex``
followed by a drop in its conversion, model-version rollouts, labels three days late, the
default monitors, KPIs and alert rules run over all of it) is built once, in 14 days instead
of 60, into a temporary data folder, with its alert rules routed to a webhook receiver on
127.0.0.1 (``tests.alerts.receiver``) as ``make demo`` routes them to ``driftwatch demo
receiver``. Then the app ``driftwatch serve`` runs (``create_app``: API, dashboard, scheduler,
alert delivery loop) is served by uvicorn on 127.0.0.1 until the session ends. Chromium comes from Debian (``make test`` installs it); Playwright drives it
through ``executable_path``, no browser download.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor import demo_scenario
from monitor.composition import of
from monitor.demo_scenario import ScenarioSummary
from monitor.service import Services
from monitor.settings import Settings
from tests.alerts.receiver import Receiver, receiver
from tests.support import Live, free_port, live_server, shifted_clock

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = demo_scenario.DEMO_PASSWORD
DEMO_DAYS = 14  # the 60-day story in proportion: churn v2 from day 7, globex drifts from day 9
DEMO_SCALE = 0.8  # of the demo's traffic: the smallest tenant's weekend days are low traffic
# The demo is built at this fixed hour and the server's clock runs on from it, so what the
# tests see never depends on the calendar day (tests/monitor/test_demo_weekdays.py builds it
# at every weekday).
DEMO_NOW = datetime(2026, 11, 18, 14, 0, tzinfo=UTC)  # a Wednesday
# How long a test waits for a page or a server answer to be *ready* (never a limit on what a
# test asserts): the suite runs on a shared 2-core machine at load 10-20, where a page that
# takes a second alone can take a minute.
READY_MS = 120_000
READY_S = READY_MS / 1000
# True once Dash's store says no callback is loading and ``ready`` is visible (visibility
# included) on two polls in a row; the renderer keeps ``isLoading`` on ``window.store``.
SETTLED_JS = """(ready) => {
  const el = document.querySelector(ready);
  const store = window.store;
  const quiet = !!(store && !store.getState().isLoading && el
    && el.checkVisibility({visibilityProperty: true}));
  const was = window.__dwQuiet === true;
  window.__dwQuiet = quiet;
  return quiet && was;
}"""
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
    ids: dict[str, int]  # alert ids the tests act on
    api_key: str  # an admin API key
    summary: ScenarioSummary
    webhooks: Receiver  # where the demo's channel delivers (every request recorded)

    @property
    def url(self) -> str:
        return self.live.url

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )


def _firing(services: Services, tenant: str, column: str) -> int:
    for a in of(services).alerting.store.list_alerts(
        state="firing", tenant_id=tenant, model="churn"
    ):
        if a.labels.get("monitor") == "churn-feature-drift" and a.labels.get("column") == column:
            return int(a.id or 0)
    raise AssertionError(f"the demo should leave churn's {column} drift firing for {tenant}")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with ExitStack() as stack:
        yield from _site(tmp_path_factory, stack)


def _site(tmp_path_factory: pytest.TempPathFactory, stack: ExitStack) -> Iterator[Site]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("demo") / "data",
        port=free_port(),
        alert_allowed_hosts="127.0.0.1",
    )
    clock = shifted_clock(DEMO_NOW)
    hooks = stack.enter_context(receiver())
    services = Services.open(settings, clock)
    try:
        summary = demo_scenario.build(
            services,
            now=DEMO_NOW,
            days=DEMO_DAYS,
            scale=DEMO_SCALE,
            webhook_url=f"{hooks.url}/hook",
        )
        ids = {
            "globex_drift": _firing(services, "globex", "discount_rate"),
            "globex_drift2": _firing(services, "globex", "tenure_months"),
        }
        _info, key = services.metadata.create_api_key("dashboard-tests", "admin")
    finally:
        services.close()  # the server opens the data folder as `driftwatch serve` does
    with live_server(settings, clock) as live:
        _wait_for_the_outbox(live.services, clock)
        yield Site(live, ids, key, summary, hooks)


def _wait_for_the_outbox(services: Services, clock: Any) -> None:
    """Wait until the server's delivery worker has sent what the build left to notify: no
    delivery pending or being sent, and no group flush due within its group_wait. The worker
    starts after the port opens (``driftwatch serve`` does so too), so a test reading the
    receiver at once found nothing (the KPI alert's webhook test failed so on a quiet run)."""
    import time

    from monitor.composition import of

    store = of(services).alerting.store
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        counts = store.delivery_counts()
        due = store.next_due_at()
        idle = counts.get("pending", 0) + counts.get("sending", 0) == 0
        if idle and (due is None or (due - clock()).total_seconds() > 35):
            return
        time.sleep(0.2)
    raise AssertionError(f"the demo's outbox did not drain in {READY_S:.0f} s: {counts}, {due}")


def csrf_of(client: httpx.Client, path: str = "/login") -> str:
    """The CSRF token of ``client``'s session, read from a page's form as a browser would."""
    import re

    page = client.get(path).text
    found = re.search(r"name=.csrf_token. value=.([A-Za-z0-9_-]+).", page)
    assert found, page[:300]
    return found.group(1)


def login_client(site: Site, user: str) -> httpx.Client:
    """An HTTP client holding ``user``'s session cookie."""
    client = httpx.Client(base_url=site.url, timeout=30)
    data = {"username": user, "password": PASSWORD, "next": "/", "csrf_token": csrf_of(client)}
    r = client.post("/login", data=data)
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
    """A logged-in page that records console errors and the Dash callback responses."""

    def __init__(self, browser: Any, site: Site, user: str) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.context.set_default_timeout(READY_MS)  # Playwright's 30 s is short at load 15
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.callbacks: list[Any] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on(
            "response",
            lambda r: self.callbacks.append(r) if "/_dash-update-component" in r.url else None,
        )
        self.page.goto(f"{site.url}/login")
        self.page.fill("#login-username", user)
        self.page.fill("#login-password", PASSWORD)
        self.page.click("#login-submit")
        # "/" for most roles; the executive lands on the business overview (/kpis)
        self.page.wait_for_url(lambda url: "/login" not in url)

    def open(self, path: str, ready: str) -> Any:
        resp = self.page.goto(f"{self.site.url}{path}")
        self.page.wait_for_selector(ready, timeout=READY_MS)
        self.settle(ready)
        return resp

    def settle(self, ready: str) -> None:
        """Wait until Dash has no callback pending and ``ready`` is visible, twice 100 ms
        apart. A page's later callbacks (its charts, a markup block's writer) can start after
        ``ready`` appears; while one runs over ``dcc.Loading``'s delay the content is hidden
        (``visibility: hidden``) and its ``innerText`` is '' (CI read ['', ''] so, at load ~8)."""
        self.page.wait_for_function(SETTLED_JS, arg=ready, polling=100, timeout=READY_MS)

    def callback_bodies(self) -> list[str]:
        """Bodies of the callback responses since the last call (read before navigating on:
        the browser drops them with the page)."""
        out = [r.text() for r in self.callbacks]
        self.callbacks.clear()
        return out

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
