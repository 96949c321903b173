"""Alerts ``/alerts``: firing and pending first, by severity, with age and labels."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as c
from dashboard.auth import guarded, services
from monitor import queries
from monitor.accounts import Account

dash.register_page(__name__, path_template="/alerts", name="Alerts", title="Alerts · Driftwatch")

PAGE = "alerts"
STATES = [
    ("open", "Firing + pending"),
    ("firing", "Firing"),
    ("pending", "Pending"),
    ("resolved", "Resolved"),
    ("all", "All"),
]
SEVERITIES = [("", "Any"), ("critical", "Critical"), ("warning", "Warning"), ("info", "Info")]


def layout(**params: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Alerts"),
            dcc.Store(
                id="alerts-params",
                data={
                    "state": params.get("state"),
                    "severity": params.get("severity"),
                    "tenant": params.get("tenant"),
                    "model": params.get("model"),
                },
            ),
            dcc.Loading(html.Div(id="alerts-content"), delay_show=300),
        ]
    )


def render(
    rows: list[queries.AlertRow], params: dict[str, str], tenants: list[str], computed: Any
) -> list[Any]:
    out: list[Any] = [
        c.freshness(PAGE, computed),
        c.filter_links(PAGE, "state", "State", STATES, params["state"], "/alerts", params),
        c.filter_links(
            PAGE, "severity", "Severity", SEVERITIES, params["severity"], "/alerts", params
        ),
        c.filter_links(
            PAGE,
            "tenant",
            "Tenant",
            [("", "Any"), *[(t, t) for t in tenants]],
            params["tenant"],
            "/alerts",
            params,
        ),
    ]
    if params["model"]:
        out.append(
            html.P(
                [
                    "Model ",
                    html.B(params["model"]),
                    " · ",
                    dcc.Link("all models", href=c.href("/alerts", {**params, "model": ""})),
                ],
                className="muted",
            )
        )
    if not rows:
        out.append(
            c.empty(
                PAGE,
                "No alerts match",
                "Alerts appear when an alert rule's condition holds on monitor or KPI results "
                "(`driftwatch alerts rules` lists the rules).",
            )
        )
        return out
    table_rows = []
    for r in rows:
        a = r.alert
        labels = ", ".join(
            f"{k}={v}" for k, v in sorted(a.labels.items()) if k not in ("alertname",)
        )
        ack = f"acknowledged by {a.acknowledged_by}" if a.acknowledged_at else ""
        table_rows.append(
            [
                c.badge(a.severity),
                c.badge(a.state),
                dcc.Link(a.rule, href=f"/alerts/{a.id}", id=f"alerts-link-{a.id}"),
                a.tenant_id,
                a.model,
                labels,
                c.duration(r.age),
                " · ".join(x for x in (ack, "silenced" if r.silenced else "") if x),
            ]
        )
    out.append(
        c.table(
            PAGE,
            "table",
            ["severity", "state", "rule", "tenant", "model", "labels", "age", "handling"],
            table_rows,
        )
    )
    return out


@callback(Output("alerts-content", "children"), Input("alerts-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    filters = {
        "state": params.get("state") or "open",
        "severity": params.get("severity") or "",
        "tenant": params.get("tenant") or "",
        "model": params.get("model") or "",
    }
    try:
        state = filters["state"]
        wanted = {"open": ["firing", "pending"], "all": None}.get(state, state)
        rows = queries.alerts_list(
            services(),
            account.tenants,
            state=wanted,
            severity=filters["severity"] or None,
            tenant=filters["tenant"] or None,
            model=filters["model"] or None,
        )
        tenants = queries.visible_tenants(services(), account.tenants)
        computed = queries.last_computed(services())
    except queries.AccessDenied as exc:
        return c.denied(PAGE, str(exc))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    return render(rows, filters, tenants, computed)
