"""Monitors ``/monitors``: configured monitors, KPIs and alert rules, last runs and errors."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as c
from dashboard import timerange
from dashboard.auth import guarded, services
from monitor import queries
from monitor.accounts import Account
from monitor.timerange import RangeError, TimeRange

dash.register_page(
    __name__, path_template="/monitors", name="Monitors", title="Monitors · Driftwatch"
)

PAGE = "monitors"


def layout(**params: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Monitors, KPIs and alert rules"),
            dcc.Store(
                id="monitors-params", data={k: params.get(k) for k in timerange.RANGE_PARAMS}
            ),
            dcc.Loading(html.Div(id="monitors-content"), delay_show=300),
        ]
    )


def render(v: queries.MonitorsView, tr: TimeRange) -> list[Any]:
    out: list[Any] = [
        c.freshness(PAGE, v.computed_at),
        timerange.bar(PAGE, "/monitors", tr, {}),
        html.H2("Monitors"),
    ]
    if v.monitors:
        out.append(
            c.table(
                PAGE,
                "monitors",
                ["monitor", "model", "kind", "enabled", "version", "last run", "status", "error"],
                [
                    [
                        m.name,
                        dcc.Link(m.model, href=f"/models/{m.model}"),
                        m.kind,
                        "yes" if m.enabled else "no",
                        m.version,
                        c.fmt_ts(m.last_run),
                        c.badge(
                            "ok"
                            if m.last_status == "ok"
                            else "alert"
                            if m.last_status == "error"
                            else "no_data",
                            m.last_status,
                        ),
                        m.last_error or "",
                    ]
                    for m in v.monitors
                ],
            )
        )
    else:
        out.append(
            c.empty(
                PAGE,
                "No monitor configured",
                "Propose monitors with `driftwatch init MODEL -o monitors.yaml`, create them "
                "with `driftwatch apply -f monitors.yaml` or POST /api/v1/monitors; see "
                "docs for the monitor kinds.",
            )
        )
    out.append(html.H2("Failed runs in the range (by window)"))
    if v.errors:
        out.append(
            c.table(
                PAGE,
                "errors",
                ["monitor", "window", "error"],
                [[m, c.fmt_ts(w), e] for m, w, e in v.errors],
            )
        )
    else:
        out.append(html.P("No failed run in this range.", className="muted"))
    out.append(html.H2("KPIs"))
    out.append(
        c.table(
            PAGE,
            "kpis",
            ["KPI", "formula", "enabled"],
            [[n, html.Code(f), "yes" if e else "no"] for n, f, e in v.kpis],
        )
        if v.kpis
        else c.empty(
            PAGE, "No KPI defined: add a `kpis:` section, `driftwatch apply -f kpis.yaml`."
        )
    )
    out.append(html.H2("Alert rules"))
    out.append(
        c.table(
            PAGE,
            "rules",
            ["rule", "severity", "enabled"],
            [[n, c.badge(s or "info", s or "–"), "yes" if e else "no"] for n, s, e in v.rules],
        )
        if v.rules
        else c.empty(PAGE, "No alert rule: the default rules load at start-up.")
    )
    return out


@callback(Output("monitors-content", "children"), Input("monitors-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    try:
        tr = timerange.parse(params)
    except RangeError as exc:
        return timerange.error(PAGE, exc, "/monitors", {})
    try:
        return render(queries.monitors_view(services(), tr), tr)
    except Exception as exc:
        return c.error_box(PAGE, exc)
