"""Markup of the model page's "why": drifted features ranked by how strongly their drift goes
with changes of performance or of the linked KPI (``monitor.drift_impact``), with the tenants
that carry each drift."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dashboard import components as c
from dashboard import markup as m
from monitor.drift_impact import Correlation, ImpactView
from monitor.readable import fmt_signed

PAGE = "model"


def _r(corr: Correlation | None) -> m.Markup:
    if corr is None:
        return m.tag("span", "too few windows", class_="muted")
    strong = corr.r >= 0.5 and corr.p_value < 0.05
    return m.tag(
        "span",
        f"r {fmt_signed(corr.r)}",
        m.tag("span", f" (p {corr.p_value:.2g}, {corr.pairs} windows)", class_="muted"),
        class_="strong" if strong else None,
    )


def block(v: ImpactView, params: Mapping[str, Any], can_open_feature: bool) -> Any:
    """The ranking as one markup block (``model-impact``)."""
    if not v.features:
        text = (
            "No feature drifted in this range."
            if v.undrifted
            else "No feature drift results in this range."
        )
        return m.block(
            m.tag(
                "div",
                m.tag("h2", "Which drifted features move performance"),
                m.tag("p", text, class_="muted"),
                class_="card",
            ),
            "model-impact",
        )
    perf = f"{v.metric} ({v.basis})" if v.basis else "performance"
    level = f"{v.reference_level:.3g}" if v.reference_level is not None else "–"
    intro = (
        f"Ranked by how strongly each feature's drift (value ÷ threshold per window) goes with "
        f"the size of the change of {perf} from its level in the windows where nothing drifted "
        f"({level})"
        + (f", or of {v.kpi}" if v.kpi else "")
        + ": Pearson's r, NannyML's correlation ranking; the larger of the two ranks. "
        + (
            f"{v.undrifted} other feature{'s' if v.undrifted > 1 else ''} did not drift. "
            if v.undrifted
            else ""
        )
    )
    head = m.tag(
        "tr",
        *[
            m.tag("th", h)
            for h in (
                "feature",
                "drifted windows",
                "worst drifted window (× threshold)",
                f"with |Δ {v.metric or 'performance'}|",
                f"with |Δ {v.kpi}|" if v.kpi else "with the KPI",
                "carried by (leave one out)",
            )
        ],
    )
    rows = []
    for f in v.features:
        name: Any = f.feature
        if can_open_feature:
            name = m.link(
                f.feature,
                c.href(f"/models/{v.model}/features/{f.feature}", dict(params)),
            )
        carriers: Any = m.tag("span", "–", class_="muted")
        if f.carriers:
            carriers = m.join(
                [
                    f"{x.tenant_id} ({x.statistic:.3g} alone, {x.without:.3g} without)"
                    if x.statistic is not None and x.without is not None
                    else x.tenant_id
                    for x in f.carriers[:2]
                ],
                "; ",
            )
        kpi_cell = _r(f.kpi) if v.kpi else m.tag("span", "no linked KPI", class_="muted")
        cells = [
            ("feature", name),
            ("drifted windows", f"{f.drifted_windows} of {f.windows}"),
            ("worst", f"{f.worst:.3g}"),
            ("performance", _r(f.performance)),
            ("KPI", kpi_cell),
            ("carried by", carriers),
        ]
        rows.append(
            m.tag(
                "tr",
                *[m.tag("td", val, data_label=label) for label, val in cells],
                data_feature=f.feature,
            )
        )
    table = m.tag(
        "table",
        m.tag("thead", head),
        m.tag("tbody", *rows),
        class_="table alert-table",
        id="model-impact-table",
    )
    return m.block(
        m.tag(
            "div",
            m.tag("h2", "Which drifted features move performance"),
            m.tag("p", intro, class_="muted", id="model-impact-how"),
            table,
            m.tag("p", v.note, class_="muted"),
            class_="card",
        ),
        "model-impact",
    )
