"""Every page on the demo scenario (the real runner, KPI job and alert engine, 14 days), in
Chromium: renders without console errors, shows its data; screenshots ``demo-*.png``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from monitor import demo_scenario
from monitor.queries import alert_store
from monitor.settings import Settings
from tests.dashboard import conftest
from tests.dashboard.conftest import Site, Tab
from tests.support import free_port, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("demo") / "data"
    settings = Settings(data_dir=data, port=free_port(), alert_worker=False)
    with live_server(settings) as live:
        demo_scenario.build(live.services, days=14, scale=0.6, webhook_url=None)
        firing = alert_store(live.services).list_alerts(state="firing", limit=1)
        yield Site(live, {"firing": int(firing[0].id or 0) if firing else 0}, "")


def test_demo_pages(demo_site: Site, browser: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "PASSWORD", demo_scenario.DEMO_PASSWORD)
    tab = Tab(browser, demo_site, "engineer")
    try:
        assert demo_site.ids["firing"], "the demo should leave alerts firing"
        for name, path, ready in [
            ("overview", "/", "#overview-grid"),
            ("model", "/models/churn?tenant=globex&range=7d", "#model-heatmap .main-svg"),
            ("model-basket", "/models/basket_value", "#model-performance .main-svg"),
            (
                "feature",
                "/models/churn/features/discount_rate?tenant=globex",
                "#feature-distribution .main-svg",
            ),
            ("alerts", "/alerts", "#alerts-table"),
            ("alert", f"/alerts/{demo_site.ids['firing']}", "#alert-signal .main-svg"),
            ("kpis", "/kpis", "#kpis-portfolio"),
            ("kpis-tenant", "/kpis/globex", "#kpis-t-content .main-svg"),
            ("monitors", "/monitors", "#monitors-monitors"),
        ]:
            tab.errors.clear()
            resp = tab.open(path, ready)
            assert resp.status == 200
            tab.page.wait_for_load_state("networkidle")
            assert not tab.page.locator(".error").count(), tab.page.locator(
                ".error"
            ).all_inner_texts()
            tab.shot(f"demo-{name}")
            assert [e for e in tab.errors if "favicon" not in e] == [], (path, tab.errors)
        text = tab.page.inner_text("#monitors-monitors")
        assert "churn-feature-drift" in text and "basket_value-performance" in text
    finally:
        tab.close()
