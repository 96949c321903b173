"""KPI checks: behaviour of each check, and the vectorised series path equals the scalar one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.kpis.checks import (
    AnomalyCheck,
    BoundsCheck,
    ChangeCheck,
    ShiftCheck,
    TargetCheck,
    robust_z,
    run_check,
    run_checks_series,
    worst,
)


def test_robust_z_against_hand_computation() -> None:
    hist = [10.0, 11, 9, 10, 12, 10, 9, 11]
    z, med, scale = robust_z(14.0, hist)
    # median 10, MAD 1, n = 8 small-sample factor 1.129, consistency 0.6745
    assert med == 10.0
    assert scale == pytest.approx(1.129 / 0.6745)
    assert z == pytest.approx(4.0 / scale)
    # MAD zero: the mean absolute deviation takes over; all equal: any move is infinite
    assert math.isfinite(robust_z(11.0, [10, 10, 10, 10, 10, 12])[0])
    assert robust_z(11.0, [10, 10, 10, 10])[0] == math.inf
    assert robust_z(10.0, [10, 10, 10, 10])[0] == 0.0


def test_bounds_and_target() -> None:
    b = BoundsCheck(lower=1.0, upper=2.0)
    assert run_check(b, 0.5, [], direction="higher", window="day").status == "alert"
    assert run_check(b, 2.5, [], direction="higher", window="day").status == "alert"
    assert run_check(b, 1.5, [], direction="higher", window="day").status == "ok"
    t = TargetCheck(warn_below=1.0, alert_below=0.9)
    assert run_check(t, 0.95, [], direction="higher", window="day", target=1.0).status == "warn"
    assert run_check(t, 0.85, [], direction="higher", window="day", target=1.0).status == "alert"
    # lower is better: 120 ms against a 100 ms target is 83 % attainment
    out = run_check(t, 120.0, [], direction="lower", window="day", target=100.0)
    assert out.status == "alert" and out.value == pytest.approx(100 / 120)


def test_relative_change_is_direction_aware() -> None:
    c = ChangeCheck(baseline_windows=4, max_change=0.10)
    hist = [100.0, 100, 100, 100]
    assert run_check(c, 89.0, hist, direction="higher", window="day").status == "alert"
    assert run_check(c, 111.0, hist, direction="higher", window="day").status == "ok"
    assert run_check(c, 111.0, hist, direction="lower", window="day").status == "alert"
    assert run_check(c, 95.0, hist[:3], direction="higher", window="day").status == "no_data"
    out = run_check(c, 89.0, hist, direction="higher", window="day")
    assert out.value == pytest.approx(-0.11) and "mean of the previous 4" in out.message


def test_anomaly_uses_the_same_weekday_for_daily_windows() -> None:
    # weekdays 100, weekends 50: a weekend at 50 is normal, a weekday at 50 is not
    week = [100.0, 100, 100, 100, 100, 50, 50]
    rng = np.random.default_rng(0)
    series = np.array(week * 8) * (1 + rng.normal(0, 0.01, 56))
    check = AnomalyCheck()
    sat = run_check(check, 50.0, series[:54], direction="higher", window="day")  # index 54: Sat
    assert sat.status == "ok" and "same weekday" in sat.message
    mon = run_check(check, 50.0, series[:49], direction="higher", window="day")  # a Monday
    assert mon.status == "alert"
    flat = AnomalyCheck(seasonal="none")
    assert run_check(flat, 50.0, series[:54], direction="higher", window="day").status == "alert"
    # a good-direction move is not an alert unless two-sided
    assert run_check(check, 150.0, series[:49], direction="higher", window="day").status == "ok"
    two = AnomalyCheck(two_sided=True)
    assert run_check(two, 150.0, series[:49], direction="higher", window="day").status == "alert"


def test_noise_floor_keeps_sampling_noise_quiet() -> None:
    hist = [0.300, 0.301, 0.299, 0.300, 0.300, 0.301, 0.299, 0.300]  # a suspiciously tight past
    check = AnomalyCheck()
    assert run_check(check, 0.29, hist, direction="higher", window="week").status == "alert"
    # with 2,000 sessions, 0.29 is 1 standard error away: not an anomaly
    se = math.sqrt(0.3 * 0.7 / 2000)
    out = run_check(check, 0.29, hist, direction="higher", window="week", noise=se)
    assert out.status == "ok"


@pytest.mark.parametrize(
    "check",
    [
        AnomalyCheck(),
        AnomalyCheck(seasonal="none", z_warn=2.0, min_change=0.01),
        AnomalyCheck(two_sided=True, history=12, min_history=3),
        ChangeCheck(seasonal=True),
        BoundsCheck(lower=0.5),
        ShiftCheck(baseline_windows=14, lookback=60),
    ],
    ids=lambda c: c.type,
)
def test_series_path_equals_scalar_path(check: object) -> None:
    rng = np.random.default_rng(3)
    values = 1 + 0.2 * np.sin(np.arange(120) * 2 * np.pi / 7) + rng.normal(0, 0.05, 120)
    values[[5, 17, 40]] = np.nan
    values[[60, 61]] *= 0.7
    values[80:88] = 1.0  # a flat stretch: MAD 0
    noise = np.full(120, 0.01)
    idx = [i for i in range(120) if np.isfinite(values[i])]
    batch = run_checks_series(check, values, idx, direction="higher", window="day", noise=noise)
    for i, got in zip(idx, batch, strict=True):
        want = run_check(
            check, float(values[i]), values[:i], direction="higher", window="day", noise=0.01
        )
        assert got.status == want.status, i
        assert got.message == want.message, i
        if want.value is None:
            assert got.value is None
        else:
            assert got.value == pytest.approx(want.value, rel=1e-9, abs=1e-12), i


def test_worst() -> None:
    assert worst([]) == "ok"
    assert worst(["no_data", "ok", "warn"]) == "warn"
    assert worst(["alert", "warn"]) == "alert"
