"""The link's ranking on synthetic series: a leading signal is found at its lag and ranked
first, a breach adds weight, noise stays behind, a KPI that did not move is not listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.kpis.link import (
    SignalKey,
    deseasonalize,
    rank_related_kpis,
    rank_related_signals,
    signal_series,
)
from storage.types import MetricResult

START = datetime(2026, 1, 5, tzinfo=UTC)
GRID = [START + timedelta(days=i) for i in range(40)]


def _key(column: str) -> SignalKey:
    return SignalKey("churn", "drift", "feature_drift", column, "psi")


def test_leading_signal_ranks_first_at_its_lag() -> None:
    rng = np.random.default_rng(0)
    driver = np.r_[np.zeros(30), np.ones(10)] + rng.normal(0, 0.05, 40)
    kpi = 1.0 - 0.2 * np.r_[np.zeros(2), driver[:-2]] + rng.normal(0, 0.01, 40)  # 2 days later
    noise = rng.normal(0, 1, 40)
    signals = {
        _key("age"): (driver, ["alert" if v > 0.5 else "ok" for v in driver]),
        _key("plan"): (noise, ["ok"] * 40),
    }
    ranked = rank_related_signals(kpi, signals, GRID, 39, max_lag=3, span=28)
    assert [r.key.column for r in ranked] == ["age", "plan"]
    top = ranked[0]
    assert top.lag == 2 and top.correlation is not None and top.correlation < -0.9
    assert top.breached == "alert" and top.breached_since == GRID[30]
    assert ranked[1].score < 0.5


def test_kpis_that_did_not_move_are_not_listed() -> None:
    rng = np.random.default_rng(1)
    signal = np.r_[np.zeros(30), np.ones(10)]
    moved = np.r_[np.ones(31), np.full(9, 0.8)] + rng.normal(0, 0.005, 40)
    flat = np.ones(40) + rng.normal(0, 0.005, 40)
    kpis = {
        ("conversion", "acme"): (moved, ["ok"] * 31 + ["alert"] * 9),
        ("sessions", "acme"): (flat, ["ok"] * 40),
    }
    listed = rank_related_kpis((signal, [""] * 40), kpis, GRID, 30, 33, max_lag=3, span=28)
    assert [(k.kpi, k.status) for k in listed] == [("conversion", "alert")]
    assert listed[0].change is not None and listed[0].change < -0.15


def test_weekly_pattern_is_divided_out() -> None:
    week = np.array([1.0, 1, 1, 1, 1, 0.5, 0.5])
    values = np.tile(week, 6)[:40]
    flat = deseasonalize(values, GRID, "day")
    assert np.allclose(flat, 1.0)
    assert deseasonalize(values, GRID, "week") is values


def test_signal_series_averages_hourly_results_into_days_and_keeps_the_worst_status() -> None:
    rows = [
        MetricResult(
            source="monitor",
            source_name="drift",
            kind="feature_drift",
            model="churn",
            window_start=START + timedelta(hours=h),
            window_end=START + timedelta(hours=h + 1),
            tenant_id="acme",
            model_version=v,
            column="age",
            metric="psi",
            value=float(h),
            threshold=0.2,
            status="alert" if h == 5 else "ok",
        )
        for h in range(24)
        for v in ("*", "v2")
    ]
    series = signal_series(rows, GRID[:2], timedelta(days=1))
    values, statuses = series[_key("age")]
    assert values[0] == np.mean(range(24)) and np.isnan(values[1])
    assert statuses == ["alert", ""]
