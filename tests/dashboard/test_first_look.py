"""What a new user concludes on a first walk through the demo (see ``conftest.py``), where it
used to mislead them:

- on-call follows the webhook of the drift summary (the alert that pages for a model's drift)
  to its page, and the page names the drifting columns and leads to each feature page;
- on-call opens a per-column drift alert whose rule has no channel and reads *why* it was
  not sent (the log said "not sent" with no channel: a delivery failure, to a reader);
- an engineer opens a feature page and reads what the Download button makes, not "pick a
  window first" while a window is picked, and can read every bin label of the
  distribution (the legend was drawn over them);
- an executive reads the range's end once, not "UTC UTC".

Each test's control is the old behaviour, named in its assertion message.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.dashboard.conftest import READY_MS, Site, Tab

pytestmark = pytest.mark.slow

# The legend's box against every tick label of the distribution's x axis: the labels it
# covers (the old chart: its legend below the plot, over the rotated bin labels).
COVERED_TICKS = """(sel) => {
  const root = document.querySelector(sel);
  const leg = root.querySelector('.legend').getBoundingClientRect();
  const hits = [];
  for (const t of root.querySelectorAll('.xtick text')) {
    const r = t.getBoundingClientRect();
    if (r.width && r.left < leg.right && r.right > leg.left
        && r.top < leg.bottom && r.bottom > leg.top) hits.push(t.textContent);
  }
  return hits;
}"""


def _summary_alert(site: Site) -> dict[str, Any]:
    """globex's churn feature-drift summary alert (the one the demo's webhook pages with)
    whose newest window found discount_rate drifting."""
    with site.api() as api:
        found = api.get(
            "/api/v1/alerts",
            params={"rule": "churn-drift-summary", "tenant": "globex", "model": "churn"},
        ).json()
    fits = [
        a
        for a in found  # newest first
        if a["labels"].get("monitor") == "churn-feature-drift"
        and "discount_rate" in ((a.get("context") or {}).get("drifted_columns") or [])
    ]
    assert fits, f"no churn feature-drift summary for globex naming discount_rate: {found}"
    return min(fits, key=lambda a: a["state"] == "resolved")  # an open one if there is one


def test_the_drift_summary_page_names_and_links_its_drifting_columns(
    site: Site, tabs: dict[str, Tab]
) -> None:
    a = _summary_alert(site)
    drifted = a["context"]["drifted_columns"]
    # the first line of its notification (webhook summary, Slack text, the page's title)
    # names them too (control: "churn drifts for tenant globex (churn-feature-drift:
    # drift_share 0.25)")
    summary = a["annotations"]["summary"]
    assert "drifts for tenant globex in " in summary and "discount_rate" in summary, summary
    tab = tabs["oncall"]
    tab.open(f"/alerts/{a['id']}", "#alert-leads")
    page = tab.page
    # control: the old page named no column ("the drifting columns are in the alert's
    # context and on the dashboard") and had no #alert-lead-drifted
    lead = page.locator("#alert-lead-drifted")
    assert lead.count() == 1, page.inner_text("#alert-leads")
    text = lead.inner_text()
    assert text.startswith("Drifting in the window of "), text
    for column in drifted:
        assert column in text, (column, text)
    # discount_rate's link lands on its feature page, at globex and the alert's window
    href = lead.locator("a", has_text="discount_rate").first.get_attribute("href") or ""
    assert href.startswith("/models/churn/features/discount_rate?"), href
    assert "tenant=globex" in href and "window=" in href, href
    # and its own per-column alert (the one whose rule has no channel) is one click away
    own = site.ids["globex_drift"]
    if a["state"] != "resolved":
        assert f"/alerts/{own}" in lead.inner_html(), lead.inner_html()
    page.click("#alert-lead-drifted a[href^='/models/churn/features/discount_rate']")
    page.wait_for_selector("#feature-distribution .main-svg", timeout=READY_MS)
    assert "/features/discount_rate?" in page.url and "tenant=globex" in page.url


def test_an_alert_whose_rule_has_no_channel_says_why_it_was_not_sent(
    site: Site, tabs: dict[str, Tab]
) -> None:
    alert_id = site.ids["globex_drift"]  # churn-drift: per column, no channel by default
    with site.api() as api:
        rules = {r["name"]: r["spec"] for r in api.get("/api/v1/rules").json()}
    assert not rules["churn-drift"].get("channels"), rules["churn-drift"]
    tab = tabs["oncall"]
    tab.open(f"/alerts/{alert_id}", "#alert-notification-log")
    log = tab.page.inner_text("#alert-notification-log")
    # control: the old log said "not sent" in a row with channel "–" (read as a failed
    # delivery), or "No notification sent for this alert yet … when its group flushes"
    assert "the rule 'churn-drift' has no channel" in log, log
    assert "when its group flushes" not in log, log


def test_the_feature_page_reads_right_before_any_click(site: Site, tabs: dict[str, Tab]) -> None:
    tab = tabs["engineer"]
    for feature in ("discount_rate", "tenure_months"):
        tab.callbacks.clear()
        tab.open(
            f"/models/churn/features/{feature}?tenant=globex&range=30d",
            "#feature-distribution .legend",
        )
        tab.page.wait_for_load_state("networkidle")
        picked = tab.page.inner_text("#feature-window")
        assert picked.strip(), "a window is picked when the page opens"
        # control: "pick a window first" stood next to the button, a window picked; now
        # the button's help text stands there until a click
        status = tab.page.inner_text("#feature-report-status")
        assert status.startswith("this window against the reference"), (feature, picked, status)
        assert not any("pick a window first" in b for b in tab.callback_bodies())
        # control: the legend covered the first ten bin labels of both features
        covered = tab.page.evaluate(COVERED_TICKS, "#feature-distribution")
        assert covered == [], (feature, covered)


def test_the_business_overview_says_utc_once(site: Site, tabs: dict[str, Tab]) -> None:
    tab = tabs["exec"]
    tab.open("/kpis?range=30d", "#kpis-portfolio")
    text = tab.page.inner_text("body")
    assert "KPIs as they stood at the end of this range (" in text, text[:600]
    assert "UTC UTC" not in text  # control: "(2026-12-02 13:19 UTC UTC)"


TONE_ORDER = ["none", "good", "neutral", "watch", "bad"]


def test_a_tenant_with_no_kpi_at_risk_is_green_only_when_every_kpi_is(
    site: Site, tabs: dict[str, Tab]
) -> None:
    """The tenant page's banner takes its cards' worst colour; "every KPI on target" is said
    only when every card is green (control: acme's banner was green, "every KPI on target and
    within its usual range", over two grey cards: conversion down, retention value −36 EUR)."""
    tab = tabs["exec"]
    for tenant in ("acme", "globex", "initech"):
        tab.open(f"/kpis/{tenant}?range=30d", "#kpis-t-summary")
        banner = tab.page.locator("#kpis-t-summary")
        tone = banner.get_attribute("class").split("tone-", 1)[1].split()[0]
        lights = tab.page.eval_on_selector_all(
            "#kpis-t-content .kpi-card .light",
            "els => els.map(e => [...e.classList].find(c => c.startsWith('tone-light-')))",
        )
        tones = [str(t).removeprefix("tone-light-") for t in lights]
        assert tones, tenant
        worst = max(tones, key=TONE_ORDER.index)
        text = banner.inner_text()
        assert tone == worst, (tenant, tone, tones, text)
        if "every KPI on target" in text:
            assert set(tones) <= {"good", "none"}, (tenant, tones, text)


def test_the_calm_sentence_names_what_is_grey() -> None:
    from dataclasses import replace

    from monitor.kpis.headline import Headline
    from monitor.kpis.tenant_sentences import calm_sentence

    def head(kpi: str, tone: str, level: float, change: float, negative: str | None) -> Headline:
        return Headline(
            kpi=kpi,
            title=kpi.replace("_", " "),
            tenant_id="acme",
            unit="EUR" if negative else "ratio",
            direction="higher",
            window="day",
            target=None,
            level=level,
            level_windows=7,
            latest_start=None,
            before=level - change,
            before_label="the 7 days before",
            since=None,
            change=None,
            change_abs=change,
            attainment=None,
            status="ok",
            tone=tone,
            negative=negative,
            alert_since=None,
        )

    conv = head("conversion_rate", "neutral", 0.377, -0.007, None)
    money = head("retention_value", "neutral", -36.4, -12.4, "it costs more than it brings")
    text = calm_sentence("acme", [conv, money])
    # control: "acme: every KPI on target and within its usual range."
    assert "every KPI on target" not in text
    assert text.startswith("acme: no KPI off target or outside its usual range")
    assert "worse than before: conversion rate" in text
    assert "below zero: retention value (−36.4 EUR)" in text
    green = replace(head("conversion_rate", "good", 0.4, 0.01, None), target=0.3)
    assert calm_sentence("acme", [green]) == (
        "acme: every KPI on target and within its usual range."
    )
    # a KPI without a target is not "on target" (control: "acme: every KPI on target and
    # within its usual range." with retention value's card reading "no target")
    untargeted = head("retention_value", "good", 36.4, 1.0, None)
    assert calm_sentence("acme", [green, untargeted]) == (
        "acme: 1 of 1 KPI with a target on target, none outside its usual range; "
        "retention value has no target."
    )
    assert calm_sentence("acme", [untargeted]) == (
        "acme: no KPI with a target to be on, none outside its usual range; "
        "retention value has no target."
    )


def test_a_kpi_alert_says_what_once(site: Site, tabs: dict[str, Tab]) -> None:
    with site.api() as api:
        found = api.get("/api/v1/alerts", params={"tenant": "globex", "rule": "kpi-breach"}).json()
    conv = [a for a in found if a["labels"].get("monitor") == "conversion_rate"]
    assert conv, found
    alert = min(conv, key=lambda a: a["state"] == "resolved")
    tab = tabs["oncall"]
    tab.open(f"/alerts/{alert['id']}", "#alert-facts")
    what = tab.page.locator("#alert-facts tr:has(th:text-is('What')) td").inner_text()
    assert what == "conversion_rate", what  # control: "conversion_rate · conversion_rate"


def test_a_model_has_an_open_problem_only_with_a_firing_alert(
    site: Site, tabs: dict[str, Tab]
) -> None:
    """The executive's "Models behind these KPIs": red "has an open problem" only when the
    model has a firing alert for the tenant (control: acme's churn was "has an open problem"
    next to "Still open 0", from one column flagged in the newest window, no alert open)."""
    tab = tabs["exec"]
    said: dict[tuple[str, str], str] = {}
    for tenant in ("acme", "globex", "initech"):
        tab.open(f"/kpis/{tenant}?range=30d", "#kpis-t-summary")
        for row in tab.page.locator("#kpis-t-content table tbody tr").all():
            cells = row.locator("td").all_inner_texts()
            if len(cells) == 4 and cells[0].strip():
                said[(tenant, cells[1].strip())] = cells[0].strip()
    assert said, "the tenant pages list the models behind their KPIs"
    with site.api() as api:
        firing = api.get("/api/v1/alerts", params={"state": "firing", "limit": 10_000}).json()
    open_ = {(a["tenant_id"], a["model"]) for a in firing}
    for key, text in said.items():
        assert (text == "has an open problem") == (key in open_), (key, text)


def test_model_health_is_red_only_with_a_firing_alert() -> None:
    from monitor.queries.kpis import model_health_status

    # a column flagged in the newest window, its alert still pending: a look, not a problem
    # (control: "alert", shown as "has an open problem" next to "Still open 0")
    assert model_health_status(["ok", "alert", "warn"], ["pending", "resolved"]) == "warn"
    assert model_health_status(["ok", "alert"], ["firing"]) == "alert"
    assert model_health_status(["ok"], ["firing"]) == "alert"  # an open alert stays red
    assert model_health_status(["ok", "warn"], []) == "warn"
    assert model_health_status([], []) == "no_data"


def test_kpis_that_moved_with_an_alert_show_their_levels(site: Site, tabs: dict[str, Tab]) -> None:
    """The alert page's "moved with this alert" says from what level to what level; a
    percentage only where it means something (control: "retention_value of globex moved
    with this alert: +139 % against the windows before", a money KPI near zero; "+2093 %"
    on the 60-day demo)."""
    import re

    tab = tabs["engineer"]
    tab.open(f"/alerts/{site.ids['globex_drift']}", "#alert-leads")
    leads = tab.page.locator("#alert-leads .related-kpi").all_inner_texts()
    assert any(t.startswith("conversion_rate of globex moved") for t in leads), leads
    for text in leads:
        assert "against the windows before" not in text, text  # the old, relative-only form
        assert re.search(r"moved with this alert: \S+ (%|EUR)? ?against \S+", text), text
        assert "-" not in text.split("moved with this alert")[1], text  # the minus sign
        for pct in re.findall(r"\(([+−]\d+) %\)", text):
            assert abs(int(pct)) <= 100, text
        # a percentage, when shown, is that of the two levels shown
        shown = re.search(r": (\S+) EUR against (\S+) EUR before \(([+−]\d+) %\)", text)
        if shown:
            now, before, pct = (float(x.replace("−", "-").replace(",", "")) for x in shown.groups())
            assert abs((now / before - 1) * 100 - pct) <= 1, text
    # the levels are the KPI's own (a conversion rate in %), not the deseasonalized series
    # the ranking uses (0.817 against 1.13)
    conv = [t for t in leads if t.startswith("conversion_rate")]
    for t in conv:
        levels = re.search(r": (\d+(?:\.\d+)?) % against (\d+(?:\.\d+)?) % before", t)
        assert levels and all(5 < float(x) < 60 for x in levels.groups()), t
        # a rate moves by points, as on the KPI pages (control: "(−32 %)", relative)
        now, before = (float(x) for x in levels.groups())
        pp = re.search(r"before \(([+−]\d+(?:\.\d)?) pp\)", t)
        assert pp and abs(float(pp.group(1).replace("−", "-")) - (now - before)) <= 0.11, t
    money = [t for t in leads if t.startswith("retention_value")]
    assert all(" EUR against " in t and " EUR before" in t for t in money), money


def test_the_overview_counts_firing_alerts_as_the_alert_list_shows_them(
    site: Site, tabs: dict[str, Tab]
) -> None:
    """The overview's "Firing alerts (now)" is the number of rows on-call finds firing on the
    alert list, the inhibited ones (an all-tenants alert behind its tenant's: the same
    problem, not notified) counted apart on both pages; the severity cards and the grid add up
    to it (control: the overview said 15 firing over 8 firing rows and 7 inhibited ones)."""
    import re

    with site.api() as api:
        firing = api.get("/api/v1/alerts", params={"state": "firing", "limit": 10_000}).json()
    held = [a for a in firing if a["inhibited_by"]]
    assert held, "the demo's all-tenants drift alerts are inhibited by globex's"
    tab = tabs["oncall"]
    tab.open("/", "#overview-firing")
    shown = int(tab.page.inner_text("#overview-firing"))
    assert shown == len(firing) - len(held), (shown, len(firing), len(held))
    assert tab.page.inner_text("#overview-inhibited") == f"and {len(held)} inhibited"
    by_severity = sum(
        int(tab.page.inner_text(f"#overview-firing-{s}")) for s in ("critical", "warning", "info")
    )
    assert by_severity == shown
    # every firing alert that notifies is a tenant's here (each all-tenants one is held)
    grid = tab.page.inner_text("#overview-grid")
    assert sum(int(n) for n in re.findall(r"(\d+) firing", grid)) == shown, grid
    tab.open("/alerts?state=firing&per_page=200", "#alerts-table")
    states = tab.page.locator("#alerts-table td[data-label='State']").all_inner_texts()
    assert states.count("firing") == shown, states
    assert states.count("inhibited") == len(held), states


def test_a_kpi_alert_reads_as_the_kpi_pages(site: Site, tabs: dict[str, Tab]) -> None:
    """globex's conversion alert: its value with the KPI's unit, its window in the pages'
    time format, in the webhook's text, on the alert page and in the CLI-facing API texts;
    the webhook's machine fields stay RFC 3339 (control: "is 0.1995 (threshold 0.25)",
    "for the window 2026-11-17T00:00:00+00:00 – 2026-11-18T00:00:00+00:00")."""
    import re

    from alerts.readable import fmt_value

    with site.api() as api:
        found = api.get("/api/v1/alerts", params={"tenant": "globex", "rule": "kpi-breach"}).json()
    conv = [a for a in found if a["labels"].get("monitor") == "conversion_rate"]
    alert = min(conv, key=lambda a: a["state"] == "resolved")
    value, threshold = fmt_value(alert["value"], "%"), fmt_value(alert["threshold"], "%")
    summary, description = alert["annotations"]["summary"], alert["annotations"]["description"]
    # one day's value, and it says so (the KPI page shows the average of the last 7 days)
    assert re.search(
        rf"is {re.escape(value)} for the day \d+ \w+ \(threshold {re.escape(threshold)}\)$",
        summary,
    ), summary
    assert re.search(
        r"window \d{4}-\d\d-\d\d \d\d:\d\d UTC – \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$", description
    ), description
    sent = [
        x
        for hit in site.webhooks.delivered()
        if isinstance(hit.body, dict)
        for x in hit.body.get("alerts", [])
        if x["labels"].get("alertname") == "kpi-breach" and x["labels"].get("tenant") == "globex"
    ]
    assert sent, "the demo's webhook was sent globex's KPI alert"
    for x in sent:
        assert "T00:00:00" not in x["annotations"]["description"], x["annotations"]
        assert " %" in x["annotations"]["summary"], x["annotations"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", x["startsAt"]), x["startsAt"]
    tab = tabs["oncall"]
    tab.open(f"/alerts/{alert['id']}", "#alert-facts")
    row = tab.page.locator("#alert-facts tr:has(th:text-is('Value / threshold')) td")
    # which window the value is of: the last breaching one, the day the summary names
    window = alert["context"]["window"]
    day = window["start"][:10]
    assert window["end"][:10] == (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    assert row.inner_text() == f"{value} / {threshold} in the last breaching window, {day}"
    facts = tab.page.inner_text("#alert-facts")
    assert "T00:00:00" not in facts, facts


def _row_text(tab: Tab, alert_id: int, label: str) -> str:
    return tab.page.inner_text(
        f"#alerts-table tr[data-alert='{alert_id}'] td[data-label='{label}']"
    )


def test_a_twin_reads_inhibited_where_its_own_row_does(site: Site, tabs: dict[str, Tab]) -> None:
    """globex's discount_rate drift and its all-tenants twin: the note on globex's row and
    the lead on its page say the twin's state as the twin's own row says it, inhibited and by
    what (control: "#22 (firing)" next to the twin's row reading "inhibited by #21")."""
    import re

    me = site.ids["globex_drift"]
    with site.api() as api:
        mine = api.get(f"/api/v1/alerts/{me}").json()
        twins = [
            a
            for a in api.get(
                "/api/v1/alerts", params={"tenant": "*", "rule": mine["rule"], "limit": 1000}
            ).json()
            if {k: v for k, v in a["labels"].items() if k != "tenant"}
            == {k: v for k, v in mine["labels"].items() if k != "tenant"}
        ]
    twin = max(twins, key=lambda a: (a["state"] != "resolved", a["id"]))
    assert twin["state"] == "firing" and twin["inhibited_by"], twin  # the demo's story
    tab = tabs["engineer"]
    tab.open(f"/alerts?state=all&model=churn&rule={mine['rule']}&per_page=200", "#alerts-table")
    # the twin's own row: its badge and what inhibits it
    assert _row_text(tab, twin["id"], "State") == "inhibited"
    handling = _row_text(tab, twin["id"], "Handling")
    by = [int(x) for x in re.findall(r"#(\d+)", handling.split("inhibited by ", 1)[1])]
    assert me in by, handling
    said = "inhibited by " + ", ".join("this alert" if i == me else f"#{i}" for i in by)
    note = tab.page.inner_text(f"#alerts-table tr[data-alert='{me}'] .twin")
    assert note == f"same signal over all tenants: #{twin['id']} ({said})", note
    tab.open(f"/alerts/{me}", "#alert-leads")
    lead = tab.page.inner_text(f"#alert-leads a.twin-link[href='/alerts/{twin['id']}']")
    assert lead == f"The same signal over all tenants together: #{twin['id']} ({said})", lead
    # seen from the twin, the tenant's alert is firing and says so
    tab.open(f"/alerts/{twin['id']}", "#alert-leads")
    back = tab.page.inner_text(f"#alert-leads a.twin-link[href='/alerts/{me}']")
    assert back == f"The same signal for globex alone: #{me} (firing)", back


def test_the_kpi_alert_chart_names_the_kpi_once(site: Site, tabs: dict[str, Tab]) -> None:
    """A KPI alert's chart: its title names the KPI, its legend only what tells the lines
    apart (control: the legend read "conversion_rate conversion_rate" and "conversion_rate
    conversion_rate threshold" under "conversion_rate around the alert")."""
    with site.api() as api:
        found = api.get("/api/v1/alerts", params={"tenant": "globex", "rule": "kpi-breach"}).json()
    alert = min(
        (a for a in found if a["labels"].get("monitor") == "conversion_rate"),
        key=lambda a: a["state"] == "resolved",
    )
    tab = tabs["oncall"]
    tab.open(f"/alerts/{alert['id']}", "#alert-signal .main-svg")
    chart = "#alert-signal .js-plotly-plot"
    title = tab.page.eval_on_selector(chart, "el => el._fullLayout.title.text")
    assert title == "conversion_rate around the alert", title
    legend = tab.page.eval_on_selector_all(
        "#alert-signal .legendtext", "els => els.map(e => e.textContent)"
    )
    assert legend and not [t for t in legend if "conversion_rate" in t], legend
    assert "threshold" in legend, legend


def test_a_tenant_banner_says_on_target_only_of_kpis_with_a_target(
    site: Site, tabs: dict[str, Tab]
) -> None:
    """acme's retention value has no target: no banner says "every KPI on target" over a card
    reading "no target", and a calm banner names the KPIs without one (control: "acme: every
    KPI on target and within its usual range." over retention value's "no target")."""
    tab = tabs["exec"]
    for tenant in ("acme", "globex", "initech"):
        tab.open(f"/kpis/{tenant}?range=30d", "#kpis-t-summary")
        text = tab.page.inner_text("#kpis-t-summary")
        untargeted = [
            card.locator(".label").text_content() or ""
            for card in tab.page.locator("#kpis-t-content .kpi-card").all()
            if "no target" in card.inner_text()
        ]
        if untargeted:
            assert "every KPI on target" not in text, (tenant, text)
        if "on target" in text and untargeted:  # the calm sentence names them
            for name in untargeted:
                assert name in text.split("on target", 1)[1], (tenant, text)


def test_the_kpi_pages_say_a_rates_change_in_points(site: Site, tabs: dict[str, Tab]) -> None:
    """conversion rate (a rate) moves by "pp" on the business overview, on the tenant page and
    in its sentence; retention value (money) by a relative "%" or in EUR, never "pp"
    (control: conversion's cell read "▼ 31.8 % from 32.5 %", a relative change of a rate
    next to sentences giving it in points)."""
    import re

    tab = tabs["exec"]
    tab.open("/kpis?range=30d", "#kpis-portfolio")
    for tenant in ("acme", "globex", "initech"):
        conv = tab.page.inner_text(f"#kpis-cell-conversion_rate-{tenant} .cell-change")
        money = tab.page.inner_text(f"#kpis-cell-retention_value-{tenant} .cell-change")
        assert re.match(r"[▲▼] \d+(\.\d)? pp from ", conv) or "unchanged" in conv, conv
        assert " pp " not in money, money
    tab.open("/kpis/globex?range=30d", "#kpis-t-card-conversion_rate-change")
    change = tab.page.inner_text("#kpis-t-card-conversion_rate-change")
    assert re.match(r"[▲▼] \d+(\.\d)? pp from ", change), change
    sentence = tab.page.inner_text("#kpis-t-card-conversion_rate-sentence")
    assert not re.search(r"(up|down) \d+(\.\d)? % ", sentence), sentence
