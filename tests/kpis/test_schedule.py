"""Scheduled KPI computation: each closed window once, oldest first, catch-up after downtime,
nothing before the lateness grace has passed."""

from __future__ import annotations

from datetime import timedelta

from monitor.kpis.service import KpiService
from tests.kpis.conftest import START, seasonal_events

KPI = {"name": "conversion_rate", "formula": "rate(conversion, session)", "min_events": 10}


def test_run_due_catches_up_each_window_once(kpis: KpiService) -> None:
    kpis.logstore.append_events(seasonal_events({"acme": (100, 0.3)}, days=12))
    kpis.create(KPI, "test")
    day = timedelta(days=1)
    # 5 minutes after midnight: day 3 is closed but still within the 10-minute grace
    # rows per window: the KPI, its anomaly check and its shift check
    assert kpis.run_due(START + 4 * day + timedelta(minutes=5)) == 3  # day 2 (first run)
    assert kpis.run_due(START + 4 * day + timedelta(minutes=11)) == 3  # day 3
    assert kpis.run_due(START + 4 * day + timedelta(minutes=30)) == 0
    # down for five days: days 4..8 are computed once each on the next tick
    assert kpis.run_due(START + 9 * day + timedelta(minutes=11)) == 5 * 3
    assert kpis.run_due(START + 9 * day + timedelta(hours=1)) == 0
    runs, _ = kpis.results.list_runs(monitor="kpi:conversion_rate", limit=100)
    assert sorted((r.window_start - START).days for r in runs) == [2, 3, 4]
    assert all(r.status == "ok" and r.trigger == "schedule" for r in runs)
    windows = [(r.window_start - START).days for r in kpis.series("conversion_rate")]
    assert windows == list(range(2, 9))
