"""Words of a tenant's KPI card (``/kpis/<tenant>``) that say what its chart and its
business value are made of; kept out of the page module so they can be read without the app."""

from __future__ import annotations

from monitor import queries
from monitor.kpis.headline import fmt_day

BASIS_TEXT = {
    "realized": "realized (every label is in)",
    "estimated": "estimated from the model's scores (labels not in yet)",
    "mixed": "partly realized, partly estimated (labels still arriving)",
    "partial": "labelled rows only (no reference to estimate the rest)",
}


def basis_text(card: queries.KpiCard) -> str:
    """How a business value was obtained, for the whole chart: the newest window's basis
    said "estimated (labels not in yet)" for a chart that is realized but for its last 3
    days, so the estimated days are named."""
    est = card.estimated
    if card.basis in ("estimated", "mixed") and est is not None and est.x:
        n = len(est.x)
        days = fmt_day(est.x[0]) if n == 1 else f"{fmt_day(est.x[0])} – {fmt_day(est.x[-1])}"
        which = "the last window" if n == 1 else f"the last {n} windows"
        realized = "; the windows before are realized (every label in)" if card.trend.x else ""
        return (
            f"Business value: {which} ({days}) estimated (in whole or in part) from the "
            f"model's scores, their labels not in yet (dashed on the chart){realized}."
        )
    return f"Business value: {BASIS_TEXT.get(str(card.basis), str(card.basis))}."


def trend_key(card: queries.KpiCard, v: queries.KpiTenantView) -> str:
    """The key of a KPI's chart, naming only what it draws (the red triangles had none)."""
    parts = ["Chart: the KPI per window"]
    if card.estimated is not None and card.estimated.x:
        parts.append("dashed where estimated")
    if card.target is not None:
        parts.append("dotted green line: its target")
    if v.alert_marks:
        parts.append(
            "red ▲ at the bottom: an alert on this tenant began that day (a model's or a "
            "KPI's, hover for which)"
        )
    if v.versions:
        parts.append("purple dashed line: a new model version")
    return "; ".join(parts) + "."
