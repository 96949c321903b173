"""Alert ``/alerts/<alert_id>`` (the link in every webhook): what, where, since when, the
signal's chart, the tenant's KPIs, acknowledge / silence, and the notification log."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import components as c
from dashboard import figures
from dashboard.auth import guarded, services
from monitor import queries
from monitor.accounts import Account

dash.register_page(
    __name__, path_template="/alerts/<alert_id>", name="Alert", title="Alert · Driftwatch"
)

PAGE = "alert"
DURATIONS = [("1", "1 hour"), ("4", "4 hours"), ("24", "1 day"), ("168", "1 week")]


def layout(alert_id: str = "", **_params: Any) -> html.Div:
    return html.Div(
        [
            html.P(dcc.Link("← all alerts", href="/alerts")),
            dcc.Store(id="alert-params", data={"alert_id": alert_id}),
            dcc.Store(id="alert-version", data=0),
            dcc.Loading(html.Div(id="alert-content"), delay_show=300),
        ]
    )


def _actions(v: queries.AlertView) -> html.Div:
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
            html.Span(id="alert-action-status", className="muted", role="status"),
        ],
        className="actions",
    )


def _muted(v: queries.AlertView) -> Any:
    """Whether and why this alert's notifications are muted now (silences, inhibition)."""
    parts: list[Any] = []
    for s in v.silences:
        parts.append(
            f"silenced by silence {s.id} ({s.reason}, by {s.created_by}) "
            f"until {c.fmt_ts(s.ends_at)}"
        )
    for i in v.inhibitors:
        parts.append(
            html.Span(
                ["inhibited by ", dcc.Link(f"alert {i.id} ({i.rule})", href=f"/alerts/{i.id}")]
            )
        )
    if not parts:
        return "no"
    out: list[Any] = []
    for p in parts:
        out.extend([p, html.Br()])
    return html.Span(out[:-1], id="alert-muted")


def _twins(v: queries.AlertView) -> list[tuple[str, Any]]:
    """The same problem seen for all tenants together, or per tenant (alerts.twins)."""
    if v.all_tenants is not None:
        t = v.all_tenants
        link = dcc.Link(f"alert {t.id} ({t.state})", href=f"/alerts/{t.id}")
        return [("All tenants together", html.Span(link, id="alert-twin-all"))]
    if v.tenant_alerts:
        links: list[Any] = []
        for t in v.tenant_alerts:
            if links:
                links.append(", ")
            links.append(
                dcc.Link(f"{t.tenant_id} (alert {t.id}, {t.state})", href=f"/alerts/{t.id}")
            )
        return [("Per tenant", html.Span(links, id="alert-twin-tenants"))]
    return []


def render(v: queries.AlertView) -> list[Any]:
    a = v.alert
    title = a.annotations.get("summary") or f"{a.rule} on {a.model} for {a.tenant_id}"
    facts = [
        ("State", html.Span([c.badge(a.state), " ", c.badge(a.severity)])),
        ("Rule", a.rule),
        ("Tenant", a.tenant_id or "all"),
        ("Model", a.model or "–"),
        ("Since", f"{c.fmt_ts(a.starts_at or a.active_at)} (start of the first breaching window)"),
        ("Fired by Driftwatch", c.fmt_ts(a.fired_at)),
        (
            "Resolved",
            f"{c.fmt_ts(a.ends_at)} (start of the window that resolved it)" if a.ends_at else "–",
        ),
        ("Value / threshold", f"{_f(a.value)} / {_f(a.threshold)}"),
        (
            "Acknowledged",
            f"{a.acknowledged_by} at {c.fmt_ts(a.acknowledged_at)}" if a.acknowledged_at else "no",
        ),
        ("Notifications muted", _muted(v)),
        *_twins(v),
        ("Labels", ", ".join(f"{k}={val}" for k, val in sorted(a.labels.items()))),
    ]
    if a.annotations.get("description"):
        facts.append(("Description", a.annotations["description"]))
    out: list[Any] = [
        html.H1(title, id="alert-title"),
        c.freshness(PAGE, v.computed_at),
        html.Div(
            html.Table(
                html.Tbody([html.Tr([html.Th(k), html.Td(val)]) for k, val in facts]),
                className="table",
                id="alert-facts",
            ),
            className="card",
        ),
        _actions(v),
    ]
    if v.signal:
        out.append(
            html.Div(
                dcc.Graph(
                    id="alert-signal",
                    figure=figures.series_chart("The signal around the alert", v.signal),
                    config={"displayModeBar": False},
                ),
                className="card",
            )
        )
    else:
        out.append(c.empty(PAGE, "No stored results match this alert's labels."))
    if v.kpis:
        out.append(
            html.Div(
                dcc.Graph(
                    id="alert-kpis",
                    figure=figures.series_chart(f"KPIs of {a.tenant_id}", v.kpis, threshold=True),
                    config={"displayModeBar": False},
                ),
                className="card",
            )
        )
    out.append(html.H2("Notification log"))
    if v.notifications:
        out.append(
            c.table(
                PAGE,
                "notifications",
                ["at", "status", "channel", "event", "attempts", "detail"],
                [
                    [c.fmt_ts(n.at), n.status, n.channel or "–", n.event, n.attempts, n.detail]
                    for n in v.notifications
                ],
            )
        )
    else:
        out.append(
            c.empty(
                PAGE,
                "No notification sent for this alert yet",
                "Notifications go out when its group flushes; add a channel to the rule "
                "if none is configured.",
            )
        )
    return out


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


@callback(
    Output("alert-content", "children"),
    Input("alert-params", "data"),
    Input("alert-version", "data"),
)
@guarded(PAGE)
def update(params: dict[str, Any], _version: int, account: Account) -> Any:
    raw = str(params.get("alert_id") or "")
    if not (raw.isascii() and raw.isdigit() and int(raw) < 2**63):
        return c.empty(PAGE, f"Alert {raw!r} not found.")
    try:
        view = queries.alert_view(services(), account.tenants, int(raw))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    if view is None:
        return c.empty(PAGE, f"Alert {raw} not found.", "It may be out of your tenant scope.")
    return render(view)


@callback(
    Output("alert-action-status", "children"),
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
    if not raw.isdigit() or trigger is None:
        return no_update, no_update
    actor = f"user:{account.username}"
    try:
        if trigger == "alert-ack":
            if not ack:
                return no_update, no_update
            queries.acknowledge(services(), account.tenants, int(raw), actor)
            return "Acknowledged.", (version or 0) + 1
        if not sil:
            return no_update, no_update
        rec = queries.silence(
            services(), account.tenants, int(raw), float(hours or 4), reason or "", actor
        )
        return f"Silenced until {c.fmt_ts(rec.ends_at)}.", (version or 0) + 1
    except queries.AccessDenied as exc:
        return str(exc), no_update
    except Exception as exc:
        return f"Failed: {exc}", no_update
