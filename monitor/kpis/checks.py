"""KPI checks: pure functions from a KPI's current value and its history to a status.

Each check is a typed config (pydantic, parsed by its ``type`` key) and a pure function
``(config, current, history, context) -> CheckOutcome``. ``history`` holds the previous windows'
values, oldest first, ``nan`` where a window had no value (too few events).

=============  ===========================================================================
``bounds``     value below ``lower`` or above ``upper``
``change``     relative change against the mean of the previous ``baseline_windows``
               windows (or the same weekday's, ``seasonal``), in the bad direction
``target``     attainment = value / target (inverted when lower is better)
``anomaly``    robust z-score ``0.6745 (x - median) / MAD`` against the history; for daily
               windows against the same weekday of previous weeks, so a weekly pattern is
               normal and not an alert
=============  ===========================================================================

The checks' configs are :mod:`monitor.kpis.check_config` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.kpis.check_config import (
    AnomalyCheck,
    BoundsCheck,
    ChangeCheck,
    CheckConfig,
    Direction,
    ShiftCheck,
    TargetCheck,
)
from monitor.kpis.shift import ShiftParams, describe, scan_shifts
from monitor.readable import fmt_change, fmt_pct, fmt_signed, fmt_value
from storage.types import Status

__all__ = [
    "AnomalyCheck",
    "BoundsCheck",
    "ChangeCheck",
    "CheckConfig",
    "CheckOutcome",
    "ShiftCheck",
    "TargetCheck",
    "history_needed",
    "robust_z",
    "run_check",
    "run_checks_series",
    "worst",
]

_RANK = {"no_data": -1, "ok": 0, "warn": 1, "alert": 2}
# 0.6745 = Φ⁻¹(0.75): makes the MAD a consistent estimate of the standard deviation
# (Iglewicz & Hoaglin); 1.2533 = √(π/2) does the same for the mean absolute deviation.
_MAD_K = 0.6745
_MEANAD_K = 0.7979
# a KPI's past values: a list, or a slice of the series' array
Floats = Sequence[float] | npt.NDArray[np.float64]


@dataclass(frozen=True)
class CheckOutcome:
    """One check on one window: its statistic, threshold, status and a short message."""

    metric: str
    status: Status
    value: float | None
    threshold: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def worst(statuses: Sequence[str]) -> Status:
    """The most severe status; ``ok`` when there is none."""
    best: Status = "ok"
    for s in statuses:
        if _RANK[s] > _RANK[best]:
            best = s  # type: ignore[assignment]
    return best


def _finite(values: Floats) -> npt.NDArray[Any]:
    a = np.asarray(values, dtype=np.float64)
    result: npt.NDArray[Any] = a[np.isfinite(a)]
    return result


def _comparable(history: Floats, count: int, step: int) -> npt.NDArray[Any]:
    """The last ``count`` windows ``step`` apart before the current one (oldest first)."""
    if step <= 0:
        step = 1
    picked = [history[-k] for k in range(step, step * count + 1, step) if k <= len(history)]
    return _finite(picked[::-1])


def history_needed(check: Any, window: str) -> int:
    """How many previous windows a check reads."""
    if isinstance(check, AnomalyCheck):
        return check.history * _step(check.seasonal, window)
    if isinstance(check, ChangeCheck):
        return check.baseline_windows * (7 if check.seasonal and window == "day" else 1)
    if isinstance(check, ShiftCheck):
        return check.lookback * check.step(window)
    return 0


def _step(seasonal: str, window: str) -> int:
    if seasonal == "weekday" or (seasonal == "auto" and window == "day"):
        return 7 if window == "day" else 168 if window == "hour" else 1
    return 1


# Croux & Rousseeuw (1992): the MAD of a few values underestimates the spread; multiply by
# b_n (tabulated for n <= 9, n / (n - 0.8) above) so 4-8 weeks of history do not make ordinary
# noise look anomalous.
_B_N = {2: 1.196, 3: 1.495, 4: 1.363, 5: 1.206, 6: 1.200, 7: 1.140, 8: 1.129, 9: 1.107}


def _small_sample(n: int) -> float:
    return _B_N.get(n, n / (n - 0.8) if n > 9 else 1.0)


def robust_z(value: float, history: Floats) -> tuple[float, float, float]:
    """Robust z-score of ``value`` against ``history``: ``(z, median, scale)``.

    The scale is b_n · MAD / 0.6745 (b_n: small-sample correction); when the MAD is 0 (over half the history equal) the mean
    absolute deviation / 0.7979 is used, and when that is 0 too any difference is infinite.

    Examples
    --------
    >>> round(robust_z(14.0, [10, 11, 9, 10, 12, 10, 9, 11])[0], 2)
    2.39
    """
    h = _finite(history)
    med = float(np.median(h))
    mad = float(np.median(np.abs(h - med))) * _small_sample(h.size)
    scale = mad / _MAD_K
    if scale == 0.0:
        scale = float(np.mean(np.abs(h - med))) / _MEANAD_K
    if scale == 0.0:
        z = 0.0 if value == med else math.copysign(math.inf, value - med)
    else:
        z = (value - med) / scale
    return z, med, scale


def _bad(delta: float, direction: Direction) -> float:
    """``delta`` signed so that positive is bad for a KPI of this direction."""
    return -delta if direction == "higher" else delta


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# Messages say levels with the KPI's unit and changes as the KPI pages do (a rate's by
# percentage points, readable.fmt_change), negatives with the minus sign.
def _vs_median(current: float, med: float, n: int, season: str, z: float, unit: str) -> str:
    return (
        f"{fmt_change(current - med, med, unit)} vs the median of {n} windows of {season} "
        f"({fmt_value(med, unit)}, robust z {fmt_signed(z, 1)})"
    )


def run_check(
    check: Any,
    current: float,
    history: Floats,
    *,
    direction: Direction,
    window: str,
    target: float | None = None,
    noise: float | None = None,
    unit: str = "",
) -> CheckOutcome:
    """Run one check on a window's value.

    Parameters
    ----------
    check
        A :data:`CheckConfig`.
    current
        The window's value (finite).
    history
        Previous windows' values, oldest first, ``nan`` for windows without a value.
    direction
        ``higher`` or ``lower`` is better.
    window
        ``hour``, ``day`` or ``week`` (the anomaly check's season).
    target
        The KPI's target, for the ``target`` check.
    noise
        Sampling standard deviation of ``current`` (binomial for rates, Poisson for counts)
        when known: the anomaly check's scale is never below it, so a history that happens
        to be tight (the MAD of 8 windows is itself noisy) does not make ordinary sampling
        noise look anomalous.
    unit
        The KPI's unit: the message shows levels with it (``81.2 %``, not ``0.8123``).

    Returns
    -------
    CheckOutcome
    """
    m = check.metric
    if isinstance(check, BoundsCheck):
        low = check.lower is not None and current < check.lower
        high = check.upper is not None and current > check.upper
        thr = check.lower if low or check.upper is None else check.upper
        if low or high:
            side = "below the lower bound" if low else "above the upper bound"
            return CheckOutcome(
                m,
                check.severity,
                current,
                thr,
                f"{fmt_value(current, unit)} is {side} {fmt_value(thr, unit)}",
            )
        return CheckOutcome(m, "ok", current, thr, "within bounds")
    if isinstance(check, TargetCheck):
        if target is None or target == 0:
            return CheckOutcome(m, "no_data", None, None, "no target set")
        att = (
            current / target
            if direction == "higher"
            else (target / current if current else math.inf)
        )
        status: Status = (
            "alert" if att < check.alert_below else "warn" if att < check.warn_below else "ok"
        )
        return CheckOutcome(
            m,
            status,
            _num(att),
            check.alert_below,
            f"{fmt_pct(att, signed=False, digits=0)} of target {fmt_value(target, unit)}",
        )
    if isinstance(check, ChangeCheck):
        step = 7 if check.seasonal and window == "day" else 1
        base = _comparable(history, check.baseline_windows, step)
        if base.size < check.baseline_windows:
            return CheckOutcome(m, "no_data", None, check.max_change, "not enough history")
        mean = float(base.mean())
        if mean == 0:
            return CheckOutcome(m, "no_data", None, check.max_change, "baseline is zero")
        change = (current - mean) / abs(mean)
        bad = _bad(change, direction)
        status = "alert" if bad >= check.max_change else "ok"
        if status == "ok" and check.warn_change is not None and bad >= check.warn_change:
            status = "warn"
        return CheckOutcome(
            m,
            status,
            change,
            check.max_change,
            # the statistic is relative (max_change); a rate also says it in points
            (
                f"{fmt_change(current - mean, mean, unit)} ({fmt_pct(change)} relative)"
                if unit == "%"
                else fmt_pct(change)
            )
            + f" vs the mean of the previous {base.size} windows ({fmt_value(mean, unit)})",
            {"baseline": mean},
        )
    if isinstance(check, ShiftCheck):
        # The scan reads every window's sampling noise; here only the current one is known,
        # so it stands for all of them (the series path has each window's own).
        values = np.append(np.asarray(history, dtype=np.float64), current)
        nz = None if noise is None else np.full(values.size, noise, dtype=np.float64)
        return _shift_outcomes(
            check,
            values,
            [values.size - 1],
            direction=direction,
            window=window,
            target=target,
            noise=nz,
            unit=unit,
        )[0]
    assert isinstance(check, AnomalyCheck)
    step = _step(check.seasonal, window)
    past = _comparable(history, check.history, step)
    if past.size < check.min_history:
        return CheckOutcome(m, "no_data", None, check.z_alert, "not enough history")
    z, med, scale = robust_z(current, past)
    if noise is not None and math.isfinite(noise) and noise > scale:
        scale = noise
        z = (current - med) / scale
    rel = (current - med) / abs(med) if med else math.inf
    signed = abs(z) if check.two_sided else _bad(z, direction)
    big_enough = abs(rel) >= check.min_change
    status = "ok"
    if big_enough and signed >= check.z_alert:
        status = "alert"
    elif big_enough and check.z_warn is not None and signed >= check.z_warn:
        status = "warn"
    season = (
        "the same weekday"
        if step == 7
        else "the same hour of the week"
        if step == 168
        else "previous windows"
    )
    return CheckOutcome(
        m,
        status,
        _num(z) if math.isfinite(z) else math.copysign(1e9, z),
        check.z_alert,
        _vs_median(current, med, past.size, season, z, unit),
        {"median": med, "scale": scale, "relative": _num(rel), "season_step": step},
    )


def _row_median(a: npt.NDArray[Any], counts: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Median of the finite values of each row (``nan`` rows sort last); 0 for empty rows.
    ``np.nanmedian`` on many tiny rows goes through masked arrays and is 50x slower."""
    s = np.sort(np.where(np.isfinite(a), a, np.inf), axis=1)
    c = np.maximum(counts, 1)
    lo = np.take_along_axis(s, ((c - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, (c // 2)[:, None], axis=1)[:, 0]
    return np.where(counts > 0, (lo + hi) / 2.0, 0.0)


def run_checks_series(
    check: Any,
    values: npt.NDArray[Any],
    indices: Sequence[int],
    *,
    direction: Direction,
    window: str,
    target: float | None = None,
    noise: npt.NDArray[Any] | None = None,
    unit: str = "",
) -> list[CheckOutcome]:
    """:func:`run_check` for many windows of one series at once (same outcomes).

    ``values`` is the whole series (``nan`` where no value); ``indices`` the windows to judge
    (each with a finite value); window ``i``'s history is ``values[:i]``. The anomaly check is
    vectorised (a KPI over 50 tenants × 90 days is 4,500 robust z-scores); the others are
    cheap and run one by one.
    """
    if isinstance(check, ShiftCheck):
        return _shift_outcomes(
            check,
            values,
            indices,
            direction=direction,
            window=window,
            target=target,
            noise=noise,
            unit=unit,
        )
    idx = np.asarray(indices, dtype=np.int64)
    if not isinstance(check, AnomalyCheck) or idx.size == 0:
        return [
            run_check(
                check,
                float(values[i]),
                values[:i],
                direction=direction,
                window=window,
                target=target,
                noise=None if noise is None else float(noise[i]),
                unit=unit,
            )
            for i in idx
        ]
    step = _step(check.seasonal, window)
    offsets = step * np.arange(check.history, 0, -1)  # oldest first, as _comparable
    pos = idx[:, None] - offsets[None, :]
    past = np.where(pos >= 0, values[np.clip(pos, 0, None)], np.nan)
    ok = np.isfinite(past)
    counts = ok.sum(axis=1)
    med = _row_median(past, counts)
    dev = np.abs(past - med[:, None])
    b_n = np.array([_small_sample(int(c)) for c in counts])
    scale = _row_median(dev, counts) * b_n / _MAD_K
    mean_ad = np.where(ok, dev, 0.0).sum(axis=1) / np.maximum(counts, 1) / _MEANAD_K
    scale = np.where(scale == 0.0, mean_ad, scale)
    cur = values[idx]
    if noise is not None:
        nz = noise[idx]
        scale = np.where(np.isfinite(nz) & (nz > scale), nz, scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(
            scale > 0,
            (cur - med) / np.where(scale > 0, scale, 1.0),
            np.where(cur == med, 0.0, np.copysign(np.inf, cur - med)),
        )
        rel = np.where(med != 0, (cur - med) / np.abs(np.where(med != 0, med, 1.0)), np.inf)
    signed = np.abs(z) if check.two_sided else (-z if direction == "higher" else z)
    big = np.abs(rel) >= check.min_change
    season = (
        "the same weekday"
        if step == 7
        else "the same hour of the week"
        if step == 168
        else "previous windows"
    )
    # Statuses and values as arrays, then plain Python lists: one CheckOutcome per window
    # without per-element numpy scalars (4,500 windows per KPI).
    status_arr = np.where(
        big & (signed >= check.z_alert),
        "alert",
        np.where(
            big & (check.z_warn is not None) & (signed >= (check.z_warn or np.inf)), "warn", "ok"
        ),
    )
    z_out = np.where(np.isfinite(z), z, np.copysign(1e9, z))
    m, thr = check.metric, check.z_alert
    out: list[CheckOutcome] = []
    for n, st, zk, zo, rk, md, sc, cv in zip(
        counts.tolist(),
        status_arr.tolist(),
        z.tolist(),
        z_out.tolist(),
        rel.tolist(),
        med.tolist(),
        scale.tolist(),
        cur.tolist(),
        strict=True,
    ):
        if n < check.min_history:
            out.append(CheckOutcome(m, "no_data", None, thr, "not enough history"))
            continue
        out.append(
            CheckOutcome(
                m,
                st,
                zo,
                thr,
                _vs_median(cv, md, n, season, zk, unit),
                {
                    "median": md,
                    "scale": sc,
                    "relative": rk if rk not in (math.inf, -math.inf) and rk == rk else None,
                    "season_step": step,
                },
            )
        )
    return out


def _shift_outcomes(
    check: ShiftCheck,
    values: npt.NDArray[Any],
    indices: Sequence[int],
    *,
    direction: Direction,
    window: str,
    target: float | None,
    noise: npt.NDArray[Any] | None,
    unit: str = "",
) -> list[CheckOutcome]:
    """The sustained-shift check on windows ``indices`` (see :mod:`monitor.kpis.shift`).

    Value: the relative change against the baseline (the level before the change while
    shifted); threshold: the CUSUM decision interval ``h``; ``details.onset_windows_ago``:
    windows since the change began.
    """
    step = check.step(window)
    params = ShiftParams(
        baseline_windows=check.baseline_windows,
        min_baseline=check.min_baseline,
        k=check.k,
        h=check.h,
        recover_windows=check.recover_windows,
        recover_z=check.recover_z,
        lookback=check.lookback,
        direction=direction,
        target=target,
    )
    found = scan_shifts(values, indices, params, step=step, noise=noise)
    out: list[CheckOutcome] = []
    for i, o in zip(indices, found, strict=True):
        if step != 1:  # offsets in windows of the sub-series → windows of the series
            o = replace(
                o,
                onset=None if o.onset is None else o.onset * step,
                excursion=None if o.excursion is None else o.excursion * step,
            )
        message, details = describe(o, float(values[i]), check.recover_windows, unit)
        if o.state == "learning":
            out.append(CheckOutcome(check.metric, "no_data", None, check.h, message, details))
            continue
        status: Status = check.severity if o.state == "shifted" else "ok"
        rel = details.get("relative")
        value = None if rel is None else _num(rel)
        out.append(CheckOutcome(check.metric, status, value, check.h, message, details))
    return out
