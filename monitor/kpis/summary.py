"""Executive summary: each KPI now vs before and vs target, in one plain sentence, with the
health of the models serving the tenant. Pure functions over stored results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from monitor.kpis.headline import kind_phrase, plain_reasons
from monitor.readable import fmt_change, fmt_pct, fmt_time, fmt_value
from storage.types import MetricResult

__all__ = [
    "KpiSummary",
    "ModelHealth",
    "TenantSummary",
    "across_tenants",
    "model_health",
    "summarize_kpi",
]

_RANK = {"no_data": -1, "ok": 0, "warn": 1, "alert": 2}
# Kinds whose alert means users feel it: the model is failing, not just drifting.
_FAILING_KINDS = frozenset({"performance", "estimated_performance", "data_quality"})


@dataclass(frozen=True)
class KpiSummary:
    kpi: str
    tenant_id: str
    description: str
    unit: str
    direction: str
    window: str
    window_start: datetime | None
    current: float | None
    previous: float | None
    change: float | None  # relative, current vs previous window
    target: float | None
    attainment: float | None
    status: str
    sentence: str
    # the business headline (monitor.kpis.headline): level now against the level before a
    # sustained change and the target, its tone and a plain sentence
    headline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window_start"] = None if self.window_start is None else self.window_start.isoformat()
        return d


@dataclass(frozen=True)
class ModelHealth:
    model: str
    health: str  # ok, degraded, failing, unknown
    window_start: datetime | None
    alerts: int
    warnings: int
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window_start"] = None if self.window_start is None else self.window_start.isoformat()
        d["reasons"] = list(self.reasons)
        return d


@dataclass(frozen=True)
class TenantSummary:
    tenant_id: str
    status: str
    kpis: list[KpiSummary] = field(default_factory=list)
    models: list[ModelHealth] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "status": self.status,
            "kpis": [k.to_dict() for k in self.kpis],
            "models": [m.to_dict() for m in self.models],
        }


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def summarize_kpi(
    kpi: str,
    tenant_id: str,
    current: MetricResult | None,
    previous: MetricResult | None,
    *,
    description: str = "",
    unit: str = "",
    direction: str = "higher",
    window: str = "day",
    target: float | None = None,
) -> KpiSummary:
    """One KPI of one tenant for its latest window, with a one-sentence explanation.

    Examples
    --------
    >>> summarize_kpi("conversion", "acme", None, None).sentence
    'Conversion for acme has no computed value yet.'
    """
    name = _title(kpi)
    summary = partial(KpiSummary, kpi, tenant_id, description, unit, direction, window)
    if current is None:
        sentence = f"{name} for {tenant_id} has no computed value yet."
        return summary(None, None, None, None, target, None, "no_data", sentence)
    cur = current.value
    prev = None if previous is None else previous.value
    change = None
    if cur is not None and prev not in (None, 0):
        change = (cur - prev) / abs(prev)
    attainment = current.details.get("attainment") if current.details else None
    # the pages' time format; a day or a week is named by its first day
    start = fmt_time(current.window_start)
    when = f"the {window} of {start if window == 'hour' else start[:10]}"
    if cur is None:
        msg = current.details.get("message", "too few events")
        sentence = f"{name} for {tenant_id} could not be judged in {when}: {msg}."
        return summary(current.window_start, None, prev, None, target, None, "no_data", sentence)
    parts = [f"{name} for {tenant_id} was {fmt_value(cur, unit)} in {when}"]
    if change is not None and prev is not None:
        if abs(change) < 0.005:
            parts.append(f"flat against {fmt_value(prev, unit)} the {window} before")
        else:
            way = "up" if change > 0 else "down"
            good = (change > 0) == (direction == "higher")
            size = fmt_change(cur - prev, prev, unit, signed=False)  # a rate: points
            parts.append(
                f"{way} {size} from {fmt_value(prev, unit)} the {window} before"
                + ("" if good else " (the wrong way)")
            )
    if target is not None and attainment is not None:
        attained = fmt_pct(attainment, signed=False, digits=0)
        parts.append(f"{attained} of its target of {fmt_value(target, unit)}")
    status = current.status
    # the checks behind the status in plain words: their own messages name statistics
    # (robust z, medians), which the executive summary never shows
    checks = (current.details or {}).get("checks") or {}
    reasons = plain_reasons({str(k): str(v) for k, v in dict(checks).items()}, status, window)
    why = ", ".join(reasons) or "outside its usual range"
    tail = {
        "alert": f"Flagged: {why}.",
        "warn": f"Worth watching: {why}.",
        "ok": "Within its usual range.",
    }.get(status, "")
    sentence = ", ".join(parts) + ". " + tail
    return summary(
        current.window_start, cur, prev, change, target, attainment, status, sentence.strip()
    )


def model_health(results: Iterable[MetricResult]) -> list[ModelHealth]:
    """Health of each model from its latest window of results (per monitor).

    ``failing``: an ``alert`` from a performance, estimated-performance or data-quality
    monitor; ``degraded``: any other ``alert`` or a ``warn``; ``ok``: results and none of
    those; ``unknown``: only ``no_data``.
    """
    latest: dict[tuple[str, str], datetime] = {}
    rows = [r for r in results if r.source == "monitor" and r.model]
    for r in rows:
        k = (r.model or "", r.source_name)
        if k not in latest or r.window_start > latest[k]:
            latest[k] = r.window_start
    per_model: dict[str, list[MetricResult]] = {}
    for r in rows:
        if latest[(r.model or "", r.source_name)] == r.window_start:
            per_model.setdefault(r.model or "", []).append(r)
    out: list[ModelHealth] = []
    for model in sorted(per_model):
        rs = per_model[model]
        alerts = [r for r in rs if r.status == "alert"]
        warns = [r for r in rs if r.status == "warn"]
        if any(r.kind in _FAILING_KINDS for r in alerts):
            health = "failing"
        elif alerts or warns:
            health = "degraded"
        elif all(r.status == "no_data" for r in rs):
            health = "unknown"
        else:
            health = "ok"
        # in plain words, one per kind of problem with its columns: "the churn model's
        # inputs changed (age, plan)" (the statistics are on the model page)
        columns: dict[str, list[str]] = {}
        for r in sorted(alerts, key=lambda r: (r.kind, r.column)):
            cols = columns.setdefault(kind_phrase(r.kind, model), [])
            if r.column and r.column not in cols:
                cols.append(r.column)
        reasons = tuple(
            phrase + (f" ({', '.join(cols[:5])})" if cols else "")
            for phrase, cols in columns.items()
        )[:5]
        out.append(
            ModelHealth(
                model, health, max(r.window_start for r in rs), len(alerts), len(warns), reasons
            )
        )
    return out


def tenant_status(kpis: Sequence[KpiSummary], models: Sequence[ModelHealth]) -> str:
    """Worst KPI status, raised to ``warn`` by a degraded or failing model."""
    status = "ok" if kpis or models else "no_data"
    for k in kpis:
        if _RANK[k.status] > _RANK[status]:
            status = k.status
    if any(m.health in ("degraded", "failing") for m in models) and _RANK[status] < 1:
        status = "warn"
    return status


def across_tenants(summaries: Sequence[TenantSummary]) -> list[dict[str, Any]]:
    """Per KPI: how many tenants are in each status, and the tenants flagged (worst first)."""
    per: dict[str, list[KpiSummary]] = {}
    for t in summaries:
        for k in t.kpis:
            per.setdefault(k.kpi, []).append(k)
    out = []
    for kpi in sorted(per):
        ks = per[kpi]
        counts = {
            s: sum(1 for k in ks if k.status == s) for s in ("ok", "warn", "alert", "no_data")
        }
        flagged = sorted(
            (k for k in ks if k.status in ("alert", "warn")),
            key=lambda k: (-_RANK[k.status], k.change if k.change is not None else 0.0),
        )
        n = len(ks)
        bad = counts["alert"] + counts["warn"]
        sentence = (
            f"{_title(kpi)}: {bad} of {n} tenants flagged"
            + (f" ({', '.join(k.tenant_id for k in flagged[:3])})" if flagged else "")
            + f", {counts['ok']} within their usual range"
            + (f", {counts['no_data']} without enough data." if counts["no_data"] else ".")
        )
        out.append(
            {
                "kpi": kpi,
                "tenants": n,
                "counts": counts,
                "flagged": [
                    {"tenant_id": k.tenant_id, "status": k.status, "change": k.change}
                    for k in flagged
                ],
                "sentence": sentence,
            }
        )
    return out
