"""Linking model signals and tenant KPIs: which signals moved with a KPI, and the reverse.

Pure functions over metric results. For one tenant, every model signal (a monitor's metric
for one column: drift statistic per feature, estimated or realized performance, prediction
mean or positive rate, data-quality counts) becomes a series over the KPI's windows (a
signal computed on smaller windows is averaged into each KPI window; its worst status
counts). Then, over a trailing range:

* ``correlation`` — Pearson's r between the KPI and the signal shifted by 0..``max_lag``
  windows (the signal leading); the lag with the largest ``|r|`` is kept;
* ``breach`` — whether the signal broke its threshold (``alert`` or ``warn``) in the KPI's
  window or the ``max_lag`` windows before it.

``score = |r| + 0.5 · (alert breach) or 0.25 · (warn breach)``. This is association, not
proof: a high score says the two moved together, which is worth a look, not that one caused
the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from storage.types import MetricResult

__all__ = [
    "ASSOCIATION_NOTE",
    "RelatedKpi",
    "RelatedSignal",
    "SignalKey",
    "deseasonalize",
    "kpi_series",
    "rank_related_kpis",
    "rank_related_signals",
    "signal_series",
]

ASSOCIATION_NOTE = (
    "Association, not proof: these series moved together in the same or neighbouring windows. "
    "Use them as leads to investigate, not as the cause."
)
_BREACH_WEIGHT = {"alert": 0.5, "warn": 0.25}
_RANK = {"no_data": -1, "ok": 0, "warn": 1, "alert": 2}


@dataclass(frozen=True, order=True)
class SignalKey:
    """Identifies one model signal of one tenant."""

    model: str
    source_name: str  # the monitor
    kind: str
    column: str
    metric: str

    def label(self) -> str:
        col = f"[{self.column}]" if self.column else ""
        return f"{self.model}/{self.source_name}: {self.metric}{col}"


@dataclass
class _Signal:
    values: dict[datetime, list[float]] = field(default_factory=dict)
    status: dict[datetime, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RelatedSignal:
    """A model signal ranked against a KPI breach."""

    key: SignalKey
    score: float
    correlation: float | None
    lag: int | None  # windows by which the signal leads the KPI
    breached: str | None  # worst status in the window or the max_lag before it
    breached_since: datetime | None
    pairs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.key.model,
            "monitor": self.key.source_name,
            "kind": self.key.kind,
            "column": self.key.column,
            "metric": self.key.metric,
            "label": self.key.label(),
            "score": round(self.score, 4),
            "correlation": None if self.correlation is None else round(self.correlation, 4),
            "lag_windows": self.lag,
            "breached": self.breached,
            "breached_since": None
            if self.breached_since is None
            else self.breached_since.isoformat(),
            "pairs": self.pairs,
        }


@dataclass(frozen=True)
class RelatedKpi:
    """A tenant KPI that moved in the windows of a model alert."""

    kpi: str
    tenant_id: str
    score: float
    correlation: float | None
    lag: int | None
    status: str  # worst KPI status in the windows looked at
    change: float | None  # relative change of the KPI against the windows before
    windows: tuple[datetime, ...]
    # the KPI's own mean (not deseasonalized) in the windows before and in the alert's
    # windows, set by the caller that has the raw series: a relative change means little
    # around zero (a money KPI from 5 to 110 EUR is "+2093 %")
    before: float | None = None
    during: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "tenant_id": self.tenant_id,
            "score": round(self.score, 4),
            "correlation": None if self.correlation is None else round(self.correlation, 4),
            "lag_windows": self.lag,
            "status": self.status,
            "change": None if self.change is None else round(self.change, 4),
            "before": None if self.before is None else float(f"{self.before:.6g}"),
            "during": None if self.during is None else float(f"{self.during:.6g}"),
            "windows": [w.isoformat() for w in self.windows],
        }


def _floor(ts: datetime, grid: Sequence[datetime], width: timedelta) -> datetime | None:
    """The grid window holding ``ts`` (grid sorted, windows of ``width``)."""
    lo, hi = 0, len(grid)
    while lo < hi:
        mid = (lo + hi) // 2
        if grid[mid] <= ts:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return None
    w = grid[lo - 1]
    return w if ts < w + width else None


def signal_series(
    results: Iterable[MetricResult], grid: Sequence[datetime], width: timedelta
) -> dict[SignalKey, tuple[npt.NDArray[Any], list[str]]]:
    """Model-signal results of one tenant as series on the KPI's window ``grid``.

    Returns
    -------
    dict
        ``SignalKey -> (values, statuses)``: values averaged per KPI window (``nan`` where
        none), statuses the worst per window (``""`` where none).
    """
    raw: dict[SignalKey, _Signal] = {}
    for r in results:
        # Version-split rows repeat the all-versions ("*") ones: one series per signal.
        if r.source != "monitor" or r.model is None or r.model_version != "*":
            continue
        w = _floor(r.window_start, grid, width)
        if w is None:
            continue
        key = SignalKey(r.model, r.source_name, r.kind, r.column, r.metric)
        sig = raw.setdefault(key, _Signal())
        if r.value is not None and math.isfinite(r.value):
            sig.values.setdefault(w, []).append(float(r.value))
        old = sig.status.get(w, "")
        if _RANK.get(r.status, -1) > _RANK.get(old, -2):
            sig.status[w] = r.status
    out: dict[SignalKey, tuple[npt.NDArray[Any], list[str]]] = {}
    for key, sig in raw.items():
        vals = np.array([np.mean(sig.values[w]) if w in sig.values else np.nan for w in grid])
        out[key] = (vals, [sig.status.get(w, "") for w in grid])
    return out


def kpi_series(
    results: Iterable[MetricResult], grid: Sequence[datetime]
) -> dict[tuple[str, str], tuple[npt.NDArray[Any], list[str]]]:
    """KPI rows (``metric`` = KPI name) as ``(kpi, tenant) -> (values, statuses)`` on ``grid``."""
    pos = {w: i for i, w in enumerate(grid)}
    out: dict[tuple[str, str], tuple[npt.NDArray[Any], list[str]]] = {}
    for r in results:
        if r.source != "kpi" or r.metric != r.source_name or r.window_start not in pos:
            continue
        key = (r.source_name, r.tenant_id)
        if key not in out:
            out[key] = (np.full(len(grid), np.nan), [""] * len(grid))
        i = pos[r.window_start]
        out[key][0][i] = np.nan if r.value is None else r.value
        out[key][1][i] = r.status
    return out


def deseasonalize(
    values: npt.NDArray[Any], grid: Sequence[datetime], window: str
) -> npt.NDArray[Any]:
    """Daily (hourly) KPI values divided by the mean of their weekday (hour of the week) over
    the range, so a weekly pattern does not hide, or fake, an association with a signal."""
    if window not in ("day", "hour"):
        return values
    season = [w.weekday() if window == "day" else w.weekday() * 24 + w.hour for w in grid]
    out = values.astype(np.float64).copy()
    for s in set(season):
        idx = np.array([i for i, x in enumerate(season) if x == s])
        v = values[idx]
        ok = np.isfinite(v)
        if ok.sum() < 2:
            continue
        m = float(v[ok].mean())
        out[idx] = v / m if m else v - m
    return out


def _lagged_r(
    kpi: npt.NDArray[Any], sig: npt.NDArray[Any], end: int, span: int, max_lag: int, min_pairs: int
) -> tuple[float | None, int | None, int]:
    """Best (|r|-largest) correlation of kpi[t] with sig[t - lag] for t in the trailing span."""
    best: tuple[float | None, int | None, int] = (None, None, 0)
    lo = max(0, end - span + 1)
    for lag in range(0, max_lag + 1):
        t = np.arange(max(lo, lag), end + 1)
        if t.size == 0:
            continue
        x, y = kpi[t], sig[t - lag]
        ok = np.isfinite(x) & np.isfinite(y)
        n = int(ok.sum())
        if n < min_pairs:
            continue
        x, y = x[ok], y[ok]
        sx, sy = float(x.std()), float(y.std())
        if sx == 0.0 or sy == 0.0:
            continue
        r = float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))
        if best[0] is None or abs(r) > abs(best[0]):
            best = (r, lag, n)
    return best


def _breach(statuses: Sequence[str], end: int, max_lag: int) -> tuple[str | None, int | None]:
    """Worst breach in windows [end - max_lag, end] and where the streak leading to it began."""
    worst, first = None, None
    for i in range(max(0, end - max_lag), end + 1):
        s = statuses[i]
        if s in _BREACH_WEIGHT:
            if worst is None or _RANK[s] > _RANK[worst]:
                worst = s
            if first is None:
                first = i
    if first is not None:  # walk back over the contiguous breaching windows: "since when"
        while first > 0 and statuses[first - 1] in _BREACH_WEIGHT:
            first -= 1
    return worst, first


def rank_related_signals(
    kpi_values: npt.NDArray[Any],
    signals: dict[SignalKey, tuple[npt.NDArray[Any], list[str]]],
    grid: Sequence[datetime],
    at: int,
    *,
    max_lag: int = 3,
    span: int = 28,
    min_pairs: int = 6,
    limit: int = 20,
) -> list[RelatedSignal]:
    """Model signals ranked by how strongly they moved with a KPI up to window ``at``.

    Parameters
    ----------
    kpi_values
        The KPI's values on ``grid`` (``nan`` where none).
    signals
        From :func:`signal_series` on the same grid.
    grid
        The KPI's window starts.
    at
        Index in ``grid`` of the KPI breach's window.
    max_lag
        Largest lead (in windows) of the signal over the KPI considered.
    span
        Trailing windows over which the correlation is computed.
    min_pairs
        Fewest paired windows for a correlation.
    limit
        Longest list returned.

    Returns
    -------
    list of RelatedSignal
        Best first; signals with neither a correlation nor a breach are left out.
    """
    out: list[RelatedSignal] = []
    for key, (vals, statuses) in signals.items():
        r, lag, n = _lagged_r(kpi_values, vals, at, span, max_lag, min_pairs)
        worst, first = _breach(statuses, at, max_lag)
        if r is None and worst is None:
            continue
        score = (abs(r) if r is not None else 0.0) + _BREACH_WEIGHT.get(worst or "", 0.0)
        out.append(
            RelatedSignal(
                key=key,
                score=score,
                correlation=r,
                lag=lag,
                breached=worst,
                breached_since=None if first is None else grid[first],
                pairs=n,
            )
        )
    out.sort(key=lambda s: (-s.score, s.key))
    return out[:limit]


def rank_related_kpis(
    signal: tuple[npt.NDArray[Any], list[str]],
    kpis: dict[tuple[str, str], tuple[npt.NDArray[Any], list[str]]],
    grid: Sequence[datetime],
    first: int,
    last: int,
    *,
    max_lag: int = 3,
    span: int = 28,
    min_pairs: int = 6,
    min_change: float = 0.05,
) -> list[RelatedKpi]:
    """Tenant KPIs that moved in the windows of a model alert (``first..last`` on ``grid``).

    A KPI "moved" when one of its windows in ``first .. last + max_lag`` was ``warn`` or
    ``alert``, or its mean there differs from the mean of the ``span`` windows before by at
    least ``min_change`` (relative). Ranked by ``|r|`` with the signal (signal leading by
    0..``max_lag``) plus the breach weight.
    """
    out: list[RelatedKpi] = []
    hi = min(len(grid) - 1, last + max_lag)
    sig_vals = signal[0]
    for (kpi, tenant), (vals, statuses) in kpis.items():
        window_idx = range(first, hi + 1)
        worst = "ok"
        hit: list[datetime] = []
        for i in window_idx:
            s = statuses[i]
            if s in _BREACH_WEIGHT:
                hit.append(grid[i])
                if _RANK[s] > _RANK[worst]:
                    worst = s
        before = vals[max(0, first - span) : first]
        during = vals[first : hi + 1]
        b, d = before[np.isfinite(before)], during[np.isfinite(during)]
        change = None
        if b.size and d.size and b.mean() != 0:
            change = float((d.mean() - b.mean()) / abs(b.mean()))
        moved = bool(hit) or (change is not None and abs(change) >= min_change)
        if not moved:
            continue
        r, lag, _ = _lagged_r(vals, sig_vals, hi, span + hi - first, max_lag, min_pairs)
        score = (abs(r) if r is not None else 0.0) + _BREACH_WEIGHT.get(worst, 0.0)
        out.append(RelatedKpi(kpi, tenant, score, r, lag, worst, change, tuple(hit)))
    out.sort(key=lambda k: (-k.score, k.tenant_id, k.kpi))
    return out
