"""What a person concludes from the charts agrees with the stored status, in Chromium against
the demo site (``conftest.py``).

1. With FDR on (the demo's drift monitors), a check's status comes from the false-discovery-rate
   correction while the charts draw the uncorrected per-test threshold: on the 60-day demo 64
   Wasserstein results over their drawn line were ok (158 in alert). The heatmap coloured every
   cell by value ÷ threshold (red over the line) and the feature chart marked nothing, so an
   ok cell read as drift. Each heatmap cell's colour band is now its stored status, each chart
   point in alert is red and one over the line that is ok is not, the hover names the status
   and the q-value, and the line is named the uncorrected threshold.
2. The 24h preset on daily monitors holds no window's start: the overview read "No data" in
   every cell and "Nothing over its threshold" while alerts fired, the model page "No
   results". Each shows the window the range falls in, and says so.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest

from monitor.queries import STATUS_RANK
from storage import reads
from storage.types import ALL, MetricResult
from tests.dashboard.conftest import DEMO_NOW, Site, Tab

pytestmark = pytest.mark.slow

PLOT = """(sel) => {
  const el = document.querySelector(sel + ' .js-plotly-plot');
  if (!el || !el.data) return null;
  return {data: el.data.map(t => ({name: t.name, x: t.x, y: t.y, z: t.z, text: t.text,
    customdata: t.customdata, marker: t.marker || null})),
    title: (el.layout.title || {}).text || ''};
}"""
RED, AMBER = "#d64545", "#d98a00"


def _stored(site: Site, column: str | None = None) -> list[MetricResult]:
    """The demo's churn drift results over all versions, from the store (not the page)."""
    rows = reads.results_between(
        site.live.services.metadata,
        start=None,
        end=None,
        source="monitor",
        model="churn",
        kinds=("feature_drift",),
        include_all=True,
        columns=(column,) if column else None,
        model_version=ALL,
    )
    return [r for r in rows if r.model_version == ALL and r.column and r.status != "no_data"]


def _over_but_ok(r: MetricResult) -> bool:
    """Over its drawn (uncorrected) threshold, yet ok by the FDR correction."""
    return (
        r.status == "ok"
        and r.value is not None
        and r.threshold is not None
        and r.value > r.threshold
        and "q_value" in r.details
    )


def _day(x: Any) -> str:
    return str(x)[:10]


def test_heatmap_colours_each_cell_by_its_stored_status(site: Site, tabs: dict[str, Tab]) -> None:
    rows = _stored(site)
    most = max(
        ("acme", "globex", "initech", ALL),
        key=lambda t: sum(_over_but_ok(r) for r in rows if r.tenant_id == t),
    )
    red = over_ok_cells = 0
    for tenant in dict.fromkeys((most, "globex")):  # the most FDR-ok cells; the drifting one
        mine = [r for r in rows if r.tenant_id == tenant]
        worst: dict[tuple[str, str], str] = defaultdict(lambda: "no_data")
        for r in mine:
            k = (r.column, _day(r.window_start.isoformat()))
            if STATUS_RANK[r.status] > STATUS_RANK[worst[k]]:
                worst[k] = r.status
        tab = tabs["engineer"]
        tab.open(f"/models/churn?tenant={tenant}&range=30d", "#model-heatmap .main-svg")
        hm = tab.page.evaluate(PLOT, "#model-heatmap")["data"][0]
        shown: dict[tuple[str, str], str] = {}
        hover: dict[tuple[str, str], str] = {}
        for i, feature in enumerate(hm["y"]):
            for j, window in enumerate(hm["x"]):
                z = hm["z"][i][j]
                if z is None:
                    continue
                # the colour bands of the status scale: ok below 1, warn 1-2, alert from 2
                shown[(feature, _day(window))] = "ok" if z < 1 else ("warn" if z < 2 else "alert")
                hover[(feature, _day(window))] = hm["text"][i][j]
        wrong = {k: (v, worst[k]) for k, v in shown.items() if worst[k] != v}
        assert shown == dict(worst), (tenant, wrong)
        # as many red cells as windows with a check in alert
        assert sum(s == "alert" for s in shown.values()) == sum(
            s == "alert" for s in worst.values()
        )
        red += sum(s == "alert" for s in shown.values())
        over_ok = {(r.column, _day(r.window_start.isoformat())) for r in mine if _over_but_ok(r)}
        for k in over_ok:
            if worst[k] == "ok":
                over_ok_cells += 1
                assert shown[k] == "ok" and ", ok (q " in hover[k], (k, hover[k])
                assert "uncorrected threshold" in hover[k], hover[k]
        tab.shot(f"engineer-model-heatmap-status-{tenant}")
    # the demo has both: cells in alert, and cells over their drawn line that are ok (the
    # old heatmap coloured these by value ÷ threshold, over 1: amber to red)
    assert red > 0 and over_ok_cells > 0, (red, over_ok_cells)


