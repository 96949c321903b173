"""KPIs of one tenant ``/kpis/<tenant>``: plain language, large numbers, trend with model
alerts and version changes, the health of the models behind them, incidents."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as c
from dashboard import figures
from dashboard.auth import guarded, services
from monitor import queries
from monitor.accounts import Account

dash.register_page(
    __name__, path_template="/kpis/<tenant>", name="Tenant KPIs", title="KPIs · Driftwatch"
)

PAGE = "kpis"
BASIS_TEXT = {
    "realized": "realized (every label is in)",
    "estimated": "estimated from the model's scores (labels not in yet)",
    "mixed": "partly realized, partly estimated (labels still arriving)",
    "partial": "labelled rows only (no reference to estimate the rest)",
}
HEALTH_TEXT = {
    "ok": "healthy",
    "warn": "needs a look",
    "alert": "has an open problem",
    "no_data": "no recent checks",
}


def layout(tenant: str = "", **params: Any) -> html.Div:
    return html.Div(
        [
            html.P(dcc.Link("← all tenants", href="/kpis")),
            html.H1(f"KPIs of {tenant}", id="kpis-t-title"),
            dcc.Store(id="kpis-t-params", data={"tenant": tenant, "range": params.get("range")}),
            dcc.Loading(html.Div(id="kpis-t-content"), delay_show=300),
        ]
    )


def _sentence(card: queries.KpiCard) -> str:
    name = card.name.replace("_", " ")
    value = c.fmt_value(card.value, card.unit)
    parts = [f"{name.capitalize()} is {value}"]
    if card.target is not None:
        parts.append(f"against a target of {c.fmt_value(card.target, card.unit)}")
    text = " ".join(parts)
    if card.message:
        text += f": {card.message}"
    return text + "."


def _card(card: queries.KpiCard, v: queries.KpiTenantView) -> html.Div:
    attain = (
        f"{card.attainment * 100:.0f} % of target" if card.attainment is not None else "no target"
    )
    business = (
        [html.Div(f"Business value: {BASIS_TEXT.get(card.basis, card.basis)}.", className="muted")]
        if card.basis
        else []
    )
    return html.Div(
        [
            html.Div(card.name.replace("_", " "), className="label"),
            html.Div(
                [
                    html.Span(className=f"light light-{card.status}"),
                    c.fmt_value(card.value, card.unit),
                ],
                className="big",
            ),
            c.fmt_change(card),
            html.Div(attain, className="muted"),
            html.P(_sentence(card)),
            *business,
            dcc.Graph(
                figure=figures.kpi_trend(
                    card.trend,
                    card.target,
                    v.alert_marks,
                    v.versions,
                    card.unit,
                    estimated=card.estimated,
                ),
                config={"displayModeBar": False},
                id=f"kpis-t-trend-{card.name}",
            ),
        ],
        className="card kpi-card",
    )


def render(v: queries.KpiTenantView, account: Account) -> list[Any]:
    path = f"/kpis/{v.tenant}"
    out: list[Any] = [
        c.freshness(PAGE, v.computed_at),
        c.filter_links(
            PAGE,
            "range",
            "Range",
            [(k, k) for k in queries.RANGES],
            v.range_key,
            path,
            {"range": v.range_key},
        ),
    ]
    if not v.cards:
        out.append(
            c.empty(
                PAGE,
                f"No KPI values for {v.tenant} in this range",
                "KPIs are computed from business events once a KPI is defined "
                "(`driftwatch kpis create`); try a longer range.",
            )
        )
    else:
        out.append(html.Div([_card(k, v) for k in v.cards], className="row"))
    out.append(html.H2("Models behind these KPIs"))
    health_rows = [
        [
            html.Span(
                [
                    html.Span(className=f"light light-{h.status}"),
                    HEALTH_TEXT.get(h.status, h.status),
                ]
            ),
            dcc.Link(h.model, href=f"/models/{h.model}?tenant={v.tenant}")
            if account.can_open("model")
            else h.model,
            c.ago(h.last_incident) if h.last_incident else "no incident",
            f"checked up to {c.fmt_ts(h.data_until)}" if h.data_until else "no data yet",
        ]
        for h in v.health
    ]
    out.append(
        c.table(PAGE, "health", ["health", "model", "last incident", "data freshness"], health_rows)
    )
    inc = v.incidents
    out.append(html.H2("Incidents in this period"))
    out.append(
        html.Div(
            [
                html.Div(
                    [
                        html.Div("Incidents", className="label"),
                        html.Div(str(inc.count), className="big", id="kpis-t-incidents"),
                    ],
                    className="card",
                ),
                html.Div(
                    [
                        html.Div("Still open", className="label"),
                        html.Div(str(inc.open), className="big"),
                    ],
                    className="card",
                ),
                html.Div(
                    [
                        html.Div("Mean time to acknowledge", className="label"),
                        html.Div(c.duration(inc.mean_ack), className="big"),
                    ],
                    className="card",
                ),
                html.Div(
                    [
                        html.Div("Mean time to resolve", className="label"),
                        html.Div(c.duration(inc.mean_resolve), className="big"),
                    ],
                    className="card",
                ),
            ],
            className="row",
        )
    )
    return out


@callback(Output("kpis-t-content", "children"), Input("kpis-t-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    tenant = str(params.get("tenant") or "")
    try:
        view = queries.kpi_tenant(services(), account.tenants, tenant, params.get("range"))
    except queries.AccessDenied as exc:
        return c.denied(PAGE, str(exc))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    return render(view, account)
