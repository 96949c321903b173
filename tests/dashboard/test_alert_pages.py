"""The alert list's read model and markup without a browser: URL parameters, paging and
sorting in SQL (SQLite and PostgreSQL) checked against the same order computed in Python,
twins, scope, and escaping of the markup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard import alert_list as page
from dashboard import markup as m
from monitor import alert_pages
from monitor.alert_pages import ListFilters, parse_filters
from monitor.composition import of
from monitor.queries import AccessDenied
from monitor.service import Services
from monitor.settings import Settings
from monitor.timerange import RangeError
from storage.metadata.alerting import ALERT_SORTS
from storage.types import ALL, AlertRecord
from tests.dashboard.many_alerts import add_alerts
from tests.storage import conftest as _db

# SQLite and, with DRIFTWATCH_TEST_POSTGRES_URL, PostgreSQL: a copy of a database migrated once
# per session
metadata_url = _db.migrated_url
NOW = datetime(2026, 11, 18, 14, tzinfo=UTC)
STATE = {"firing": 0, "pending": 1, "resolved": 2}
SEVERITY = {"critical": 0, "warning": 1, "info": 2}


def test_parse_filters_names_every_bad_value() -> None:
    f, errors = parse_filters({"state": "all", "tenant": "acme", "page": "3", "sort": "since"})
    assert errors == [] and (f.state, f.tenant, f.page, f.sort) == ("all", "acme", 3, "since")
    assert parse_filters({})[0] == ListFilters()
    assert parse_filters({"state": "", "page": None})[0] == ListFilters()  # empty = absent
    f, errors = parse_filters(
        {"state": "open!", "severity": "huge", "sort": "x", "order": "up", "page": "-1"}
    )
    assert f == ListFilters()  # nothing applied when anything is wrong
    assert errors == [
        "state='open!' is not one of: open, firing, pending, resolved, all.",
        "severity='huge' is not one of: critical, warning, info.",
        f"sort='x' is not one of: {', '.join(ALERT_SORTS)}.",
        "order='up' is not one of: asc, desc.",
        "page='-1' must be a whole number of 1 or more.",
    ]
    assert parse_filters({"per_page": "30"})[1] == [
        "per_page='30' is not one of: 25, 50, 100, 200."
    ]
    # links keep what differs from the defaults only
    assert ListFilters(state="all", page=2).params(page=3) == {"state": "all", "page": "3"}


def _expected(alerts: list[AlertRecord], sort: str, desc: bool) -> list[int]:
    """The order ``page_alerts`` promises, computed in Python."""
    newest_first = sorted(alerts, key=lambda a: -(a.id or 0))  # ties: newest alert first
    if sort == "priority":

        def key(a: AlertRecord) -> tuple[object, ...]:
            resolved = a.state == "resolved"
            ended = a.ends_at.timestamp() if a.ends_at else float("-inf")
            return (
                STATE[a.state],
                SEVERITY[a.severity],
                0 if resolved else a.active_at.timestamp(),
                -ended,
            )

        return [int(a.id or 0) for a in sorted(newest_first, key=key)]
    get = {
        "since": lambda a: a.active_at,
        "started": lambda a: a.starts_at,
        "updated": lambda a: a.updated_at,
        "state": lambda a: STATE[a.state],
        "severity": lambda a: SEVERITY[a.severity],
        "rule": lambda a: a.rule,
        "tenant": lambda a: a.tenant_id,
        "model": lambda a: a.model,
    }[sort]
    present = [a for a in newest_first if get(a) is not None]
    absent = [a for a in newest_first if get(a) is None]  # nulls last either way
    ordered = sorted(present, key=get, reverse=desc)
    if desc:  # a reversed stable sort reverses ties too: put them back newest first
        groups: dict[object, list[AlertRecord]] = {}
        for a in ordered:
            groups.setdefault(get(a), []).append(a)
        ordered = [a for g in groups.values() for a in sorted(g, key=lambda a: -(a.id or 0))]
    return [int(a.id or 0) for a in ordered + absent]


def test_paging_and_sorting_in_sql_match_python(metadata_url: str, tmp_path: Path) -> None:
    svc = Services.open(Settings(data_dir=tmp_path / "data", database_url=metadata_url))
    try:
        add_alerts(svc, 400, NOW, seed=5)
        store = of(svc).alerting.store
        every = store.list_alerts(limit=1000)
        assert len(every) == 400
        for sort in ALERT_SORTS:
            for desc in (False, True):
                want = _expected(every, sort, desc)
                got: list[int] = []
                for offset in range(0, 400, 150):  # pages join up with no gap or repeat
                    rows, total = store.page_alerts(
                        sort=sort, descending=desc, limit=150, offset=offset
                    )
                    assert total == 400
                    got += [int(a.id or 0) for a in rows]
                assert got == want, (sort, desc)
        rows, total = store.page_alerts(
            state=["firing", "pending"], severity="critical", tenant_ids=["tenant003"], limit=500
        )
        assert total == len(rows) > 0
        assert all(
            a.state in ("firing", "pending")
            and a.severity == "critical"
            and a.tenant_id == "tenant003"
            for a in rows
        )
        assert store.page_alerts(tenant_ids=[]) == ([], 0)
        with pytest.raises(ValueError, match="sort 'age' is not one of"):
            store.page_alerts(sort="age")
    finally:
        svc.close()


def test_alert_list_scope_twins_and_last_page(tmp_path: Path) -> None:
    svc = Services.open(Settings(data_dir=tmp_path / "data"))
    try:
        add_alerts(svc, 600, NOW, seed=2)
        store = of(svc).alerting.store
        everyone = alert_pages.alert_list(svc, None, ListFilters(state="all", per_page=200), NOW)
        assert everyone.total == 600 and everyone.pages == 3 and len(everyone.rows) == 200
        assert (everyone.first, everyone.last) == (1, 200)
        # every all-tenants row with a per-tenant alert of the same labels names it, and back
        stars = [a for a in store.list_alerts(limit=1000) if a.tenant_id == ALL]
        assert stars
        star = stars[0]
        twins = alert_pages.find_twins(svc, [star], None, alert_pages.visible_tenants(svc, None))
        found = twins[int(star.id or 0)]
        assert found
        same = {k: v for k, v in star.labels.items() if k != "tenant"}
        for twin in found:
            per_tenant = store.get_alert(twin.id)
            assert per_tenant is not None and per_tenant.tenant_id == twin.tenant_id != ALL
            assert {k: v for k, v in per_tenant.labels.items() if k != "tenant"} == same
            back = alert_pages.find_twins(svc, [per_tenant], None, [])
            assert [t.id for t in back[twin.id]] == [star.id]
        # exactly the per-tenant alerts with the same labels, independently of fingerprints
        expected = {
            a.id
            for a in store.list_alerts(limit=1000)
            if a.tenant_id != ALL and {k: v for k, v in a.labels.items() if k != "tenant"} == same
        }
        assert {t.id for t in found} == expected
        # a tenant-scoped user: only their tenant, no all-tenant twins, others refused
        scoped = alert_pages.alert_list(svc, ("tenant004",), ListFilters(state="all"), NOW)
        assert scoped.rows and {r.alert.tenant_id for r in scoped.rows} == {"tenant004"}
        assert all(r.twins == [] for r in scoped.rows)
        assert scoped.total == len(store.list_alerts(tenant_id="tenant004", limit=1000))
        with pytest.raises(AccessDenied):
            alert_pages.alert_list(svc, ("tenant004",), ListFilters(tenant="tenant005"), NOW)
        past = alert_pages.alert_list(svc, None, ListFilters(state="all", page=99), NOW)
        assert past.rows == [] and past.total == 600 and (past.first, past.last) == (0, 0)
        rendered = page.render(past)[-1].children[0].data  # the list block's HTML
        assert "page=99 is past the last page (12)" in rendered
    finally:
        svc.close()


def test_markup_escapes_text_and_refuses_unsafe_links() -> None:
    text = m.esc('<script>alert(1)</script> & "q"')
    assert "<script>" not in text and "&lt;script&gt;" in text and "&amp;" in text
    assert "&#34;q&#34;" in text
    link = m.link("a <b>", "/alerts?tenant=x&state=all")
    assert link == '<a href="/alerts?tenant=x&amp;state=all" data-link>a &lt;b&gt;</a>'
    assert m.tag("td", "v", data_label="Since", class_="x") == (
        '<td data-label="Since" class="x">v</td>'
    )
    # a value cannot close its attribute and add a handler
    assert m.tag("span", "", title='x" onmouseover="alert(1)') == (
        '<span title="x&#34; onmouseover=&#34;alert(1)"></span>'
    )
    with pytest.raises(ValueError, match="event handler"):
        m.tag("span", onclick="x")
    with pytest.raises(ValueError, match="not a path inside the app"):
        m.link("x", "javascript:alert(1)")
    assert m.external("runbook", "javascript:alert(1)") == "runbook"
    assert m.external("runbook", "https://wiki/x").startswith('<a href="https://wiki/x"')
    assert m.safe_url("//evil.example/x") is None and m.safe_url("/models/churn") == "/models/churn"
    # chips keep each label readable and escaped
    chips = page.chips({"column": "a<b", "alertname": "x"})
    assert "a&lt;b" in chips and "alertname" not in chips


def test_alert_list_time_range_keeps_alerts_open_in_it(tmp_path: Path) -> None:
    svc = Services.open(Settings(data_dir=tmp_path / "data"))
    try:
        add_alerts(svc, 500, NOW, seed=9)
        every = of(svc).alerting.store.list_alerts(limit=1000)
        f = ListFilters(state="all", per_page=200, from_="2026-10-20", to="2026-10-31")
        view = alert_pages.alert_list(svc, None, f, NOW)
        start, end = datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
        assert view.span is not None and (view.span.start, view.span.end) == (start, end)

        def open_in_range(a: AlertRecord) -> bool:  # data time: first breach to clearing window
            if a.active_at >= end:
                return False
            return a.state != "resolved" or a.last_window_end is None or a.last_window_end > start

        expected = sum(open_in_range(a) for a in every)
        assert 0 < expected < 500 and view.total == expected
        assert f.params() == {
            "state": "all",
            "per_page": "200",
            "from": "2026-10-20",
            "to": "2026-10-31",
        }
        assert parse_filters(f.params())[0] == f  # the URL gives the same view back
        with pytest.raises(RangeError, match="range='1y'"):
            alert_pages.alert_list(svc, None, ListFilters(range="1y"), NOW)
    finally:
        svc.close()


def test_the_alert_list_says_which_alerts_are_inhibited_and_by_what(tmp_path: Path) -> None:
    """Every firing row the engine's inhibit rules mute says "inhibited by #id" (its
    notifications wait while those fire), exactly as the engine decides over every firing
    alert; a silence is still shown as "silenced". Control: the former list said "silenced"
    only, so an inhibited alert looked like one nobody was told about."""
    svc = Services.open(Settings(data_dir=tmp_path / "data"))
    try:
        add_alerts(svc, 600, NOW, seed=2)
        engine = of(svc).alerting.engine
        firing = of(svc).alerting.store.list_alerts(state="firing", limit=10_000)
        truth = engine.mutings(firing, NOW, silences=[], firing=firing)
        expected = {
            a.id: sorted(int(i.id or 0) for i in truth[a.fingerprint].inhibitors)
            for a in firing
            if a.fingerprint in truth and truth[a.fingerprint].inhibitors
        }
        assert expected  # the store has inhibited alerts (all-tenants twins of firing ones)
        seen: dict[int, list[int]] = {}
        html = ""
        for n in (1, 2, 3):
            v = alert_pages.alert_list(
                svc, None, ListFilters(state="firing", per_page=200, page=n), NOW
            )
            for r in v.rows:
                if r.inhibited:
                    seen[int(r.alert.id or 0)] = sorted(t.id for t in r.inhibitors)
            html += page.render(v)[-1].children[0].data
        assert seen == expected
        some = next(iter(expected.items()))
        assert f'href="/alerts/{some[1][0]}"' in html and "inhibited by " in html
        # a scoped user sees the same rows' flag, with only its own tenants' inhibitors
        tenant = next(a.tenant_id for a in firing if a.id in expected and a.tenant_id != ALL)
        scoped = alert_pages.alert_list(
            svc, (tenant,), ListFilters(state="firing", per_page=200), NOW
        )
        for r in scoped.rows:
            assert r.inhibited == (r.alert.id in expected)
            assert all(t.tenant_id == tenant for t in r.inhibitors)
    finally:
        svc.close()
