"""Figure builders, read-model helpers and the access checks, without a browser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dashboard import components as c
from dashboard import figures
from dashboard.auth import callback_allowed, page_of_component, page_of_path
from monitor import alert_pages, business, queries
from monitor.accounts import Account
from monitor.alert_pages import ListFilters
from monitor.queries import Distribution, Series, VersionChange
from monitor.service import Services
from monitor.settings import Settings
from storage.types import ALL, MetricResult
from tests.dashboard.seed import seed
from tests.storage import conftest as _db

# SQLite and, with DRIFTWATCH_TEST_POSTGRES_URL, PostgreSQL: a copy of a database migrated once
# per session
metadata_url = _db.migrated_url
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENGINEER = Account(1, "eng", "engineer", None)
EXEC = Account(2, "exe", "executive", None)
ACME = Account(3, "acme", "engineer", ("acme",))
ONCALL = Account(4, "oc", "oncall", None)


def result(
    col: str,
    day: int,
    value: float | None,
    threshold: float | None = 0.2,
    status: str = "ok",
    **details: object,
) -> MetricResult:
    return MetricResult(
        source="monitor",
        source_name="m",
        kind="feature_drift",
        model="churn",
        window_start=T0 + timedelta(days=day),
        window_end=T0 + timedelta(days=day + 1),
        tenant_id="acme",
        model_version=ALL,
        column=col,
        metric="psi",
        value=value,
        threshold=threshold,
        status=status,
        details=dict(details),  # type: ignore[arg-type]
    )


def test_severity_score_handles_p_values_and_missing_numbers() -> None:
    assert queries.severity_score(result("a", 0, 0.4)) == pytest.approx(2.0)
    p = result("a", 0, 0.001, 0.05, "alert", direction="below")
    assert queries.severity_score(p) == pytest.approx(10.0)  # capped
    assert queries.severity_score(result("a", 0, 0.5, 0.05, "ok", direction="below")) < 1
    assert queries.severity_score(result("a", 0, None, None, "alert")) == 1.5
    assert queries.worst_status(["ok", "warn", "no_data"]) == "warn"
    assert queries.worst_status([]) == "no_data"


def test_heatmap_takes_the_worst_cell_and_skips_no_data() -> None:
    rows = [
        result("b", 0, 0.1),
        result("b", 0, 0.3, status="alert"),
        result("a", 1, None, status="no_data"),
        result("", 0, 0.5),  # not about one column: not in the heatmap
    ]
    hm = queries.heatmap(rows)
    assert hm.features == ["a", "b"]
    assert hm.windows == [T0, T0 + timedelta(days=1)]
    assert hm.z[1][0] == pytest.approx(1.5) and hm.z[0][1] is None
    fig = figures.drift_heatmap(hm, [VersionChange("v1", T0, 1), VersionChange("v2", T0, 1)])
    assert fig.data[0].customdata[1][0] == "b"
    assert any("version v2" in a.text for a in fig.layout.annotations)


def test_distribution_from_details() -> None:
    r = result("a", 0, 0.3, histogram={"edges": [0, 1, 2], "reference": [1, 3], "current": [2, 2]})
    d = queries.distribution(r)
    assert d is not None and d.kind == "numeric" and d.reference == [0.25, 0.75]
    assert queries.distribution(result("a", 0, 0.3, histogram={"edges": [0, 1]})) is None
    fig = figures.distribution_overlay(d)
    assert [t.name for t in fig.data] == ["reference", "current window"]
    cats = Distribution("categorical", ["x", "y"], [0.5, 0.5], [0.9, 0.1], T0)
    assert figures.distribution_overlay(cats).layout.barmode == "group"


def test_series_chart_draws_thresholds_bands_and_label_lag() -> None:
    s = Series("auc", [T0, T0 + timedelta(days=1)], [0.8, 0.7], [0.75, 0.75])
    est = Series("auc", [T0], [0.72], [0.75], [0.7], [0.74])
    fig = figures.series_chart("perf", [s], dashed=[est], labels_until=T0)
    names = [t.name for t in fig.data]
    assert "auc threshold" in names and "auc (estimated)" in names and "auc band" in names
    assert any(a.text == "labels until here" for a in fig.layout.annotations)
    kpi = figures.kpi_trend(s, 0.75, [(T0, "drift")], [(T0, "churn", "v2")], unit="%")
    assert kpi.layout.yaxis.tickformat == ".0%"


def test_series_lines_never_take_a_status_colour() -> None:
    """The feature page draws one line per tenant: with red and green in the series palette the
    drifting tenant (globex, third) was green and a healthy one (acme, second) red. No line of a
    series chart has a status colour, and an estimate has the colour of the series it estimates."""
    days = [T0, T0 + timedelta(days=1)]
    names = ["all tenants", "acme", "globex", "initech", "a", "b", "c", "d"]
    tenants = [Series(n, days, [0.1, 0.3], [0.2, 0.2]) for n in names]
    fig = figures.series_chart("statistic per tenant", tenants)
    perf = figures.series_chart(
        "perf",
        [Series("auc", days, [0.8, 0.7], [None, None])],
        dashed=[Series("auc", days, [0.75, 0.74], [None, None], [0.7, 0.7], [0.8, 0.8])],
    )
    status = {c.lower() for c in figures.STATUS_COLOR.values()}
    lines = [t for f in (fig, perf) for t in f.data if t.line.color]
    assert len(lines) >= 2 * len(names)  # each tenant's line and its threshold
    assert not [(t.name, t.line.color) for t in lines if t.line.color.lower() in status]
    colours = {t.name: t.line.color for t in perf.data}
    assert colours["auc (estimated)"] == colours["auc"]


def test_an_overview_cell_with_flagged_checks_and_no_firing_alert_says_so(tmp_path: Path) -> None:
    """The demo's basket_value × acme cell was red with "1 alert · 1 warn" while the overview's
    firing count had no alert of it (its two alerts were pending): the cell counts checks, and
    says that no alert fires, linking to the cell's alerts (pending ones included)."""
    import sys

    from dashboard.app import get_app

    get_app(tmp_path)  # the process's Dash app: it loads the pages
    overview = sys.modules["pages.overview"]

    def text(cell: queries.Cell) -> tuple[str, str | None]:
        below = overview._cell("basket_value", "acme", cell, True).children[1].children
        return str(getattr(below, "children", below)), getattr(below, "href", None)

    shown, link = text(queries.Cell("alert", alerting=1, warning=1, firing=0))
    assert shown == "1 check in alert, 1 in warning; no alert firing", (
        shown
    )  # was "1 alert · 1 warn"
    assert link == "/alerts?tenant=acme&model=basket_value"
    assert text(queries.Cell("warn", alerting=0, warning=3, firing=0))[0] == (
        "3 checks in warning; no alert firing"
    )
    assert text(queries.Cell("alert", alerting=2, warning=0, firing=2))[0] == "2 firing"


