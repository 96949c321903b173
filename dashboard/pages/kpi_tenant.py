"""KPIs of one tenant ``/kpis/<tenant>``: plain language, large numbers, trend with model
alerts and version changes, the health of the models behind them, incidents."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as c
from dashboard import figures, timerange
from dashboard.auth import guarded, services
from dashboard.kpi_words import basis_text, trend_key
from monitor import business, queries
from monitor.accounts import Account
from monitor.kpis.headline import Headline, fmt_value, kpi_sentence, worst_tone
from monitor.kpis.tenant_sentences import calm_sentence
from monitor.timerange import RangeError, TimeRange

dash.register_page(
    __name__, path_template="/kpis/<tenant>", name="Tenant KPIs", title="KPIs · Driftwatch"
)

PAGE = "kpis"
HEALTH_TEXT = {
    "ok": "healthy",
    "warn": "needs a look",
    "alert": "has an open problem",
    "no_data": "no recent checks",
}


def layout(tenant: str = "", **params: Any) -> html.Div:
    return html.Div(
        [
            html.P(
                dcc.Link(
                    "← all tenants",
                    href=c.href("/kpis", {k: params.get(k) for k in timerange.RANGE_PARAMS}),
                )
            ),
            html.H1(f"KPIs of {tenant}", id="kpis-t-title"),
            dcc.Store(
                id="kpis-t-params",
                data={"tenant": tenant, **{k: params.get(k) for k in timerange.RANGE_PARAMS}},
            ),
            dcc.Loading(html.Div(id="kpis-t-content"), delay_show=300),
        ]
    )


def _card(card: queries.KpiCard, h: Headline | None, v: queries.KpiTenantView) -> html.Div:
    """One KPI: its value now and change against before in the colour of its tone, its
    target, a plain sentence, why a money KPI is negative, and its trend."""
    tone = "none" if h is None else h.tone
    business = (
        [html.Div(basis_text(card), className="muted", id=f"kpis-t-card-{card.name}-basis")]
        if card.basis
        else []
    )
    kid = f"kpis-t-card-{card.name}"
    return html.Div(
        [
            html.Div(card.name.replace("_", " "), className="label"),
            html.Div(
                [
                    html.Div(
                        [
                            html.Span(className=f"light tone-light-{tone}"),
                            fmt_value(None if h is None else h.level, card.unit),
                        ],
                        className="big",
                    ),
                    html.Div(
                        "no value yet" if h is None else h.change_text(),
                        className="kpi-change",
                        id=f"{kid}-change",
                    ),
                ],
                className=f"kpi-now tone-{tone}",
                id=f"{kid}-now",
            ),
            html.Div("no target" if h is None else h.target_text(), className="muted"),
            html.P(kpi_sentence(h) if h is not None else "No value yet.", id=f"{kid}-sentence"),
            *(
                [html.P(h.negative, className="muted", id=f"{kid}-negative")]
                if h is not None and h.negative
                else []
            ),
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
            html.P(trend_key(card, v), className="muted", id=f"{kid}-key"),
        ],
        className="card kpi-card",
        id=kid,
    )


def render(
    v: queries.KpiTenantView,
    account: Account,
    heads: dict[str, Headline] | None = None,
    risk: business.TenantRisk | None = None,
    tr: TimeRange | None = None,
) -> list[Any]:
    heads = heads or {}
    path = f"/kpis/{v.tenant}"
    out: list[Any] = [c.freshness(PAGE, v.computed_at)]
    if tr is not None:
        out.append(timerange.bar("kpis-t", path, tr, {}))
    if not v.cards:
        out.append(
            c.empty(
                PAGE,
                f"No KPI values for {v.tenant} in this range",
                "KPIs are computed from business events once a KPI is defined "
                "(`driftwatch apply -f kpis.yaml`); try a longer range.",
            )
        )
    else:
        # no KPI at risk is not "all green": a KPI worse than before or losing money is grey,
        # and the sentence and its colour say so (the banner was green over grey cards)
        calm = [h for h in heads.values() if h is not None]
        summary = risk.sentence if risk is not None else calm_sentence(v.tenant, calm)
        tone = risk.tone if risk is not None else worst_tone([h.tone for h in calm] or ["good"])
        out.append(html.P(summary, className=f"risk tone-{tone}", id="kpis-t-summary"))
        out.append(html.Div([_card(k, heads.get(k.name), v) for k in v.cards], className="row"))
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
        tr = timerange.parse(params)
    except RangeError as exc:
        return timerange.error("kpis-t", exc, f"/kpis/{tenant}", {})
    try:
        view = queries.kpi_tenant(services(), account.tenants, tenant, tr.relative or tr)
        # the headlines as they stood at the end of the range, as on the business overview
        heads, risk = business.tenant_headlines(services(), account.tenants, tenant, tr.end)
    except queries.AccessDenied as exc:
        return c.denied(PAGE, str(exc))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    return render(view, account, heads, risk, tr)
