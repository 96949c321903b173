"""``/docs`` works offline (and ``/redoc`` renders offline): Swagger UI's and ReDoc's files come from this
server (``fastapi-offline``), no request leaves it. Control: FastAPI's default page (what
``/docs`` served before) loads them from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from monitor.settings import Settings
from tests.dashboard.conftest import READY_MS
from tests.support import Live, free_port, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("docs") / "data",
        port=free_port(),
        alert_worker=False,
        scheduler_enabled=False,
    )
    with live_server(settings) as live:
        yield live


def _foreign(urls: list[str], origin: str) -> list[str]:
    return [u for u in urls if not (u.startswith(origin) or u.startswith(("data:", "blob:")))]


def test_docs_load_with_no_external_request(server: Live, browser: Any) -> None:
    page = browser.new_page()
    page.set_default_timeout(READY_MS)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    try:
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=READY_MS)
        assert "Driftwatch" in page.inner_text(".swagger-ui .info .title")
        # the operations of the API are listed (the OpenAPI document was read and rendered)
        page.wait_for_selector(".opblock", timeout=READY_MS)
        assert page.locator(".opblock").count() > 10
        assert _foreign(requests, server.url) == [] and failed == []
        assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in requests)
        assert any(u.endswith("/api/v1/openapi.json") for u in requests)
        requests.clear()
        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("h1:has-text('Driftwatch')", timeout=READY_MS)
        # ReDoc renders from local files too; only its "powered by" logo is an image from
        # its CDN, which offline is a missing picture, not a blank page
        scripts = [u for u in requests if u.endswith(".js")]
        assert scripts and _foreign(scripts, server.url) == []
    finally:
        page.close()


def test_the_previous_docs_page_needed_a_cdn() -> None:
    default = get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title="x").body.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', default)
    assert _foreign(assets, "http://127.0.0.1") != []  # the check above would catch it
