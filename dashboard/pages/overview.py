"""Overview ``/``: models × tenants health, firing alerts, the worst recent signals."""

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

dash.register_page(__name__, path_template="/", name="Overview", title="Overview · Driftwatch")

PAGE = "overview"


def layout(**params: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Overview"),
            dcc.Store(
                id="overview-params", data={k: params.get(k) for k in timerange.RANGE_PARAMS}
            ),
            dcc.Loading(html.Div(id="overview-content"), delay_show=300),
        ]
    )


def _cell(model: str, tenant: str, cell: queries.Cell, link: bool) -> html.Td:
    """A grid cell: the status (a link to the model for this tenant) and, below it, the firing
    alerts (a link to them) or the count of flagged results."""
    badge = c.badge(cell.status)
    parts: list[Any] = [
        dcc.Link(badge, href=c.href(f"/models/{model}", {"tenant": tenant})) if link else badge
    ]
    if cell.firing or cell.inhibited:
        # as the alert list shows them: the inhibited ones apart (their notifications held
        # while the alert that stands for them fires)
        text = f"{cell.firing} firing" + (
            f" · {cell.inhibited} inhibited" if cell.inhibited else ""
        )
    elif cell.alerting or cell.warning:
        # checks flagged in the newest windows, no alert firing (yet: a rule's `for` may hold it
        # pending). "1 alert · 1 warn" read as an alert firing that the firing count lacked.
        counts = [(n, s) for n, s in ((cell.alerting, "alert"), (cell.warning, "warning")) if n]
        flagged = ", ".join(
            f"{n} check{'s' if n > 1 else ''} in {s}" if i == 0 else f"{n} in {s}"
            for i, (n, s) in enumerate(counts)
        )
        text = f"{flagged}; no alert firing"
    else:
        text = ""
    if text:  # a link to the cell's alerts (pending ones included)
        alerts = c.href("/alerts", {"tenant": tenant, "model": model})
        parts.append(html.Div(dcc.Link(text, href=alerts) if link else text, className="muted"))
    if cell.window is not None:
        # the range is shorter than the monitor's window (24h on daily monitors): the cell
        # shows the window the range falls in, and says which
        parts.append(
            html.Div(
                f"window {c.fmt_window(*cell.window)}, longer than the range",
                className="muted",
                id=f"overview-window-{model}-{tenant}",
            )
        )
    return html.Td(
        parts, className=f"cell cell-{cell.status}", id=f"overview-cell-{model}-{tenant}"
    )


def _inhibited(n: int, link: bool) -> list[Any]:
    """ "and 7 inhibited" under the firing count: all-tenants copies and the like, firing but
    held while the alert that stands for each fires (the alert list marks them so)."""
    if not n:
        return []
    text = f"and {n} inhibited"
    title = "firing, but their notifications are held while the alert that stands for each fires"
    shown = dcc.Link(text, href="/alerts?state=firing") if link else text
    return [html.Div(shown, className="muted", id="overview-inhibited", title=title)]


def nothing_flagged(view: queries.Overview) -> html.Div:
    """The empty "worst signals": never "nothing wrong" while alerts fire (the range may hold
    no window of the checks that raised them, or their windows may have passed)."""
    firing = sum(view.firing_by_severity.values()) + view.inhibited
    if not firing:
        return c.empty(PAGE, "Nothing over its threshold in the newest windows.")
    n = f"{firing} alert{'s' if firing > 1 else ''}"
    return c.empty(
        PAGE,
        f"No check flagged in the newest windows of this range, but {n} "
        f"{'are' if firing > 1 else 'is'} firing",
        "Open the alerts to see what they are about, or widen the time range.",
    )


def render(view: queries.Overview, account: Account, tr: TimeRange) -> list[Any]:
    out: list[Any] = [c.freshness(PAGE, view.computed_at), timerange.bar(PAGE, "/", tr, {})]
    if not view.models:
        out.append(
            c.empty(
                PAGE,
                "No model yet",
                "Register a model and send inference logs: "
                "`driftwatch models register model.yaml`, then "
                "`driftwatch ingest MODEL logs.parquet --url ... --api-key ...` "
                "(or POST /api/v1/models/MODEL/inferences). `make demo` loads an example.",
            )
        )
        return out
    if not view.tenants:
        out.append(c.empty(PAGE, "No tenant in your scope has data yet."))
        return out
    links = account.can_open("model")
    sev = view.firing_by_severity
    summary = html.Div(
        [
            html.Div(
                [
                    html.Div("Firing alerts (now)", className="label"),
                    html.Div(str(sum(sev.values())), className="big", id="overview-firing"),
                    *_inhibited(view.inhibited, links),
                ],
                className="card",
            ),
            *[
                html.Div(
                    [
                        html.Div(s.capitalize(), className="label"),
                        html.Div(str(sev.get(s, 0)), className="big", id=f"overview-firing-{s}"),
                    ],
                    className="card",
                )
                for s in ("critical", "warning", "info")
            ],
        ],
        className="row",
    )
    out.append(summary)
    grid = html.Table(
        [
            html.Thead(html.Tr([html.Th("model \\ tenant"), *[html.Th(t) for t in view.tenants]])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Th(dcc.Link(m, href=f"/models/{m}") if links else m),
                            *[_cell(m, t, view.cells[(m, t)], links) for t in view.tenants],
                        ]
                    )
                    for m in view.models
                ]
            ),
        ],
        className="table grid",
        id="overview-grid",
    )
    out += [
        html.H2("Health by model and tenant (newest windows in the range)"),
        html.Div(grid, className="card"),
    ]
    out.append(html.H2("Worst recent signals"))
    if not view.worst:
        out.append(nothing_flagged(view))
    else:
        rows = []
        for s in view.worst:
            target = (
                f"/models/{s.model}/features/{s.column}"
                if s.kind == "feature_drift" and s.column
                else f"/models/{s.model}"
            )
            what = s.column or "(whole model)"
            where = dcc.Link(what, href=c.href(target, {"tenant": s.tenant_id}))
            rows.append(
                [
                    c.badge(s.status),
                    s.model,
                    s.tenant_id,
                    s.monitor,
                    where if links else what,
                    s.metric,
                    "–" if s.value is None else f"{s.value:.4g}",
                    "–" if s.threshold is None else f"{s.threshold:.4g}",
                    c.fmt_ts(s.window_start),
                ]
            )
        out.append(
            c.table(
                PAGE,
                "worst",
                [
                    "status",
                    "model",
                    "tenant",
                    "monitor",
                    "what",
                    "metric",
                    "value",
                    "threshold",
                    "window",
                ],
                rows,
            )
        )
    return out


@callback(Output("overview-content", "children"), Input("overview-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    try:
        tr = timerange.parse(params)
    except RangeError as exc:
        return timerange.error(PAGE, exc, "/", {})
    try:
        view = queries.overview(services(), account.tenants, range_key=tr.relative or tr)
        return render(view, account, tr)
    except Exception as exc:
        return c.error_box(PAGE, exc)
