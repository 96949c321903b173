"""Must-show: 3 tenants × 90 days of events with weekly seasonality. The seasonal pattern alone
raises no KPI alert; a 15 % drop in one tenant's conversion on known days is flagged for that
tenant and those days only; a tenant with too few events gives no_data."""

from __future__ import annotations

import functools
from datetime import timedelta

import pyarrow as pa

from monitor.kpis.service import KpiService
from tests.kpis.conftest import DAYS, START, seasonal_events

DROP_DAYS = {70, 71}  # a Thursday and a Friday
TENANTS = {"acme": (8000, 0.3), "globex": (7000, 0.25), "tiny": (12, 0.3)}
CONVERSION = {
    "name": "conversion_rate",
    "description": "Sessions that convert",
    "unit": "%",
    "formula": "rate(conversion, session)",
    "min_events": 100,
}
SESSIONS = {"name": "sessions", "formula": "count(session)", "min_events": 100}


@functools.cache
def _events() -> pa.Table:
    return seasonal_events(TENANTS, drops={"globex": dict.fromkeys(DROP_DAYS, 0.85)})


def _load(kpis: KpiService) -> None:
    kpis.logstore.append_events(_events())


def _flagged(kpis: KpiService, name: str) -> set[tuple[str, int]]:
    rows = kpis.series(name)
    return {
        (r.tenant_id, (r.window_start - START).days) for r in rows if r.status in ("alert", "warn")
    }


def test_seasonality_is_not_an_alert_and_the_drop_is(kpis: KpiService) -> None:
    _load(kpis)
    kpis.create(CONVERSION, "test")
    kpis.create(SESSIONS, "test")
    written = kpis.compute(START, START + timedelta(days=DAYS))
    # 2 KPIs × 3 tenants × 90 windows × (KPI row + anomaly and shift check rows)
    assert written == 2 * 3 * DAYS * 3

    assert _flagged(kpis, "conversion_rate") == {("globex", d) for d in DROP_DAYS}
    assert _flagged(kpis, "sessions") == set()

    rows = {(r.tenant_id, (r.window_start - START).days): r for r in kpis.series("conversion_rate")}
    for day in DROP_DAYS:
        r = rows[("globex", day)]
        assert r.status == "alert"
        # two days are an anomaly, not a sustained shift
        assert r.details["checks"] == {"anomaly": "alert", "shift": "ok"}
        assert "same weekday" in r.details["message"]
    # the tenant with ~12 sessions a day: every window no_data, never a false alarm
    tiny = [r for (t, _), r in rows.items() if t == "tiny"]
    assert len(tiny) == DAYS
    assert {r.status for r in tiny} == {"no_data"}
    assert all(r.value is None and r.details["support"] < 100 for r in tiny)


def test_without_the_weekday_season_the_weekend_would_alert(kpis: KpiService) -> None:
    # The same data judged against the previous days instead of the same weekday: weekends
    # look like drops. This is what the seasonal comparison avoids.
    _load(kpis)
    naive = dict(CONVERSION, name="naive", checks=[{"type": "anomaly", "seasonal": "none"}])
    kpis.create(naive, "test")
    kpis.compute(START, START + timedelta(days=DAYS))
    flagged = _flagged(kpis, "naive")
    weekend = {(t, d) for t, d in flagged if (START + timedelta(days=d)).weekday() >= 5}
    assert len(weekend) >= 10  # of 2 tenants × 24 weekend days with enough history


def test_recompute_replaces_and_other_windows_stay(kpis: KpiService) -> None:
    _load(kpis)
    kpis.create(CONVERSION, "test")
    kpis.compute(START, START + timedelta(days=DAYS))
    before = {(r.tenant_id, r.window_start): r.value for r in kpis.series("conversion_rate")}
    kpis.compute(START + timedelta(days=70), START + timedelta(days=75))
    after = kpis.series("conversion_rate")
    assert len(after) == len(before) == 3 * DAYS
    assert {(r.tenant_id, r.window_start): r.value for r in after} == before
