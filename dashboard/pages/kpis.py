"""KPI portfolio ``/kpis``: tenants × KPIs, coloured by status, for executives."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as c
from dashboard.auth import guarded, services
from monitor import queries
from monitor.accounts import Account

dash.register_page(__name__, path_template="/kpis", name="KPIs", title="KPIs · Driftwatch")

PAGE = "kpis"


def layout(**params: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Business KPIs across tenants"),
            dcc.Store(id="kpis-params", data={"range": params.get("range")}),
            dcc.Loading(html.Div(id="kpis-content"), delay_show=300),
        ]
    )


def render(p: queries.Portfolio) -> list[Any]:
    out: list[Any] = [c.freshness(PAGE, p.computed_at)]
    if not p.kpis:
        out.append(
            c.empty(
                PAGE,
                "No KPI defined yet",
                "Define one with `driftwatch kpis create kpi.yaml` (e.g. a conversion rate from "
                "business events) and send business events to /api/v1/events.",
            )
        )
        return out
    if not p.tenants:
        out.append(c.empty(PAGE, "No tenant in your scope yet."))
        return out
    rows = []
    for t in p.tenants:
        cells: list[Any] = [html.Th(dcc.Link(t, href=f"/kpis/{t}", id=f"kpis-tenant-{t}"))]
        for k in p.kpis:
            card = p.cells.get((k, t))
            if card is None:
                cells.append(html.Td("no value", className="cell cell-no_data"))
                continue
            cells.append(
                html.Td(
                    [html.Div(c.fmt_value(card.value, card.unit)), html.Div(c.fmt_change(card))],
                    className=f"cell cell-{card.status}",
                    title=card.message,
                )
            )
        rows.append(html.Tr(cells))
    out.append(
        html.Div(
            html.Table(
                [
                    html.Thead(
                        html.Tr(
                            [html.Th("tenant"), *[html.Th(k.replace("_", " ")) for k in p.kpis]]
                        )
                    ),
                    html.Tbody(rows),
                ],
                className="table grid",
                id="kpis-portfolio",
            ),
            className="card",
        )
    )
    out.append(
        html.P(
            "Green: within its usual range and on target; amber: worth a look; red: off target "
            "or unusual. Click a tenant for the detail.",
            className="muted",
        )
    )
    return out


@callback(Output("kpis-content", "children"), Input("kpis-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    try:
        return render(queries.kpi_portfolio(services(), account.tenants, params.get("range")))
    except Exception as exc:
        return c.error_box(PAGE, exc)