def test_page_and_callback_access() -> None:
    from dashboard.app import get_app

    get_app()  # page_of_path asks the router of the process's Dash app (a server builds it)
    assert page_of_path("/") == "overview"
    assert page_of_path("/models/churn") == "model"
    assert page_of_path("/models/churn/features/x") == "feature"
    assert page_of_path("/alerts/3") == "alert" and page_of_path("/kpis/acme") == "kpis"
    assert page_of_component("model-heatmap") == "model"
    assert page_of_component({"type": "alerts-row", "index": 1}) == "alerts"
    body = {"outputs": {"id": "model-content", "property": "children"}, "inputs": []}
    assert callback_allowed(ENGINEER, body) and not callback_allowed(EXEC, body)
    router = {
        "outputs": [{"id": "_pages_content", "property": "children"}],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/models/x"}],
    }
    assert callback_allowed(ENGINEER, router) and not callback_allowed(EXEC, router)
    # spellings Dash's router resolves to the same page get the same answer (issue 12)
    for path in ("//models/churn", "///models/churn", "/models/churn/", "/models//churn"):
        router["inputs"][0]["value"] = path
        assert page_of_path(path) == "model", path
        assert not callback_allowed(EXEC, router), path
        assert callback_allowed(ENGINEER, router), path
    router["inputs"][0]["value"] = "//monitors"
    assert not callback_allowed(ONCALL, router)
    router["inputs"][0]["value"] = "/no/such/page"
    assert page_of_path("/no/such/page") is None and callback_allowed(EXEC, router)
    assert not callback_allowed(ENGINEER, {"outputs": [], "inputs": []})
    assert callback_allowed(EXEC, {"output": "kpis-content.children", "inputs": []})


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    svc = Services.open(Settings(data_dir=tmp_path_factory.mktemp("q") / "data"))
    seed(svc)
    yield svc  # type: ignore[misc]
    svc.close()


