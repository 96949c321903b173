"""Alert ``/alerts/<alert_id>`` (the link in every webhook): what, where, since when, the
runbook, where to look next (model, feature, KPIs, the all-tenants twin, what moved with it),
the signal's chart, the tenant's KPIs one chart each, acknowledge / silence, and the
notification log. ``range``/``from``/``to`` set the charts' range (default: around the
alert)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import alert_detail, timerange
from dashboard import components as c
from dashboard import markup as m
from dashboard.auth import guarded, services
from monitor import alert_leads, queries
from monitor.accounts import Account
from monitor.timerange import RangeError, TimeRange

dash.register_page(
    __name__, path_template="/alerts/<alert_id>", name="Alert", title="Alert · Driftwatch"
)

PAGE = "alert"
DURATIONS = [("1", "1 hour"), ("4", "4 hours"), ("24", "1 day"), ("168", "1 week")]


def layout(alert_id: str = "", **params: Any) -> html.Div:
    return html.Div(
        [
            html.P(dcc.Link("← all alerts", href="/alerts")),
            dcc.Store(
                id="alert-params",
                data={"alert_id": alert_id, **{k: params.get(k) for k in timerange.RANGE_PARAMS}},
            ),
            dcc.Store(id="alert-version", data=0),
            # the last action's answer, so the re-render its version bump causes shows it
            # again instead of an empty status (the answer vanished within a frame)
            dcc.Store(id="alert-said", data=None),
            dcc.Loading(html.Div(id="alert-content"), delay_show=300),
        ]
    )


def _actions(v: queries.AlertView, said: str | None = None) -> html.Div:
    a = v.alert
    can_ack = a.state == "firing" and a.acknowledged_at is None
    return html.Div(
        [
            html.Button(
                "Acknowledge"
                if can_ack
                else "Acknowledged"
                if a.acknowledged_at
                else "Acknowledge (firing alerts only)",
                id="alert-ack",
                n_clicks=0,
                disabled=not can_ack,
            ),
            html.Span("Silence for", className="filter-label"),
            dcc.Dropdown(
                id="alert-silence-hours",
                options=[{"label": t, "value": h} for h, t in DURATIONS],
                value="4",
                clearable=False,
                style={"width": "130px"},
            ),
            dcc.Input(
                id="alert-silence-reason",
                placeholder="reason (required)",
                type="text",
                debounce=False,
                style={"width": "260px"},
            ),
            html.Button("Silence", id="alert-silence", n_clicks=0, className="secondary"),
            html.Span(said or "", id="alert-action-status", className="muted", role="status"),
        ],
        className="actions",
    )


def render(
    v: queries.AlertView,
    leads: alert_leads.AlertLeads,
    account: Account,
    tr: TimeRange | None,
    said: str | None = None,
) -> list[Any]:
    a = v.alert
    title = a.annotations.get("summary") or f"{a.rule} on {a.model} for {a.tenant_id}"
    if tr is None and v.start is not None and v.end is not None:
        tr = TimeRange(v.start, v.end, None, "around the alert")
    return [
        html.H1(title, id="alert-title"),
        c.freshness(PAGE, v.computed_at),
        m.block(
            m.join(
                [
                    m.tag("div", alert_detail.facts(v, leads, account), class_="card"),
                    alert_detail.leads_block(v, leads, account),
                ]
            ),
            "alert-summary",
        ),
        _actions(v, said),
        timerange.bar(PAGE, f"/alerts/{a.id}", tr, {}),
        *alert_detail.charts(v),
        html.H2("Notification log"),
        html.Div(alert_detail.notifications(v), id="alert-notification-log"),
    ]


@callback(
    Output("alert-content", "children"),
    Input("alert-params", "data"),
    Input("alert-version", "data"),
    State("alert-said", "data"),
)
@guarded(PAGE)
def update(params: dict[str, Any], _version: int, said: str | None, account: Account) -> Any:
    raw = str(params.get("alert_id") or "")
    if not (raw.isascii() and raw.isdigit() and int(raw) < 2**63):
        return c.empty(PAGE, f"Alert {raw!r} not found.")
    tr = None
    if any(params.get(k) for k in timerange.RANGE_PARAMS):
        try:
            tr = timerange.parse(params)
        except RangeError as exc:
            return timerange.error(PAGE, exc, f"/alerts/{raw}", {})
    try:
        view = queries.alert_view(services(), account.tenants, int(raw), span=tr)
        if view is None:
            return c.empty(PAGE, f"Alert {raw} not found.", "It may be out of your tenant scope.")
        leads = alert_leads.alert_leads(services(), account.tenants, view.alert)
    except Exception as exc:
        return c.error_box(PAGE, exc)
    return render(view, leads, account, tr, said)


@callback(
    Output("alert-action-status", "children"),
    Output("alert-said", "data"),
    Output("alert-version", "data"),
    Input("alert-ack", "n_clicks"),
    Input("alert-silence", "n_clicks"),
    State("alert-silence-hours", "value"),
    State("alert-silence-reason", "value"),
    State("alert-params", "data"),
    State("alert-version", "data"),
    prevent_initial_call=True,
)
@guarded(PAGE)
def act(
    ack: int,
    sil: int,
    hours: str | None,
    reason: str | None,
    params: dict[str, Any],
    version: int,
    account: Account,
) -> Any:
    trigger = dash.ctx.triggered_id
    raw = str(params.get("alert_id") or "")
    clicks = ack if trigger == "alert-ack" else sil
    if not raw.isdigit() or trigger is None or not clicks:
        return no_update, no_update, no_update
    actor = f"user:{account.username}"
    try:
        if trigger == "alert-ack":
            queries.acknowledge(services(), account.tenants, int(raw), actor)
            said = "Acknowledged."
        else:
            rec = queries.silence(
                services(), account.tenants, int(raw), float(hours or 4), reason or "", actor
            )
            said = f"Silenced until {c.fmt_ts(rec.ends_at)}."
    except queries.AccessDenied as exc:
        return str(exc), no_update, no_update
    except Exception as exc:
        return f"Failed: {exc}", no_update, no_update
    # the answer now, and again in the re-render the version bump causes
    return said, said, (version or 0) + 1
