"""Windows (monitor.windows): calendar months and N-day windows, the same for monitors and
KPIs; the SQL bucketing of KPIs agrees with the Python definition; a monthly monitor and
monthly / 14-day KPIs evaluate the right windows with the right values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from monitor import windows
from monitor.cli import app
from monitor.kpis.service import KpiService
from monitor.monitors import parse_monitor
from monitor.schemas import ModelIn
from monitor.service import Caller, Services
from monitor.settings import Settings
from monitor.timerange import parse_time_range
from storage.kpi_sql import _bucket, window_start
from storage.metadata.monitoring import MonitoringStore
from tests.kpis.conftest import START, kpis, metadata_url, seasonal_events, stores

__all__ = ["kpis", "metadata_url", "stores"]  # fixtures

D = datetime


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_month_windows() -> None:
    m = windows.window("month")
    assert m.floor(utc(2026, 2, 28, 23, 59)) == utc(2026, 2, 1)
    assert m.end(utc(2026, 2, 1)) == utc(2026, 3, 1)
    assert m.end(utc(2024, 2, 1)) - utc(2024, 2, 1) == timedelta(days=29)  # leap year
    assert m.shift(utc(2026, 1, 15), -1) == utc(2025, 12, 1)
    assert m.shift(utc(2026, 11, 3), 14) == utc(2028, 1, 1)
    assert list(m.starts(utc(2025, 11, 20), utc(2026, 2, 1))) == [
        utc(2025, 11, 1),
        utc(2025, 12, 1),
        utc(2026, 1, 1),
    ]
    assert m.whole(utc(2025, 11, 1), utc(2026, 1, 15)) == [utc(2025, 11, 1), utc(2025, 12, 1)]
    assert m.index(utc(1970, 1, 31)) == 0 and m.at_index(m.index(utc(2026, 7, 4))) == utc(
        2026, 7, 1
    )


def test_n_day_windows() -> None:
    assert windows.window("7d").floor(utc(2026, 3, 5, 12)) == windows.window("week").floor(
        utc(2026, 3, 5, 12)
    )
    two = windows.window("14d")
    w = two.floor(utc(2026, 3, 5))
    assert w.weekday() == 0 and w <= utc(2026, 3, 5) < two.end(w) == w + timedelta(days=14)
    assert windows.window("1d").floor(utc(2026, 3, 5, 7)) == utc(2026, 3, 5)
    assert windows.window("30d").count(utc(2026, 1, 1), utc(2026, 12, 31)) in (12, 13)
    for bad in ("0d", "367d", "fortnight", "2w", "month "):
        with pytest.raises(ValueError, match="hour, day, week, month or Nd"):
            windows.window(bad)


def test_due_windows_wait_for_the_grace() -> None:
    grace = timedelta(minutes=10)
    assert windows.due_windows("month", utc(2026, 1, 10), utc(2026, 2, 1, 0, 9), grace) == []
    assert windows.due_windows("month", utc(2026, 1, 10), utc(2026, 3, 1, 0, 10), grace) == [
        utc(2026, 1, 1),
        utc(2026, 2, 1),
    ]


@pytest.mark.parametrize("name", ["hour", "day", "week", "month", "3d", "14d", "30d"])
def test_sql_buckets_are_the_python_windows(name: str) -> None:
    """storage.kpi_sql numbers windows in SQL; each must be the window monitor.windows says."""
    rng = np.random.default_rng(1)
    us = rng.integers(
        int(utc(2019, 12, 25).timestamp() * 1e6), int(utc(2027, 1, 7).timestamp() * 1e6), 2000
    )
    edges = [
        utc(2024, 2, 29, 23, 59, 59, 999999),
        utc(2024, 3, 1),
        utc(2026, 1, 5),
        utc(2025, 12, 31, 23, 59, 59),
    ]
    ts = [*pd.to_datetime(us, unit="us", utc=True).to_pydatetime(), *edges]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    stamps = pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC"))})  # noqa: F841
    got = con.execute(f"SELECT ts, {_bucket(name, 'ts')} AS w FROM stamps").fetchall()
    w = windows.window(name)
    for t, idx in got:
        assert window_start(name, idx) == w.floor(t), (t, idx)


def test_kpi_month_and_14_day_windows_match_pandas(kpis: KpiService) -> None:
    events = seasonal_events({"acme": (60, 0.3)}, days=90)
    kpis.logstore.append_events(events)
    for name, window in (("monthly", "month"), ("fortnightly", "14d")):
        kpis.create(
            {
                "name": name,
                "formula": "rate(conversion, session)",
                "window": window,
                "min_events": 1,
                "checks": [],
            },
            "test",
        )
    kpis.compute(START, START + timedelta(days=90))
    frame = events.to_pandas()
    for name, window in (("monthly", "month"), ("fortnightly", "14d")):
        w = windows.window(window)
        frame["w"] = [w.floor(t) for t in frame.ts]
        counts = frame.groupby(["w", "name"]).size().unstack()
        rows = kpis.series(name, "acme")
        assert rows, name
        for r in rows:
            assert r.window_end == w.end(r.window_start)
            expected = counts.conversion[r.window_start] / counts.session[r.window_start]
            assert r.value == pytest.approx(expected, rel=1e-12), (name, r.window_start)
        whole = w.whole(START, START + timedelta(days=90))
        assert [r.window_start for r in rows] == whole


def test_kpi_run_due_month(kpis: KpiService) -> None:
    kpis.logstore.append_events(seasonal_events({"acme": (30, 0.3)}, days=90))
    kpis.create(
        {"name": "m", "formula": "rate(conversion, session)", "window": "month", "checks": []},
        "test",
    )
    # first run: the last closed month (February is within the 10-minute grace)
    assert kpis.run_due(utc(2026, 3, 1, 0, 5)) == 1
    assert kpis.run_due(utc(2026, 3, 1, 0, 11)) == 1  # February
    assert kpis.run_due(utc(2026, 3, 20)) == 0
    assert kpis.run_due(utc(2026, 4, 1, 1)) == 1
    starts = [r.window_start for r in kpis.series("m", "acme")]
    assert starts == [utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 3, 1)]


def test_monitor_month_window_backfill(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = Services.open(Settings(data_dir=data))
    try:
        services.register_model(
            ModelIn.model_validate(
                {
                    "name": "churn",
                    "task": "binary",
                    "features": [{"name": "age", "kind": "numeric"}],
                }
            ),
            Caller.local(),
        )
        rng = np.random.default_rng(0)
        n = 3000
        first = utc(2026, 1, 1)
        secs = rng.uniform(0, 90 * 86400, n)
        services.logstore.append_inferences(
            "churn",
            pa.table(
                {
                    "request_id": [f"r{i}" for i in range(n)],
                    "ts": pa.array(
                        [first + timedelta(seconds=float(s)) for s in secs],
                        pa.timestamp("us", tz="UTC"),
                    ),
                    "tenant_id": ["acme"] * n,
                    "age": rng.normal(40, 10, n),
                    "prediction": pa.array(rng.integers(0, 2, n), pa.int32()),
                }
            ),
        )
        services.logstore.put_reference("churn", "train", pa.table({"age": rng.normal(40, 10, n)}))
    finally:
        services.close()
    spec = {
        "name": "monthly-drift",
        "model": "churn",
        "kind": "feature_drift",
        "window": "month",
        "reference": {"dataset": "train"},
        "segments": ["all"],
    }
    assert parse_monitor(spec).window == "month"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"monitors": [spec]}))
    runner = CliRunner()
    for args in (
        ["apply", "-f", str(path)],
        ["backfill", "--from", "2026-01-01", "--to", "2026-04-01", "-m", "monthly-drift", "-q"],
    ):
        r = runner.invoke(app, [*args, "--data-dir", str(data)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    services = Services.open(Settings(data_dir=data))
    try:
        runs, _ = MonitoringStore(services.metadata).list_runs(monitor="monthly-drift")
        got = sorted((r.window_start, r.window_end, r.status) for r in runs)
        assert got == [
            (utc(2026, 1, 1), utc(2026, 2, 1), "ok"),
            (utc(2026, 2, 1), utc(2026, 3, 1), "ok"),
            (utc(2026, 3, 1), utc(2026, 4, 1), "ok"),
        ]
    finally:
        services.close()


def test_dashboard_range_in_months() -> None:
    now = utc(2026, 3, 31, 12)
    r = parse_time_range({"range": "1m"}, now, 400)
    assert r.end == now and r.start.date() == D(2026, 2, 28).date()
    assert "last 1 month" in r.label
    assert parse_time_range({"range": "6m"}, now, 400).start == utc(2025, 9, 30, 12)


def test_kpi_windows_get_late_data_rerun(kpis: KpiService) -> None:
    """As monitors: a computed KPI window whose events arrive later is computed again at the
    next tick (trigger ``late``), once."""
    events = seasonal_events({"acme": (100, 0.3)}, days=6)
    kpis.logstore.append_events(events)
    kpis.create(
        {"name": "conv", "formula": "rate(conversion, session)", "checks": [], "min_events": 1},
        "test",
    )
    day = timedelta(days=1)
    now = START + 6 * day + timedelta(minutes=11)
    kpis.run_due(now - 3 * day)  # first run: day 2
    kpis.run_due(now)  # days 3..5
    before = {r.window_start: r.value for r in kpis.series("conv", "acme")}
    assert sorted(before) == [START + k * day for k in range(2, 6)]
    assert kpis.late_windows(kpis.definition("conv"), now) == []
    # 200 late conversions on day 3
    late = pa.table(
        {
            "event_id": [f"late-{i}" for i in range(200)],
            "tenant_id": ["acme"] * 200,
            "ts": pa.array([START + 3 * day + timedelta(hours=5)] * 200, pa.timestamp("us", "UTC")),
            "name": ["conversion"] * 200,
            "value": [1.0] * 200,
        }
    )
    kpis.logstore.append_events(late)
    assert kpis.late_windows(kpis.definition("conv"), now) == [START + 3 * day]
    assert kpis.run_due(now) == 1
    after = {r.window_start: r.value for r in kpis.series("conv", "acme")}
    frame = pa.concat_tables([events, late]).to_pandas()
    on_day3 = frame[(frame.ts >= START + 3 * day) & (frame.ts < START + 4 * day)]
    counts = on_day3.name.value_counts()
    assert after[START + 3 * day] == pytest.approx(counts.conversion / counts.session)
    assert after[START + 3 * day] > before[START + 3 * day]
    assert {w: v for w, v in after.items() if w != START + 3 * day} == {
        w: v for w, v in before.items() if w != START + 3 * day
    }
    runs, _ = kpis.results.list_runs(monitor="kpi:conv", limit=100)
    assert sorted(r.trigger for r in runs).count("late") == 1
    assert kpis.run_due(now) == 0  # computed again once, not at every tick
