"""Business overview ``/kpis``: the ``executive`` role's landing page. The tenants at risk in
one plain sentence each, then every tenant's KPIs against their target and against before,
coloured by one tone per KPI (cell and text alike, see ``monitor.kpis.headline``)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as c
from dashboard import timerange
from dashboard.auth import guarded, services
from monitor import business
from monitor.accounts import Account
from monitor.kpis.headline import Headline, fmt_value
from monitor.timerange import RangeError, TimeRange

dash.register_page(
    __name__, path_template="/kpis", name="Business overview", title="Business · Driftwatch"
)

PAGE = "kpis"
TONE_WORDS = {
    "good": "on track",
    "neutral": "within its usual range, but worse than before, below zero or with no target",
    "watch": "worth a look",
    "bad": "at risk",
    "none": "no value yet",
}
LEGEND = (
    "Each value is the average of the KPI's last 7 days (hours or weeks for an hourly or weekly "
    "KPI), or of the days since a change for the worse began. Green: on target and not worse "
    "than before. Grey: within its usual range but worse than before (a fall is never green), "
    "losing money, or with no target to be on track against. Amber: below target or worth a look. Red: off target or changed for the "
    "worse and staying there."
)


def layout(**params: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Business overview"),
            dcc.Store(id="kpis-params", data={k: params.get(k) for k in timerange.RANGE_PARAMS}),
            dcc.Loading(html.Div(id="kpis-content"), delay_show=300),
        ]
    )


def cell(h: Headline | None, kpi: str, tenant: str) -> html.Td:
    """One tenant × KPI: the value now, the arrow and change against before, the target."""
    cid = f"kpis-cell-{kpi}-{tenant}"
    if h is None or h.level is None:
        return html.Td("no value yet", className="cell tone-none", id=cid)
    return html.Td(
        [
            html.Div(fmt_value(h.level, h.unit), className="cell-value"),
            html.Div(h.change_text(), className="cell-change"),
            html.Div(h.target_text(), className="cell-target"),
        ],
        className=f"cell tone-{h.tone}",
        id=cid,
        title=f"{h.title} for {tenant}: {TONE_WORDS[h.tone]}",
    )


def render(v: business.BusinessOverview, tr: TimeRange | None = None) -> list[Any]:
    """The overview as the KPIs stood at the end of ``tr`` (now by default)."""
    keep = tr.params() if tr is not None else {}
    out: list[Any] = [c.freshness(PAGE, v.computed_at)]
    if tr is not None:
        out.append(timerange.bar(PAGE, "/kpis", tr, {}))
        out.append(
            html.P(
                f"KPIs as they stood at the end of this range ({c.fmt_ts(tr.end)}).",
                className="muted",
                id="kpis-as-of",
            )
        )
    if not v.kpis:
        out.append(
            c.empty(
                PAGE,
                "No KPI defined yet",
                "Define one in the `kpis:` section of a file and run `driftwatch apply -f "
                "kpis.yaml` (e.g. a conversion rate from business events), then send business "
                "events to /api/v1/events.",
            )
        )
        return out
    if not v.tenants:
        out.append(c.empty(PAGE, "No tenant in your scope yet."))
        return out
    out.append(html.H2("Tenants at risk"))
    if v.at_risk:
        risks = [
            html.P(
                [dcc.Link(r.sentence, href=c.href(f"/kpis/{r.tenant_id}", keep))],
                className=f"risk tone-{r.tone}",
                id=f"kpis-risk-{r.tenant_id}",
            )
            for r in v.at_risk
        ]
    else:
        risks = [html.P("No tenant at risk: no KPI is off target or outside its usual range.")]
    out.append(html.Div(risks, className="card", id="kpis-at-risk"))
    out.append(html.H2("KPIs by tenant"))
    header = [html.Th("tenant")]
    for d in v.kpis:
        target = f" (target {fmt_value(d.target, d.unit)})" if d.target is not None else ""
        header.append(html.Th(d.name.replace("_", " ") + target))
    rows = [
        html.Tr(
            [
                html.Th(dcc.Link(t, href=c.href(f"/kpis/{t}", keep), id=f"kpis-tenant-{t}")),
                *[cell(v.cells.get((d.name, t)), d.name, t) for d in v.kpis],
            ]
        )
        for t in v.tenants
    ]
    out.append(
        html.Div(
            html.Table(
                [html.Thead(html.Tr(header)), html.Tbody(rows)],
                className="table grid",
                id="kpis-portfolio",
            ),
            className="card",
        )
    )
    out.append(html.P(LEGEND, className="muted"))
    for kpi, note in v.notes.items():
        out.append(html.P(note, className="muted", id=f"kpis-note-{kpi}"))
    return out


@callback(Output("kpis-content", "children"), Input("kpis-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    try:
        tr = timerange.parse(params or {})
    except RangeError as exc:
        return timerange.error(PAGE, exc, "/kpis", {})
    try:
        view = business.business_overview(services(), account.tenants, now=tr.end)
        return render(view, tr)
    except Exception as exc:
        return c.error_box(PAGE, exc)
