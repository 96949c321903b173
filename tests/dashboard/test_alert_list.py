"""The alert list at scale, in headless Chromium: 10,000 alerts in the store (no demo), one
page of 50 at a time, sorted and filtered on the server.

What a person concludes is checked against the store itself: the count in "Showing 1–50 of
N", the rows of a tenant, the newest first breaching window at the top when sorted by "since".
The list must appear within a second (p95 of 10 loads); that budget is scaled by the machine's
load (1 s on an idle machine, load ÷ cores times that on a busy one), so a shared CI machine
does not fail it while the previous list (500 rows of Dash components: minutes) still would.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor import demo
from monitor.accounts import Accounts
from monitor.composition import of
from monitor.service import Caller, Services
from monitor.settings import Settings
from storage.types import ALL
from tests.dashboard.conftest import ARTIFACTS, PASSWORD, READY_MS
from tests.dashboard.many_alerts import add_alerts
from tests.support import Live, free_port, live_server, shifted_clock

pytestmark = pytest.mark.slow

N = 10_000
NOW = datetime(2026, 11, 18, 14, tzinfo=UTC)
SCOPED = ("t7", "tenant007")  # a user scoped to one tenant


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("crowd") / "data",
        port=free_port(),
        alert_worker=False,
        scheduler_enabled=False,
    )
    clock = shifted_clock(NOW)  # the alerts' ages read the same on any calendar day
    services = Services.open(settings, clock)
    try:
        services.register_model(demo.CHURN_MODEL, Caller.local())  # the overview's grid row
        assert add_alerts(services, N, NOW) == N
        users = Accounts(services.metadata)
        users.create("oncall", PASSWORD, "oncall", None, actor="test")
        users.create(SCOPED[0], PASSWORD, "engineer", [SCOPED[1]], actor="test")
    finally:
        services.close()
    with live_server(settings, clock) as live:
        yield live


def _open(browser: Any, live: Live, user: str = "oncall", **context: Any) -> Any:
    ctx = browser.new_context(**({"viewport": {"width": 1360, "height": 900}} | context))
    ctx.set_default_timeout(READY_MS)
    page = ctx.new_page()
    page.goto(f"{live.url}/login")
    page.fill("#login-username", user)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{live.url}/")
    return page


def _column(page: Any, label: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#alerts-table tbody td[data-label='{label}']", "els => els.map(e => e.innerText.trim())"
    )


def _budget() -> float:
    """1 s on an idle machine; scaled by runnable processes per core on a busy one."""
    load = max(os.getloadavg()[0], 0.0) / (os.cpu_count() or 1)
    return max(1.0, load)


def test_ten_thousand_alerts_appear_a_page_at_a_time(browser: Any, crowd: Live) -> None:
    store = of(crowd.services).alerting.store
    assert sum(store.state_counts().values()) == N
    page = _open(browser, crowd)
    try:
        url = f"{crowd.url}/alerts?state=all"
        ready = "#alerts-table tbody tr:nth-child(50)"
        times = []
        budget = _budget()
        for i in range(12):  # two warm-up loads, then ten timed
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(ready, timeout=READY_MS)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        budget = max(budget, _budget())
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        report = (
            f"alert list, {N:,} alerts: p50 {statistics.median(times):.2f} s, p95 {p95:.2f} s "
            f"(budget {budget:.1f} s at load {os.getloadavg()[0]:.1f})"
        )
        print(report)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "alert-list-timing.txt").write_text(report + "\n")
        assert p95 <= budget, report
        # one page of 50 rows, and the count of every alert that matches
        assert page.locator("#alerts-table tbody tr").count() == 50
        assert page.inner_text("#alerts-count") == f"Showing 1–50 of {N:,} alerts"
        # the default order: firing before pending before resolved, critical first
        states = _column(page, "State")
        assert states == sorted(states, key=["firing", "pending", "resolved"].index)
        assert states[0] == "firing" and _column(page, "Severity")[0] == "critical"
        page.screenshot(path=str(ARTIFACTS / "alerts-10000.png"), full_page=True)

        # the next page continues where the first stopped (client-side navigation)
        first_ids = page.eval_on_selector_all(
            "#alerts-table tbody tr", "els => els.map(e => e.dataset.alert)"
        )
        page.click("#alerts-next")
        page.wait_for_selector("#alerts-count:has-text('Showing 51–100')")
        assert "page=2" in page.url
        second_ids = page.eval_on_selector_all(
            "#alerts-table tbody tr", "els => els.map(e => e.dataset.alert)"
        )
        assert len(second_ids) == 50 and not set(first_ids) & set(second_ids)
    finally:
        page.context.close()


def test_sort_and_filters_agree_with_the_store(browser: Any, crowd: Live) -> None:
    store = of(crowd.services).alerting.store
    page = _open(browser, crowd)
    try:
        # sorted by "since", newest first: the top row is the newest first breaching window
        page.goto(f"{crowd.url}/alerts?state=all")
        page.wait_for_selector("#alerts-table")
        page.click("#alerts-sort-since")
        page.wait_for_selector("#alerts-table th[aria-sort='descending'] #alerts-sort-since")
        newest = max(a.active_at for a in store.list_alerts(limit=N))
        since = _column(page, "Since")
        assert since[0].startswith(newest.strftime("%Y-%m-%d %H:%M")), since[:3]
        assert since == sorted(since, reverse=True)
        # filtering by tenant with the form: every row is that tenant's, the count is theirs
        tenant = "tenant012"
        expected = len(store.list_alerts(tenant_id=tenant, limit=N))
        assert 0 < expected < N
        page.select_option("#alerts-filter-tenant", tenant)
        page.wait_for_url(f"**tenant={tenant}**")
        page.wait_for_selector(f"#alerts-count:has-text('of {expected:,} alerts')")
        tenants = set(_column(page, "Tenant"))
        assert tenants == {tenant}
        assert page.inner_text("#alerts-count").endswith(f"of {expected:,} alerts")
        assert "sort=since" in page.url  # the sort survives the filter
        # a bad value is named, never replaced by the default list
        page.goto(f"{crowd.url}/alerts?state=bogus&page=0")
        page.wait_for_selector("#alerts-bad-params")
        text = page.inner_text("#alerts-bad-params")
        assert "state='bogus' is not one of: open, firing, pending, resolved, all" in text
        assert "page='0' must be a whole number of 1 or more" in text
        assert page.locator("#alerts-table").count() == 0
        page.goto(f"{crowd.url}/alerts?state=all&page=9999")
        page.wait_for_selector("#alerts-bad-page")
        assert "past the last page (200)" in page.inner_text("#alerts-bad-page")
    finally:
        page.context.close()


def test_a_tenant_scoped_user_pages_through_only_their_alerts(browser: Any, crowd: Live) -> None:
    store = of(crowd.services).alerting.store
    user, tenant = SCOPED
    mine = len(store.list_alerts(tenant_id=tenant, state=["firing", "pending"], limit=N))
    page = _open(browser, crowd, user)
    try:
        page.goto(f"{crowd.url}/alerts")
        page.wait_for_selector("#alerts-table")
        assert set(_column(page, "Tenant")) == {tenant}
        assert page.inner_text("#alerts-count").endswith(f"of {mine:,} alerts")
        options = page.eval_on_selector_all(
            "#alerts-filter-tenant option", "els => els.map(e => e.value)"
        )
        assert options == ["", tenant]  # no other tenant offered, nor "all tenants"
        page.goto(f"{crowd.url}/alerts?tenant=tenant001")
        page.wait_for_selector("#alerts-denied")
        assert page.locator("#alerts-table").count() == 0
    finally:
        page.context.close()


def test_the_overview_counts_every_firing_alert(browser: Any, crowd: Live) -> None:
    """About 3,000 alerts fire: the overview's totals and its cells are the store's counts
    (the former overview read at most 1,000 alerts and showed 1,000), the inhibited ones
    apart (the engine's answer), as the alert list marks them."""
    from collections import Counter

    alerting = of(crowd.services).alerting
    firing = alerting.store.list_alerts(state="firing", limit=N)
    assert len(firing) > 1_000
    muted = alerting.engine.mutings(firing, NOW, silences=[], firing=firing)
    firing = [a for a in firing if not (a.fingerprint in muted and muted[a.fingerprint].inhibitors)]
    by_severity = Counter(a.severity for a in firing)
    by_tenant = Counter(a.tenant_id for a in firing)
    page = _open(browser, crowd)
    try:
        page.goto(f"{crowd.url}/")
        page.wait_for_selector("#overview-firing", timeout=READY_MS)
        assert page.inner_text("#overview-firing") == str(len(firing))
        for severity in ("critical", "warning", "info"):
            shown = page.inner_text(f"#overview-firing-{severity}")
            assert shown == str(by_severity[severity]), severity
        for tenant in ("tenant000", "tenant049"):
            cell = page.inner_text(f"#overview-cell-churn-{tenant}")
            assert f"{by_tenant[tenant]} firing" in cell, (tenant, cell)
        page.screenshot(path=str(ARTIFACTS / "overview-10000.png"), full_page=True)
    finally:
        page.context.close()


def test_an_inhibited_alert_links_to_what_inhibits_it(browser: Any, crowd: Live) -> None:
    """A firing alert the inhibit rules mute says "inhibited by #id" in its row, and the link
    opens the inhibiting alert's page; the row of a firing alert nothing mutes does not say it
    (the control). Which alerts are inhibited is the engine's own answer over every firing
    alert, as the alert pages' read-model test checks it without a browser."""
    alerting = of(crowd.services).alerting
    firing = alerting.store.list_alerts(state="firing", limit=N)
    muted = alerting.engine.mutings(firing, NOW, silences=[], firing=firing)
    inhibited = next(
        a
        for a in firing
        if a.tenant_id != ALL and a.fingerprint in muted and muted[a.fingerprint].inhibitors
    )
    inhibitors = {int(i.id or 0) for i in muted[inhibited.fingerprint].inhibitors}
    free = next(
        a
        for a in firing
        if a.tenant_id == inhibited.tenant_id
        and a.id != inhibited.id
        and a.fingerprint not in muted
    )
    page = _open(browser, crowd)
    try:
        page.goto(f"{crowd.url}/alerts?state=firing&tenant={inhibited.tenant_id}&per_page=200")
        row = page.locator(f"#alerts-table tbody tr[data-alert='{inhibited.id}']")
        row.wait_for(timeout=READY_MS)
        handling = row.locator("td[data-label='Handling']")
        assert "inhibited by #" in handling.inner_text()
        control = page.locator(f"#alerts-table tbody tr[data-alert='{free.id}']")
        assert "inhibited" not in control.locator("td[data-label='Handling']").inner_text()
        link = handling.locator("a[href^='/alerts/']").first
        by = int(str(link.get_attribute("href")).rsplit("/", 1)[-1])
        assert by in inhibitors, (by, inhibitors)  # the link names an alert that inhibits it
        assert link.inner_text() == f"#{by}"
        source = alerting.store.get_alert(by)
        assert source is not None and source.state == "firing"
        link.click()
        page.wait_for_url(f"{crowd.url}/alerts/{by}", timeout=READY_MS)
        page.wait_for_selector("#alert-facts", timeout=READY_MS)
        facts = page.inner_text("#alert-facts")
        assert source.rule in facts and source.tenant_id in facts, facts[:500]
    finally:
        page.context.close()