def test_chart_points_are_marked_by_their_stored_status(site: Site, tabs: dict[str, Tab]) -> None:
    rows = _stored(site)
    over_ok = [r for r in rows if _over_but_ok(r) and r.tenant_id != ALL]
    assert over_ok, "the demo should have an FDR-ok point over its line"
    # of the features with points in alert, the one with the most such points: its feature
    # page draws every tenant's line
    alerting = {r.column for r in rows if r.status == "alert"}
    column = max(
        {r.column for r in over_ok if r.column in alerting},
        key=lambda c: sum(r.column == c for r in over_ok),
    )
    tenant = next(r.tenant_id for r in over_ok if r.column == column)
    stored = {(r.tenant_id, _day(r.window_start.isoformat())): r for r in _stored(site, column)}
    tab = tabs["engineer"]
    tab.open(
        f"/models/churn/features/{column}?tenant={tenant}&range=30d", "#feature-statistic .main-svg"
    )
    plot = tab.page.evaluate(PLOT, "#feature-statistic")
    names = {"all tenants": ALL}
    lines = {t["name"]: t for t in plot["data"]}
    checked = over_line_ok = red_points = 0
    for name, t in lines.items():
        tid = names.get(name, name)
        if not any(k[0] == tid for k in stored) or not t.get("marker"):
            continue
        # the dotted line is named for what it is under FDR
        assert f"{name} uncorrected threshold" in lines, sorted(lines)
        colours = t["marker"]["color"]
        for x, colour, hover in zip(t["x"], colours, t["customdata"], strict=True):
            r = stored[(tid, _day(x))]
            assert hover.startswith(r.status), (name, x, hover, r.status)
            if r.status == "alert":
                assert colour == RED, (name, x, colour)
                red_points += 1
            else:
                assert colour not in (RED, AMBER), (name, x, colour, r.status)
            if _over_but_ok(r):
                over_line_ok += 1
                assert " (q " in hover and "> FDR" in hover, hover
            checked += 1
    assert checked and over_line_ok > 0 and red_points > 0
    # as many red points as stored results in alert
    assert red_points == sum(r.status == "alert" for r in stored.values())
    assert "uncorrected per-test threshold" in plot["title"]
    tab.shot("engineer-feature-status-marks")


def test_a_range_shorter_than_a_daily_window_shows_the_window_it_falls_in(
    site: Site, tabs: dict[str, Tab]
) -> None:
    """24h at 14:00 holds no daily window's start: the grid read "No data" everywhere and
    "Nothing over its threshold" while the demo's alerts fired."""
    tab = tabs["engineer"]
    tab.open("/?range=24h", "#overview-grid")
    grid = tab.page.inner_text("#overview-grid")
    firing = int(tab.page.inner_text("#overview-firing"))
    assert firing > 0
    assert "No data" not in grid, grid
    yesterday = datetime.fromordinal(DEMO_NOW.toordinal() - 1).strftime("%Y-%m-%d")
    assert grid.count(f"window {yesterday}, longer than the range") == 6, grid
    text = tab.page.inner_text("#overview-content")
    assert "Nothing over its threshold" not in text
    assert tab.page.locator("#overview-worst").count() == 1  # the flagged checks of that day
    tab.shot("engineer-overview-24h")
    # the model page shows that window's heatmap and says which window it is
    tab.open("/models/churn?tenant=globex&range=24h", "#model-heatmap .main-svg")
    note = tab.page.inner_text("#model-overlap")
    assert f"showing the window it falls in, {yesterday}" in note, note
    plot = tab.page.evaluate(PLOT, "#model-heatmap")
    assert [_day(x) for x in plot["data"][0]["x"]] == [yesterday]
    assert "No results" not in tab.page.inner_text("#model-content")
    tab.open("/models/churn/features/discount_rate?tenant=globex&range=24h", "#feature-overlap")
    assert yesterday in tab.page.inner_text("#feature-overlap")
