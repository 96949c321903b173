"""The sustained-shift check: has a KPI moved to a worse level and stayed there?

The anomaly and change checks compare a window with a rolling past, which a new level soon
becomes part of: a conversion rate that falls from 33 % to 23 % and stays there looks normal
again after a few weeks, and its alert resolves while the business is still hurt. This check
compares with the level **before the change** and keeps that baseline frozen until the KPI
is back.

How it works (per KPI and tenant, on the windows before and including the judged one):

* **watching** — the baseline is the mean and standard deviation of the ``baseline_windows``
  windows before the window being scanned. A one-sided CUSUM (Page, 1954) adds up each
  window's standardised deviation in the bad direction, less an allowance ``k``:
  ``S = max(0, S + z − k)``. While ``S > 0`` the baseline stays the one from before the
  first window of that excursion (its *onset*), so the windows of a slow decline never
  become their own baseline.
* **shifted** — when ``S`` passes ``h`` the baseline is frozen (the level before the onset)
  and every later window is judged against it: the check stays ``alert`` (its ``severity``)
  until ``recover_windows`` windows in a row are back near that level (a bad deviation of
  at most ``recover_z`` standard deviations) or meet the KPI's target.
* **learning** — after a recovery the baseline is learned again from the windows since the
  recovery began (``no_data`` until there are ``min_baseline``), so a new normal that meets
  the target is not compared with the old level forever.

``z = bad(x − mean) / (max(sd, noise) · √(1 + 1/n))``: ``noise`` is the window's own
sampling standard deviation where the formula implies one (binomial for rates, Poisson for
counts), so a baseline that happens to be tight does not turn sampling noise into a shift;
``√(1 + 1/n)`` counts the error of a mean of ``n`` windows (a prediction, not a known mean).

Seasons: for hourly windows (``seasonal: auto``) each hour is compared with the same hour of
earlier days (the scan runs on every 24th window), so a daily cycle is not a shift. For daily
windows the weekday pattern stays in the baseline's standard deviation: it never accumulates
to a false shift (two low weekend days add at most ``2·(z − k)``), at the cost of needing a
larger or longer shift when the weekly pattern is strong.

The scan of a window starts ``lookback`` windows before it, so its result is a function of
the logs only (the scheduler, a catch-up and a backfill agree). An episode longer than
``lookback − baseline_windows`` windows has no pre-change baseline left in view: it is then
the new normal. Scans of neighbouring windows share their states once they agree (they
couple), so a series of ``n`` windows costs about ``n`` steps, not ``n · lookback``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from monitor.readable import fmt_change, fmt_value

__all__ = ["ShiftOutcome", "ShiftParams", "describe", "scan_shifts"]


@dataclass(frozen=True)
class ShiftParams:
    baseline_windows: int
    min_baseline: int
    k: float
    h: float
    recover_windows: int
    recover_z: float
    lookback: int
    direction: str  # higher | lower is better
    target: float | None


@dataclass(frozen=True)
class ShiftOutcome:
    """The scan's verdict on one window.

    ``state``: ``learning`` (too few baseline windows), ``watching`` or ``shifted``;
    ``recovered`` marks the window that ended an episode (its status is ``ok``).
    Offsets count windows of the season step before the judged one: ``onset``, the most
    likely first window of the shift (shifted, recovered) or of the current excursion
    (watching), None when there is none; ``excursion``, the first window of the CUSUM's
    excursion, whose baseline ends before it.
    """

    state: str
    baseline: float | None
    sd: float | None
    cusum: float
    onset: int | None
    recovered: bool
    streak: int  # windows back near the baseline so far (shifted state)
    excursion: int | None = None


class _State(NamedTuple):
    """Where a scan is after a window (compared by value when scans couple)."""

    shifted: bool
    cusum: float
    onset: int  # first window of the CUSUM's excursion (its baseline ends before); -1: none
    change: int  # shifted: the most likely first window of the shift; -1 otherwise
    mu: float | None  # baseline (frozen while shifted); None while learning
    sd: float | None
    n: int  # windows in the baseline
    streak: int  # shifted: windows in a row back near the baseline or at target
    by_target: bool  # a window of that streak counted only because it met the target
    restart: int  # learn the baseline from here on (after a recovery to a new level); -1
    ex_lo: int  # windows of the last episode, left out of later baselines; -1
    ex_hi: int


_START = _State(False, 0.0, -1, -1, None, None, 0, 0, False, -1, -1, -1)


class _Prefix:
    """Running counts, sums and sums of squares of a sub-series' finite values, so the mean
    and standard deviation of any run of positions cost O(1) (values are taken relative to
    the first finite one, which keeps the sums of squares accurate)."""

    def __init__(self, sub: npt.NDArray[Any]) -> None:
        ok = np.isfinite(sub)
        self.ref = float(sub[ok][0]) if ok.any() else 0.0
        d = np.where(ok, sub - self.ref, 0.0)
        zero = np.zeros(1)
        self.cnt = np.concatenate([zero, np.cumsum(ok)]).tolist()
        self.s1 = np.concatenate([zero, np.cumsum(d)]).tolist()
        self.s2 = np.concatenate([zero, np.cumsum(d * d)]).tolist()

    def add(self, a: int, b: int, acc: list[float]) -> None:
        """Add positions ``[a, b)`` to ``acc`` = [count, sum, sum of squares]."""
        if b > a:
            acc[0] += self.cnt[b] - self.cnt[a]
            acc[1] += self.s1[b] - self.s1[a]
            acc[2] += self.s2[b] - self.s2[a]


def _baseline(
    pre: _Prefix, end: int, p: ShiftParams, restart: int, ex_lo: int, ex_hi: int
) -> tuple[float, float, int] | None:
    """Mean, standard deviation and count of the values in the last ``baseline_windows``
    positions before ``end`` that are not in ``[ex_lo, ex_hi]``, looking back at most twice
    that far and not before ``restart`` (``None`` with fewer than ``min_baseline`` values)."""
    size = p.baseline_windows
    lo = max(end - 2 * size, restart, 0)
    acc = [0.0, 0.0, 0.0]
    if ex_lo >= 0 and ex_hi >= lo and ex_lo < end:
        up = min(ex_hi + 1, end)
        taken = min(end - up, size)
        pre.add(end - taken, end, acc)
        below = min(max(ex_lo, lo), end)
        pre.add(max(lo, below - (size - taken)), below, acc)
    else:
        pre.add(max(lo, end - size), end, acc)
    n = int(acc[0])
    if n < p.min_baseline:
        return None
    mean = acc[1] / n
    var = max(acc[2] - acc[1] * mean, 0.0) / (n - 1)
    return pre.ref + mean, math.sqrt(var), n


class _Scanner:
    """Scans one sub-series (every ``step``-th window); caches baselines across scans."""

    def __init__(
        self, sub: npt.NDArray[Any], noise: npt.NDArray[Any] | None, p: ShiftParams
    ) -> None:
        self.sub = sub.tolist()
        self.noise = None if noise is None else noise.tolist()
        self.p = p
        self.pre = _Prefix(sub)
        self.bad_sign = -1.0 if p.direction == "higher" else 1.0
        self._bases: dict[tuple[int, int, int, int], tuple[float, float, int] | None] = {}

    def base(self, end: int, st: _State) -> tuple[float, float, int] | None:
        key = (end, st.restart, st.ex_lo, st.ex_hi)
        if key not in self._bases:
            self._bases[key] = _baseline(self.pre, end, self.p, st.restart, st.ex_lo, st.ex_hi)
        return self._bases[key]

    def z(self, x: float, mu: float, sd: float, n: int, q: int) -> float:
        """Standardised deviation in the bad direction (positive: worse than ``mu``)."""
        nz = math.nan if self.noise is None else float(self.noise[q])
        s = max(sd, nz) if math.isfinite(nz) else sd
        s *= math.sqrt(1.0 + 1.0 / n)
        d = self.bad_sign * (x - mu)
        if s > 0:
            return d / s
        return 0.0 if d == 0 else math.copysign(math.inf, d)

    def at_target(self, x: float, st: _State, q: int) -> bool:
        """``x`` is better than the target by ``recover_z`` of its noise: clearly at target,
        not a noisy window of a level still below it."""
        t = self.p.target
        if t is None:
            return False
        assert st.sd is not None
        return self.z(x, t, st.sd, st.n, q) <= -self.p.recover_z

    def step(self, st: _State, q: int) -> _State:
        """The state after window ``q`` (a window without a value changes nothing)."""
        x = float(self.sub[q])
        if not math.isfinite(x):
            return st
        p = self.p
        if st.shifted:
            assert st.mu is not None and st.sd is not None
            near = self.z(x, st.mu, st.sd, st.n, q) <= p.recover_z
            if not (near or self.at_target(x, st, q)):
                return st._replace(streak=0, by_target=False)
            streak, by_target = st.streak + 1, st.by_target or not near
            if streak < p.recover_windows:
                return st._replace(streak=streak, by_target=by_target)
            first = self._streak_start(q, streak)
            if by_target:
                # Back at target but not at the old level: a new normal, learned from the
                # first window of the streak on.
                return _START._replace(restart=first)
            # Back at the old level: the episode's windows stay out of later baselines.
            return _START._replace(restart=st.restart, ex_lo=st.onset, ex_hi=first - 1)
        ref = st.onset if st.cusum > 0 else q
        b = self.base(ref, st)
        if b is None:
            return st._replace(cusum=0.0, onset=-1, mu=None, sd=None, n=0)
        mu, sd, n = b
        s_new = max(0.0, st.cusum + self.z(x, mu, sd, n, q) - p.k)
        if s_new == 0.0:
            return st._replace(cusum=0.0, onset=-1, mu=mu, sd=sd, n=n)
        onset = q if st.cusum == 0.0 else st.onset
        if s_new > p.h:
            change = self._change_point(onset, q, mu)
            return st._replace(
                shifted=True, cusum=s_new, onset=onset, change=change, mu=mu, sd=sd, n=n
            )
        return st._replace(cusum=s_new, onset=onset, mu=mu, sd=sd, n=n)

    def _change_point(self, lo: int, hi: int, mu: float) -> int:
        """The most likely start of the shift in ``[lo, hi]``: the ``t`` maximising
        ``n · (mean(x[t..hi]) - mu)²`` over windows worse than ``mu`` on average (the
        likelihood ratio of a mean shift at ``t``, Hinkley 1971). The CUSUM's own estimate,
        the last window where it was zero, is often early: noise starts an excursion that
        the shift then carries on."""
        best, best_t = -1.0, lo
        total, count = 0.0, 0
        for t in range(hi, lo - 1, -1):
            x = float(self.sub[t])
            if not math.isfinite(x):
                continue
            total += x
            count += 1
            d = self.bad_sign * (total / count - mu)
            if d > 0 and count * d * d > best:
                best, best_t = count * d * d, t
        return best_t

    def _streak_start(self, q: int, streak: int) -> int:
        """Position of the first of the last ``streak`` windows with a value up to ``q``."""
        seen = 0
        j = q
        while j >= 0:
            if math.isfinite(float(self.sub[j])):
                seen += 1
                if seen == streak:
                    return j
            j -= 1
        return 0


def _outcome(st: _State, q: int, prev: _State) -> ShiftOutcome:
    if st.shifted:
        return ShiftOutcome(
            "shifted", st.mu, st.sd, st.cusum, q - st.change, False, st.streak, q - st.onset
        )
    if prev.shifted:  # this window ended the episode
        return ShiftOutcome(
            "watching",
            prev.mu,
            prev.sd,
            0.0,
            q - prev.change,
            True,
            prev.streak + 1,
            q - prev.onset,
        )
    if st.mu is None:
        return ShiftOutcome("learning", None, None, 0.0, None, False, 0)
    onset = None if st.onset < 0 else q - st.onset
    return ShiftOutcome("watching", st.mu, st.sd, st.cusum, onset, False, 0, onset)


def scan_shifts(
    values: npt.NDArray[Any],
    indices: Sequence[int],
    p: ShiftParams,
    *,
    step: int = 1,
    noise: npt.NDArray[Any] | None = None,
) -> list[ShiftOutcome]:
    """Verdicts for windows ``indices`` of ``values`` (``nan``: no value), each from a scan
    that starts ``p.lookback`` windows (of ``step``) before it.

    Scans of later windows reuse an earlier scan's states from the first position where the
    two agree: from there on they are equal by construction (the same state and the same
    values), so the result is exactly that of an independent scan.
    """
    values = np.asarray(values, dtype=np.float64)
    out: dict[int, ShiftOutcome] = {}
    by_phase: dict[int, list[int]] = {}
    for i in indices:
        by_phase.setdefault(int(i) % step, []).append(int(i))
    for phase, idx in by_phase.items():
        sub = values[phase::step]
        nz = None if noise is None else np.asarray(noise, dtype=np.float64)[phase::step]
        sc = _Scanner(sub, nz, p)
        # states[q]: the previous scan's state after position q, for q in [lo, hi]
        prev_states: list[_State] = []
        prev_lo = 0
        for i in sorted(idx):
            j = (i - phase) // step
            lo = max(0, j - (p.lookback - 2 * p.baseline_windows))
            states: list[_State] = []
            st = _START
            q = lo
            while q <= j:
                st = sc.step(st, q)
                states.append(st)
                k = q - prev_lo
                if 0 <= k < len(prev_states) - 1 and prev_states[k] == st:
                    # coupled: the earlier scan's states up to its end are this scan's too
                    tail = prev_states[k + 1 :]
                    states.extend(tail)
                    q += 1 + len(tail)
                    st = states[-1]
                    continue
                q += 1
            prev_states, prev_lo = states, lo
            prev = states[-2] if len(states) > 1 else _START
            out[i] = _outcome(st, j, prev)
    return [out[int(i)] for i in indices]


def describe(
    o: ShiftOutcome, current: float, recover_windows: int, unit: str = ""
) -> tuple[str, dict[str, Any]]:
    """The message and details of an outcome (the caller adds the date of the onset).

    The change is relative when the baseline is positive and the value is not negative
    (a percentage of a level that crosses zero means nothing); otherwise absolute. The
    message says it as the KPI pages do (a rate's in percentage points) and levels with
    the KPI's ``unit``.
    """
    if o.baseline is None:
        return "learning the usual level (too few windows yet)", {"state": o.state}
    diff = current - o.baseline
    relative = diff / o.baseline if o.baseline > 0 and current >= 0 else None
    details: dict[str, Any] = {
        "state": o.state,
        "baseline": o.baseline,
        "baseline_sd": o.sd,
        "cusum": o.cusum,
        "onset_windows_ago": o.onset,
        "excursion_windows_ago": o.excursion,
        "relative": relative,
        "difference": diff,
    }
    moved = fmt_change(diff, o.baseline, unit)
    level = fmt_value(o.baseline, unit)
    if o.state == "shifted":
        ago = (
            "in this window"
            if not o.onset
            else "1 window ago"
            if o.onset == 1
            else f"{o.onset} windows ago"
        )
        msg = f"{moved} vs its level before the change ({level}), which began {ago}"
        if o.streak:
            msg += f"; back near it in {o.streak} of the {recover_windows} windows needed"
        return msg, details
    if o.recovered:
        details["recovered"] = True
        return (
            f"back near its level before the change ({level}) for {recover_windows} windows",
            details,
        )
    return f"{moved} vs its usual level ({level})", details