def test_read_models_filter_by_scope(services: Services) -> None:
    ov = queries.overview(services, ACME.tenants)
    assert ov.tenants == ["acme"] and {t for _, t in ov.cells} == {"acme"}
    assert all(s.tenant_id == "acme" for s in ov.worst)
    full = queries.overview(services, None)
    assert {"acme", "globex", "initech"} <= set(full.tenants)
    with pytest.raises(queries.AccessDenied):
        queries.model_view(services, ACME.tenants, "churn", "globex")
    with pytest.raises(queries.AccessDenied):
        queries.model_view(services, ACME.tenants, "churn", ALL)
    mv = queries.model_view(services, ACME.tenants, "churn")
    assert mv is not None and mv.tenant == "acme" and mv.heatmap.features
    fv = queries.feature_view(services, ACME.tenants, "churn", "discount_rate")
    assert fv is not None and {s.tenant_id for s in fv.breakdown} == {"acme"}
    scoped = alert_pages.alert_list(services, ACME.tenants, ListFilters(state="all"))
    assert scoped.rows and all(r.alert.tenant_id == "acme" for r in scoped.rows)
    port = queries.kpi_portfolio(services, ACME.tenants, "30d")
    assert {t for _, t in port.cells} == {"acme"}
    biz = business.business_overview(services, ACME.tenants)
    assert biz.tenants == ["acme"] and {t for _, t in biz.cells} == {"acme"}
    assert all(r.tenant_id == "acme" for r in biz.at_risk)
    assert {t for _, t in business.business_overview(services, None).cells} >= {"acme", "globex"}
    assert business.tenant_headlines(services, ACME.tenants, "globex") == ({}, None)
    assert queries.model_view(services, None, "nope") is None


def test_logged_distribution_reads_reference_and_window(services: Services) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    d = queries.logged_distribution(
        services, "churn", "plan", ALL, end - timedelta(days=2), end, {"dataset": "training"}
    )
    assert (
        d is not None and d.kind == "categorical" and set(d.labels) == {"free", "pro", "enterprise"}
    )
    n = queries.logged_distribution(
        services,
        "churn",
        "tenure_months",
        "acme",
        end - timedelta(days=2),
        end,
        {"previous_days": 1},
    )
    assert n is not None and n.kind == "numeric" and sum(n.current) == pytest.approx(1)


def test_empty_chart_builds() -> None:
    assert figures.mark_versions(figures.series_chart("x", []), []).layout.title.text == "x"


def test_model_view_cache_follows_the_stored_results(services: Services) -> None:
    from storage.metadata.monitoring import MonitoringStore

    first = queries.model_view(services, None, "churn", "acme", "7d")
    assert queries.model_view(services, None, "churn", "acme", "7d") is first
    w = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    new = MetricResult(
        source="monitor",
        source_name="extra",
        kind="feature_drift",
        model="churn",
        window_start=w,
        window_end=w + timedelta(hours=1),
        tenant_id="acme",
        model_version=ALL,
        column="brand_new_feature",
        metric="psi",
        value=0.5,
        threshold=0.2,
        status="alert",
    )
    MonitoringStore(services.metadata).save_results([new])
    again = queries.model_view(services, None, "churn", "acme", "7d")
    assert again is not first and "brand_new_feature" in again.heatmap.features


