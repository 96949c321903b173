"""Model ``/models/<model>``: drift heatmap (click → feature), prediction drift, realized and
estimated performance with band and label lag, data quality, version changes; tenant and
time-range filters in the URL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import components as c
from dashboard import figures, impact, timerange
from dashboard.auth import guarded, services
from monitor import drift_impact, queries
from monitor.accounts import Account
from monitor.timerange import RangeError, TimeRange

dash.register_page(
    __name__, path_template="/models/<model>", name="Model", title="Model · Driftwatch"
)

PAGE = "model"


def layout(model: str = "", **params: Any) -> html.Div:
    return html.Div(
        [
            html.H1(f"Model {model}", id="model-title"),
            dcc.Store(
                id="model-params",
                data={
                    "model": model,
                    "tenant": params.get("tenant"),
                    "range": params.get("range"),
                    "from": params.get("from"),
                    "to": params.get("to"),
                    "metric": params.get("metric"),
                },
            ),
            dcc.Location(id="model-nav", refresh="callback-nav"),
            dcc.Loading(html.Div(id="model-content"), delay_show=300),
        ]
    )


def render(
    v: queries.ModelView,
    account: Account,
    tr: TimeRange,
    why: drift_impact.ImpactView | None = None,
) -> list[Any]:
    path = f"/models/{v.model}"
    params = {"tenant": v.tenant, **tr.params(), "metric": v.metric}
    tenant_opts = ([("*", "All tenants")] if account.tenants is None else []) + [
        (t, t) for t in v.tenants
    ]
    out: list[Any] = [
        c.freshness(PAGE, v.computed_at),
        html.P(f"Task: {v.task}", className="muted"),
        c.filter_links(PAGE, "tenant", "Tenant", tenant_opts, v.tenant, path, params),
        timerange.bar(PAGE, path, tr, params),
        *c.overlap_note(PAGE, v.overlap),
    ]
    if v.versions:
        out.append(
            html.P(
                "Versions: "
                + ", ".join(f"{x.version} from {c.fmt_ts(x.first_seen)}" for x in v.versions),
                className="muted",
                id="model-versions",
            )
        )
    if not v.heatmap.features and not v.realized and not v.estimated and not v.prediction:
        out.append(
            c.empty(
                PAGE,
                "No results in this range",
                "Propose monitors for this model (`driftwatch init MODEL -o monitors.yaml`), "
                "create them (`driftwatch apply -f monitors.yaml`) and let them run, or "
                "backfill past windows (`driftwatch backfill --from 2026-01-01 --to 2026-02-01`);"
                " or widen the time range.",
            )
        )
        return out
    if v.heatmap.features:
        out.append(
            html.Div(
                dcc.Graph(
                    id="model-heatmap",
                    figure=figures.drift_heatmap(v.heatmap, v.versions),
                    config={"displayModeBar": False},
                ),
                className="card",
            )
        )
    else:
        out.append(c.empty(PAGE, "No feature drift results: add a feature_drift monitor."))
    if why is not None and v.heatmap.features:
        keep = {"tenant": v.tenant, **tr.params()}
        out.append(impact.block(why, keep, account.can_open("feature")))
    charts: list[Any] = []  # Dash components of several kinds
    if v.prediction:
        charts.append(
            dcc.Graph(
                id="model-prediction",
                figure=figures.series_chart("Prediction / score drift", v.prediction, v.versions),
                config={"displayModeBar": False},
            )
        )
    if v.realized or v.estimated:
        charts.append(
            c.filter_links(
                PAGE, "metric", "Metric", [(m, m) for m in v.metrics], v.metric, path, params
            )
        )
        charts.append(
            dcc.Graph(
                id="model-performance",
                figure=figures.series_chart(
                    f"Performance ({v.metric}): realized (solid)"
                    + (" and estimated (dashed, with band)" if v.estimated else ""),
                    v.realized,
                    v.versions,
                    dashed=v.estimated,
                    labels_until=v.labels_until,
                ),
                config={"displayModeBar": False},
            )
        )
    if not v.prediction:
        charts.insert(
            0,
            html.P(
                "No prediction-drift values in this range: check the prediction_drift monitor "
                "and its last runs on the Monitors page.",
                className="muted",
                id="model-prediction-empty",
            ),
        )
    out += [html.Div(ch, className="card") for ch in charts]
    if v.labels_until is not None:
        out.append(
            html.P(
                f"Labels have arrived for windows up to {c.fmt_ts(v.labels_until)} "
                f"({c.ago(v.labels_until)}); "
                + (
                    "later windows show the estimate only."
                    if v.estimated
                    else "later windows have no performance yet (add an "
                    "estimated_performance monitor to estimate it)."
                ),
                className="muted",
                id="model-label-lag",
            )
        )
    out.append(html.H2("Data quality (newest window)"))
    if v.quality:
        flagged = [q for q in v.quality if q[3] in ("alert", "warn")]
        rest = [q for q in v.quality if q[3] not in ("alert", "warn")]

        def rows(qs: Sequence[tuple[str, str, float | None, str]]) -> list[list[Any]]:
            return [
                [c.badge(s), col or "(rows)", m, "–" if val is None else f"{val:.4g}"]
                for col, m, val, s in qs
            ]

        header = ["status", "column", "metric", "value"]
        if flagged:
            out.append(c.table(PAGE, "quality", header, rows(flagged)))
        else:
            out.append(html.P("Every data-quality check passes.", id="model-quality-ok"))
        if rest:
            out.append(
                html.Details(
                    [
                        html.Summary(f"{len(rest)} other checks (healthy or no data)"),
                        c.table(PAGE, "quality-rest", header, rows(rest)),
                    ]
                )
            )
    else:
        out.append(c.empty(PAGE, "No data-quality results: add a data_quality monitor."))
    return out


@callback(Output("model-content", "children"), Input("model-params", "data"))
@guarded(PAGE)
def update(params: dict[str, Any], account: Account) -> Any:
    model = str(params.get("model") or "")
    try:
        tr = timerange.parse(params)
    except RangeError as exc:
        return timerange.error(PAGE, exc, f"/models/{model}", params)
    try:
        view = queries.model_view(
            services(),
            account.tenants,
            model,
            params.get("tenant"),
            tr.relative or tr,  # a span back from now: cached per minute
            metric=params.get("metric"),
        )
        why = None
        if view is not None:
            why = drift_impact.feature_impact(
                services(), account.tenants, model, view.tenant, tr.relative or tr, view.metric
            )
    except queries.AccessDenied as exc:
        return c.denied(PAGE, str(exc))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    if view is None:
        return c.empty(
            PAGE,
            f"Model {model!r} is not registered.",
            "Register it with `driftwatch models register`.",
        )
    return render(view, account, tr, why)


@callback(
    Output("model-nav", "href"),
    Input("model-heatmap", "clickData"),
    State("model-params", "data"),
    prevent_initial_call=True,
)
@guarded(PAGE)
def drill_down(click: dict[str, Any] | None, params: dict[str, Any], account: Account) -> Any:
    """A heatmap cell opens its feature page at that window."""
    if not click or not click.get("points"):
        return no_update
    point = click["points"][0]
    feature = point.get("y")
    if not feature:
        return no_update
    return c.href(
        f"/models/{params.get('model')}/features/{feature}",
        {
            "tenant": params.get("tenant"),
            **{k: params.get(k) for k in timerange.RANGE_PARAMS},
            "window": point.get("x"),
        },
    )
