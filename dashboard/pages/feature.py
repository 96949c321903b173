"""Feature ``/models/<model>/features/<feature>``: reference vs current distribution, the
statistic over time with its threshold, per-tenant breakdown, Evidently report download."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import components as c
from dashboard import figures, timerange
from dashboard.auth import guarded, services
from monitor import queries, reports
from monitor.accounts import Account
from monitor.timerange import RangeError, TimeRange

dash.register_page(
    __name__,
    path_template="/models/<model>/features/<feature>",
    name="Feature",
    title="Feature · Driftwatch",
)

PAGE = "feature"


def _parse_ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(str(value).replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        return None
    from datetime import UTC

    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def layout(model: str = "", feature: str = "", **params: Any) -> html.Div:
    return html.Div(
        [
            html.H1(
                [dcc.Link(model, href=f"/models/{model}"), f" › {feature}"], id="feature-title"
            ),
            dcc.Store(
                id="feature-params",
                data={
                    "model": model,
                    "feature": feature,
                    "tenant": params.get("tenant"),
                    "range": params.get("range"),
                    "from": params.get("from"),
                    "to": params.get("to"),
                    "window": params.get("window"),
                },
            ),
            dcc.Location(id="feature-nav", refresh="callback-nav"),
            dcc.Download(id="feature-download"),
            # only the page's own render shows the spinner: the Evidently report (seconds)
            # keeps the page visible and shows its progress on the button instead
            dcc.Loading(
                html.Div(id="feature-content"),
                delay_show=300,
                # dash types target_components as an empty TypedDict: its keys are ids
                target_components={"feature-content": "children"},  # type: ignore[arg-type]
            ),
        ]
    )


def render(v: queries.FeatureView, account: Account, tr: TimeRange) -> list[Any]:
    path = f"/models/{v.model}/features/{v.feature}"
    params = {"tenant": v.tenant, **tr.params()}
    tenant_opts = ([("*", "All tenants")] if account.tenants is None else []) + [
        (t, t) for t in v.tenants
    ]
    out: list[Any] = [
        c.freshness(PAGE, v.computed_at),
        c.filter_links(PAGE, "tenant", "Tenant", tenant_opts, v.tenant, path, params),
        timerange.bar(PAGE, path, tr, params),
        *c.overlap_note(PAGE, v.overlap),
    ]
    if not v.statistic:
        out.append(
            c.empty(
                PAGE,
                f"No drift results for {v.feature} in this range",
                "Check that a feature_drift monitor covers this column and has run, "
                "or widen the time range.",
            )
        )
        return out
    options = [{"label": c.fmt_ts(w), "value": w.isoformat()} for w in reversed(v.windows)]
    out.append(
        html.Div(
            [
                html.Span("Window", className="filter-label"),
                dcc.Dropdown(
                    id="feature-window",
                    options=options,
                    value=v.window.isoformat() if v.window else None,
                    clearable=False,
                    style={"width": "260px"},
                ),
                dcc.Store(id="feature-chosen", data=v.window.isoformat() if v.window else None),
                html.Button("Download Evidently report", id="feature-report", n_clicks=0),
                html.Span(
                    "this window against the reference, as Evidently's HTML report "
                    f"(at most {reports.MAX_ROWS:,} rows of each)",
                    id="feature-report-status",
                    className="muted",
                ),
            ],
            className="actions",
        )
    )
    if v.distribution is not None:
        out.append(
            html.Div(
                dcc.Graph(
                    id="feature-distribution",
                    figure=figures.distribution_overlay(v.distribution),
                    config={"displayModeBar": False},
                ),
                className="card",
            )
        )
    else:
        out.append(
            c.empty(PAGE, "This window's result stores no histogram to compare distributions.")
        )
    out.append(
        html.Div(
            dcc.Graph(
                id="feature-statistic",
                figure=figures.series_chart(
                    f"Drift statistic of {v.feature} per tenant, with thresholds",
                    v.statistic,
                    v.versions,
                ),
                config={"displayModeBar": False},
            ),
            className="card",
        )
    )
    out.append(html.H2("Per tenant (newest window)"))
    out.append(
        c.table(
            PAGE,
            "breakdown",
            ["tenant", "status", "metric", "value", "threshold", "window"],
            [
                [
                    "all tenants" if s.tenant_id == "*" else s.tenant_id,
                    c.badge(s.status),
                    s.metric,
                    "–" if s.value is None else f"{s.value:.4g}",
                    "–" if s.threshold is None else f"{s.threshold:.4g}",
                    c.fmt_ts(s.window_start),
                ]
                for s in v.breakdown
            ],
        )
    )
    return out


@callback(Output("feature-content", "children"), Input("feature-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    try:
        tr = timerange.parse(params)
    except RangeError as exc:
        path = f"/models/{params.get('model')}/features/{params.get('feature')}"
        return timerange.error(PAGE, exc, path, params)
    try:
        view = queries.feature_view(
            services(),
            account.tenants,
            str(params.get("model") or ""),
            str(params.get("feature") or ""),
            params.get("tenant"),
            tr.relative or tr,  # a span back from now: cached per minute
            _parse_ts(params.get("window")),
        )
    except queries.AccessDenied as exc:
        return c.denied(PAGE, str(exc))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    if view is None:
        return c.empty(PAGE, f"Model {params.get('model')!r} is not registered.")
    return render(view, account, tr)


@callback(
    Output("feature-nav", "href"),
    Input("feature-window", "value"),
    State("feature-chosen", "data"),
    State("feature-params", "data"),
    prevent_initial_call=True,
)
@guarded(PAGE)
def pick_window(
    value: str | None, chosen: str | None, params: dict[str, Any], account: Account
) -> Any:
    if not value or value == chosen:
        return no_update
    return c.href(
        f"/models/{params.get('model')}/features/{params.get('feature')}",
        {
            "tenant": params.get("tenant"),
            **{k: params.get(k) for k in timerange.RANGE_PARAMS},
            "window": value,
        },
    )


@callback(
    Output("feature-download", "data"),
    Output("feature-report-status", "children"),
    Input("feature-report", "n_clicks"),
    State("feature-window", "value"),
    State("feature-params", "data"),
    prevent_initial_call=True,
    running=[
        (Output("feature-report", "disabled"), True, False),
        (
            Output("feature-report", "children"),
            "Building the Evidently report…",
            "Download Evidently report",
        ),
    ],
)
@guarded(PAGE)
def download(n: int, window: str | None, params: dict[str, Any], account: Account) -> Any:
    start = _parse_ts(window)
    if not n:  # the button appearing with the page is no click: nothing to say yet
        return no_update, no_update
    if start is None:
        return no_update, "pick a window first"
    try:
        _tenants, tenant = queries.page_tenant(services(), account.tenants, params.get("tenant"))
        tr = timerange.parse(params)
        view = queries.feature_view(
            services(),
            account.tenants,
            params["model"],
            params["feature"],
            tenant,
            tr.relative or tr,
            start,
        )
        width = timedelta(days=1)
        if view is not None and len(view.windows) > 1:
            width = min(b - a for a, b in zip(view.windows, view.windows[1:], strict=False))
        html_text = reports.window_report_html(
            services(),
            params["model"],
            start,
            start + width,
            tenant_id=None if tenant == "*" else tenant,
        )
    except queries.AccessDenied as exc:
        return no_update, str(exc)
    except Exception as exc:
        return no_update, f"could not build the report: {exc}"
    name = f"{params['model']}-{tenant.replace('*', 'all')}-{start:%Y%m%dT%H%M}.html"
    return dcc.send_string(html_text, name), f"report {name} downloaded"