def test_profiled_distribution_merges_bins_and_keeps_every_category_share() -> None:
    """A drift monitor's ~100 reference bins reach the chart as at most MAX_BARS bars, each the
    sum of a run of adjacent bins, the open ends kept; categories beyond the largest few are
    summed into "other", so each bar is its true share of the window (not of the bars shown)."""
    from itertools import pairwise

    import numpy as np

    from monitor.queries.feature import MAX_BARS, MAX_CATEGORIES, profiled_distribution
    from monitor.window_histograms import WindowHistograms

    rng = np.random.default_rng(3)
    edges = tuple(float(e) for e in np.linspace(0, 99, 100))
    ref = rng.integers(0, 50, 101).tolist()
    cur = rng.integers(0, 50, 101).tolist()
    d = profiled_distribution(WindowHistograms("numeric", edges, (), ref, cur), T0)
    assert d.edges is not None and len(d.labels) == len(d.edges) + 1 <= MAX_BARS
    assert d.labels[0] == "≤0" and d.labels[-1] == ">99"
    # each bar: the bins between its edges (right-closed), from the raw counts
    at = [edges.index(e) for e in d.edges]
    want = [cur[0], *(sum(cur[a + 1 : b + 1]) for a, b in pairwise(at)), cur[-1]]
    assert d.current == pytest.approx([w / sum(cur) for w in want])
    assert sum(d.reference) == pytest.approx(1.0)

    cats = tuple(f"c{i:02d}" for i in range(30))
    counts = [100 - 3 * i for i in range(30)] + [7]  # the vocabulary, then "other"
    d = profiled_distribution(WindowHistograms("categorical", (), cats, counts, counts), T0)
    assert len(d.labels) == MAX_CATEGORIES and d.labels[-1] == "other"
    assert d.labels[:3] == ["c00", "c01", "c02"]
    total = sum(counts)
    assert d.current[0] == pytest.approx(100 / total)  # its share of all rows
    assert d.current[-1] == pytest.approx((sum(counts[MAX_CATEGORIES - 1 : 30]) + 7) / total)
    assert sum(d.current) == pytest.approx(1.0)


def test_demo_receiver_logs_each_webhook(tmp_path: Path) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    import httpx

    from monitor.cli_demo import _Receiver

    log = tmp_path / "hooks.jsonl"
    handler = type("R", (_Receiver,), {"log_path": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        r = httpx.post(url, json={"status": "firing"}, headers={"webhook-id": "msg_1"})
        assert r.status_code == 204
    finally:
        server.shutdown()
        server.server_close()
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["body"] == {"status": "firing"} and entry["webhook_id"] == "msg_1"


def test_demo_receiver_on_a_taken_port_says_which_and_how_to_move(tmp_path: Path) -> None:
    """A second `make demo` (or anything on 8765) holds the port: the receiver names it and
    the options that move both sides, instead of a traceback in the demo's log."""
    import socket

    from typer.testing import CliRunner

    from monitor.cli import app

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        out = CliRunner().invoke(
            app, ["demo", "receiver", "--data-dir", str(tmp_path), "--port", str(port)]
        )
    assert out.exit_code == 1, out.output
    text = " ".join(out.output.split())
    assert f"cannot listen on 127.0.0.1:{port}" in text
    assert "--webhook-port N" in text and "DEMO_WEBHOOK_PORT=N" in text
    assert "Traceback" not in out.output


def test_every_read_model_on_both_metadata_backends(metadata_url: str, tmp_path: Path) -> None:
    svc = Services.open(Settings(data_dir=tmp_path / "data", database_url=metadata_url))
    try:
        ids = seed(svc)
        ov = queries.overview(svc, None)
        assert ov.cells[("churn", "globex")].status == "alert" and ov.computed_at is not None
        mv = queries.model_view(svc, None, "churn", "globex", "30d")
        assert mv is not None and "discount_rate" in mv.heatmap.features and mv.realized
        fv = queries.feature_view(svc, ("globex",), "churn", "discount_rate")
        assert fv is not None and fv.distribution is not None
        av = queries.alert_view(svc, None, ids["globex_firing"])
        assert av is not None and av.signal and av.kpis
        assert queries.alert_view(svc, ("acme",), ids["globex_firing"]) is None
        kv = queries.kpi_tenant(svc, None, "globex", "30d")
        assert kv.cards and kv.cards[0].status == "alert" and kv.incidents.count >= 2
        assert [m.name for m in queries.monitors_view(svc).monitors][:1] == ["churn-drift"]
        rows = alert_pages.alert_list(svc, None, ListFilters()).rows
        assert [r.alert.state for r in rows][:2] == ["firing", "firing"]
    finally:
        svc.close()


def test_error_box_shows_a_plain_message_not_the_exception() -> None:
    from monitor.errors import NotFoundError

    def text(node: Any) -> str:
        kids = getattr(node, "children", node)
        if isinstance(kids, list):
            return "".join(text(k) for k in kids)
        return kids if isinstance(kids, str) else text(kids)

    box = text(c.error_box("model", KeyError("SELECT secret FROM x")))
    assert "KeyError" not in box and "SELECT" not in box
    assert "Something went wrong on the server (reference " in box
    assert "model 'x' not found" in text(c.error_box("model", NotFoundError("model 'x' not found")))


def test_overview_counts_every_firing_alert_past_a_thousand(
    metadata_url: str, tmp_path: Path
) -> None:
    """The overview's firing counts (by severity, per model × tenant cell) are the store's,
    with far more than 1,000 firing alerts: the former read of at most 1,000 alerts
    undercounted (control: that read reaches its cap here)."""
    from collections import Counter

    from monitor import demo
    from monitor.composition import of
    from monitor.service import Caller
    from tests.dashboard.many_alerts import add_alerts

    now = datetime(2026, 11, 18, 14, tzinfo=UTC)
    svc = Services.open(Settings(data_dir=tmp_path / "data", database_url=metadata_url))
    try:
        svc.register_model(demo.CHURN_MODEL, Caller.local())
        add_alerts(svc, 6_000, now)
        store = of(svc).alerting.store
        firing = store.list_alerts(state="firing", limit=100_000)
        assert len(firing) > 1_500
        assert len(store.list_alerts(state="firing")) == 1_000  # the former read: capped
        # inhibited alerts (all-tenants twins, drift behind a critical data-quality alert)
        # are counted apart, as the alert list marks them: the engine's own answer
        muted = of(svc).alerting.engine.mutings(firing, now, silences=[], firing=firing)
        held = {fp for fp, m in muted.items() if m.inhibitors}
        notifying = [a for a in firing if a.fingerprint not in held]
        assert 0 < len(held) < len(firing)
        ov = queries.overview(svc, None)
        assert ov.firing_by_severity == dict(Counter(a.severity for a in notifying))
        assert sum(ov.firing_by_severity.values()) == len(notifying)
        assert ov.inhibited == len(held)
        per_cell = Counter((a.model, a.tenant_id) for a in notifying)
        held_cell = Counter((a.model, a.tenant_id) for a in firing if a.fingerprint in held)
        for (model, tenant), cell in ov.cells.items():
            assert cell.firing == per_cell.get((model, tenant), 0), (model, tenant)
            assert cell.inhibited == held_cell.get((model, tenant), 0), (model, tenant)
        assert sum(c.firing for c in ov.cells.values()) == sum(
            n for (_m, t), n in per_cell.items() if t != ALL
        )
        # a tenant-scoped user counts their tenant's only
        mine = [a for a in notifying if a.tenant_id == "tenant007"]
        scoped = queries.overview(svc, ("tenant007",))
        assert sum(scoped.firing_by_severity.values()) == len(mine) > 0
    finally:
        svc.close()


def test_heatmap_and_chart_colours_follow_the_stored_status() -> None:
    """With FDR the status comes from the correction, the drawn threshold is the uncorrected
    one: a result over it may be ok. The heatmap's colour band is the stored status (before,
    value ÷ threshold: 1.5 × the line read red while ok) and the worst result of a cell is the
    one in alert even when an ok one is further over its line; a chart's point in alert is
    red, one over the line that is ok keeps its line's colour and says "ok (q …)"."""
    fdr = {"q_value": 0.14, "fdr_alpha": 0.05}
    over_ok = result("a", 0, 0.3, 0.2, "ok", **fdr)  # 1.5 × its line, ok by FDR
    rows = [
        over_ok,
        result("b", 0, 0.5, 0.2, "ok", **fdr),  # 2.5 × its line, ok ...
        result("b", 0, 0.22, 0.2, "alert", q_value=0.01, fdr_alpha=0.05),  # ... this in alert
        result("b", 1, 0.05, 0.2, "ok"),
    ]
    hm = queries.heatmap(rows)
    assert hm.status == [["ok", "no_data"], ["alert", "ok"]]
    assert hm.text[0][0] == "psi 0.3 (uncorrected threshold 0.2), ok (q 0.14 > FDR 0.05)"
    assert hm.text[1][0].endswith("alert (q 0.01 ≤ FDR 0.05)")
    z = figures.drift_heatmap(hm).data[0].z
    assert z[0][0] < 1 and 2 <= z[1][0] < 3 and z[1][1] < 1 and z[0][1] is None
    assert figures.status_shade("warn", 3.0) == 1.5
    # a chart: the same results as one series
    s = queries.to_series("acme", [over_ok, rows[2], rows[3]])
    assert s.fdr and s.q == [0.14, 0.01, None]
    fig = figures.series_chart("statistic", [s])
    line = next(t for t in fig.data if t.name == "acme")
    blue, red = figures.COLORS[0], figures.STATUS_COLOR["alert"]
    assert list(line.marker.color) == [blue, red, blue]
    assert list(line.customdata) == ["ok (q 0.14 > FDR 0.05)", "alert (q 0.01 ≤ FDR 0.05)", "ok"]
    names = [t.name for t in fig.data]
    assert "acme uncorrected threshold" in names and "in alert (stored status)" in names
    assert "uncorrected per-test threshold" in fig.layout.title.text
    plain = figures.series_chart("perf", [Series("auc", [T0], [0.8], [0.75], status=["ok"])])
    assert "auc threshold" in [t.name for t in plain.data]
    assert "uncorrected" not in plain.layout.title.text


def test_worst_drifted_window_is_of_the_windows_in_alert() -> None:
    from monitor.drift_impact import rank

    rows = {
        "a": [
            result("a", 0, 0.6, 0.2, "ok", q_value=0.2),  # 3 × its line, ok by FDR
            result("a", 1, 0.24, 0.2, "alert", q_value=0.01),
        ]
    }
    ranked, _undrifted, _level = rank(rows, {}, {})
    assert ranked[0].drifted_windows == 1 and ranked[0].worst == pytest.approx(1.2)


def test_a_window_reads_by_its_dates() -> None:
    day = datetime(2026, 12, 2, tzinfo=UTC)
    assert c.fmt_window(day, day + timedelta(days=1)) == "2026-12-02"
    assert c.fmt_window(day, day + timedelta(days=7)) == "2026-12-02 to 2026-12-08"
    assert c.fmt_window(day, day + timedelta(hours=1)).startswith("2026-12-02 00:00")


def test_the_overview_never_says_nothing_is_wrong_while_alerts_fire(tmp_path: Path) -> None:
    """A range may hold no flagged check while alerts fire (their windows before it): the
    overview said "Nothing over its threshold in the newest windows." next to "8 firing"."""
    import sys

    from dashboard.app import get_app

    get_app(tmp_path)
    overview = sys.modules["pages.overview"]

    def text(firing: dict[str, int], inhibited: int = 0) -> str:
        cell = queries.Cell("alert" if firing else "ok", 0, 0, sum(firing.values()))
        view = queries.Overview(
            ["churn"], ["acme"], {("churn", "acme"): cell}, [], firing, T0, inhibited
        )
        return json.dumps(overview.nothing_flagged(view).to_plotly_json(), default=str)

    assert "Nothing over its threshold" in text({})
    firing = text({"warning": 7, "critical": 1})
    assert "Nothing over its threshold" not in firing
    assert "but 8 alerts are firing" in firing
    assert "but 1 alert is firing" in text({}, inhibited=1)
