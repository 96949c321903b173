"""Figure builders: plain, pure functions from read-model values to Plotly figures.

No I/O and no Dash here, so each is tested without a browser or a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go

from monitor.queries import Distribution, Heatmap, Series, VersionChange, status_text

STATUS_COLOR = {"ok": "#1f9d55", "warn": "#d98a00", "alert": "#d64545", "no_data": "#9aa3b2"}
# Lines tell series apart (tenants, metrics), so none takes a status colour: with red, green
# and amber in this list the feature page drew the drifting tenant (globex) green and a
# healthy one red, and every estimate red.
COLORS = ["#2f6fdf", "#0aa2b5", "#7a4fd6", "#8a5a44", "#c2409a", "#4b5a75"]
# The heatmap colours each cell by its stored status, the shade by value ÷ threshold within
# it: ok 0-1 (green, lighter further below the threshold), warn 1-2 (amber), alert 2-3 (red,
# darker further over it, up to twice the threshold). With FDR on, the status comes from the
# correction, so a cell over its uncorrected threshold may be ok: colouring by value ÷ threshold
# drew it red (the demo's acme churn heatmap had 22 such cells next to 6 in alert).
STATUS_SCALE = [
    [0.0, "#eef8f1"],
    [1 / 3, "#8fd1a6"],
    [1 / 3, "#ffe7a8"],
    [2 / 3, "#f0b43c"],
    [2 / 3, "#f4a08a"],
    [1.0, "#b81f1f"],
]
_STATUS_BAND = {"ok": 0.0, "warn": 1.0, "alert": 2.0}


def status_shade(status: str, score: float | None) -> float | None:
    """A heatmap cell's colour value: its status band (ok 0-1, warn 1-2, alert 2-3) and, in
    it, how far its value ÷ threshold is (ok: up to the threshold; alert: 1 to 2 times it)."""
    if score is None or status not in _STATUS_BAND:
        return None
    if status == "alert":
        within = min(max(score - 1.0, 0.0), 1.0)
    elif status == "warn":
        within = 0.5
    else:
        within = min(max(score, 0.0), 1.0)
    return _STATUS_BAND[status] + min(within, 0.999)


def _base(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        plot_bgcolor="#fff",
        paper_bgcolor="#fff",
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    fig.update_xaxes(showgrid=True, gridcolor="#eef0f4")
    fig.update_yaxes(showgrid=True, gridcolor="#eef0f4", zeroline=False)
    return fig


def mark_versions(
    fig: go.Figure, versions: Sequence[VersionChange], start: datetime | None = None
) -> go.Figure:
    """A dashed vertical line where each model version after the first appeared."""
    for v in versions[1:]:
        if start is not None and v.first_seen < start:
            continue
        fig.add_vline(x=v.first_seen, line={"dash": "dash", "color": "#7a4fd6", "width": 1})
        fig.add_annotation(
            x=v.first_seen,
            y=1,
            yref="paper",
            text=f"version {v.version}",
            showarrow=False,
            xanchor="left",
            font={"size": 10, "color": "#7a4fd6"},
        )
    return fig


def drift_heatmap(hm: Heatmap, versions: Sequence[VersionChange] = ()) -> go.Figure:
    """Feature × window drift, each cell coloured by its stored status (ok, warn, alert) and
    shaded by value ÷ threshold; the hover names both (and the q-value under FDR). Click a
    cell to open the feature (``customdata`` holds the feature name)."""
    statuses = hm.status or [
        ["no_data" if z is None else ("alert" if z >= 1 else "ok") for z in row] for row in hm.z
    ]
    shades = [
        [status_shade(st, z) for st, z in zip(srow, zrow, strict=True)]
        for srow, zrow in zip(statuses, hm.z, strict=True)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=shades,
            x=hm.windows,
            y=hm.features,
            text=hm.text,
            customdata=[[f] * len(hm.windows) for f in hm.features],
            hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
            colorscale=STATUS_SCALE,
            zmin=0,
            zmax=3,
            xgap=1,
            ygap=1,
            colorbar={
                "title": {"text": "status"},
                "thickness": 10,
                "tickvals": [0.5, 1.5, 2.5],
                "ticktext": ["ok", "warn", "alert"],
            },
        )
    )
    _base(
        fig,
        "Feature drift (colour: each check's status, darker further from its threshold; "
        "click a cell to open the feature)",
        height=max(260, 40 + 26 * len(hm.features)),
    )
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed", showgrid=False)
    fig.update_xaxes(showgrid=False)
    return mark_versions(fig, versions, hm.windows[0] if hm.windows else None)


def _named(name: str, part: str) -> str:
    """A trace's legend name: "psi threshold", or "threshold" for a series the chart's
    title already names (its name empty)."""
    return f"{name} {part}" if name else part


def _point_status(s: Series) -> list[str]:
    """Each point's stored status as hover text, with its q-value under FDR."""
    if len(s.status) != len(s.x):
        return [""] * len(s.x)
    qs = s.q if len(s.q) == len(s.x) else [None] * len(s.x)
    details = [{} if q is None else {"q_value": q, "fdr_alpha": s.fdr_level} for q in qs]
    return [status_text(st, d) for st, d in zip(s.status, details, strict=True)]


def series_chart(
    title: str,
    series: Sequence[Series],
    versions: Sequence[VersionChange] = (),
    y_title: str = "",
    threshold: bool = True,
    dashed: Sequence[Series] = (),
    labels_until: datetime | None = None,
) -> go.Figure:
    """Lines over time; each series' threshold as a dotted line and its band (``lower``,
    ``upper``) shaded. ``dashed`` series (estimates) are drawn dashed with their band.

    Each point is marked by its stored status: red in alert, amber in warning, in the line's
    colour otherwise; the hover names the status (and the q-value under FDR). A series whose
    status comes from the false-discovery-rate correction has its line named the
    *uncorrected* threshold: a point over it may be ok, and the title says so."""
    fig = go.Figure()
    # an estimate takes the colour of the realized series it estimates (same name)
    by_name = {s.name: COLORS[i % len(COLORS)] for i, s in enumerate(series)}
    flagged: set[str] = set()
    for i, s in enumerate([*series, *dashed]):
        is_est = i >= len(series)
        color = by_name.get(s.name, COLORS[i % len(COLORS)]) if is_est else COLORS[i % len(COLORS)]
        if any(v is not None for v in s.upper) and any(v is not None for v in s.lower):
            fig.add_trace(
                go.Scatter(
                    x=s.x,
                    y=s.upper,
                    mode="lines",
                    line={"width": 0},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=s.x,
                    y=s.lower,
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor="rgba(47,111,223,0.12)",
                    name=_named(s.name, "band"),
                    hoverinfo="skip",
                )
            )
        statuses = s.status if len(s.status) == len(s.x) else [""] * len(s.x)
        flagged |= {st for st in statuses if st in ("alert", "warn")}
        plain = 5 if len(s.x) < 60 else 0  # many points: only the flagged ones marked
        fig.add_trace(
            go.Scatter(
                x=s.x,
                y=s.y,
                mode="lines+markers",
                name=(f"{s.name} (estimated)" if s.name else "estimated")
                if is_est
                else s.name or "value",
                line={"color": color, "dash": "dash" if is_est else "solid", "width": 2},
                marker={
                    "size": [9 if st in ("alert", "warn") else plain for st in statuses],
                    "color": [
                        STATUS_COLOR[st] if st in ("alert", "warn") else color for st in statuses
                    ],
                },
                customdata=_point_status(s),
                hovertemplate="%{y:.4g} · %{customdata}" if any(statuses) else None,
            )
        )
        if threshold and not is_est and any(t is not None for t in s.threshold):
            fig.add_trace(
                go.Scatter(
                    x=s.x,
                    y=s.threshold,
                    mode="lines",
                    name=_named(s.name, "uncorrected threshold" if s.fdr else "threshold"),
                    line={"color": color, "dash": "dot", "width": 1},
                )
            )
    for st, label in (("alert", "in alert (stored status)"), ("warn", "in warning")):
        if st in flagged:  # a legend entry for the status marks (no data of its own)
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    name=label,
                    marker={"size": 9, "color": STATUS_COLOR[st]},
                    hoverinfo="skip",
                    meta="status-legend",
                )
            )
    if threshold and any(s.fdr for s in series):
        title += (
            "<br><sup>the dotted line is the uncorrected per-test threshold; the status comes "
            "from the false-discovery-rate correction, so a point over the line may be ok "
            "(its q-value in the hover)</sup>"
        )
    _base(fig, title)
    if "<sup>" in title:
        fig.update_layout(margin={"t": 62})
    fig.update_yaxes(title=y_title)
    if labels_until is not None:
        fig.add_vline(x=labels_until, line={"color": "#6b7385", "width": 1})
        fig.add_annotation(
            x=labels_until,
            y=0.95,
            yref="paper",
            text="labels until here",
            showarrow=False,
            xanchor="right",
            font={"size": 10, "color": "#6b7385"},
        )
    start = min((s.x[0] for s in [*series, *dashed] if s.x), default=None)
    return mark_versions(fig, versions, start)


def distribution_overlay(d: Distribution) -> go.Figure:
    """Reference vs current shares per bin or category."""
    fig = go.Figure(
        [
            go.Bar(x=d.labels, y=d.reference, name="reference", marker_color="#9aa3b2"),
            go.Bar(
                x=d.labels, y=d.current, name="current window", marker_color="#2f6fdf", opacity=0.75
            ),
        ]
    )
    _base(fig, f"Distribution: reference vs window of {d.window_start:%Y-%m-%d %H:%M}")
    # the bins' range labels stand rotated under the axis, as deep as they are long: a legend
    # below the plot (the other charts' place) was drawn over them, so it goes above the plot
    fig.update_layout(
        barmode="overlay" if d.kind == "numeric" else "group",
        bargap=0.05,
        margin={"t": 70},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(title="share of rows", tickformat=".0%")
    return fig


def kpi_trend(
    s: Series,
    target: float | None,
    alerts: Sequence[tuple[datetime, str]] = (),
    versions: Sequence[tuple[datetime, str, str]] = (),
    unit: str = "",
    estimated: Series | None = None,
) -> go.Figure:
    """A KPI over time with its target, alerts (red markers: a model's or a KPI's alert
    began) and version changes; ``estimated`` windows (business value without labels yet) are
    drawn dashed."""
    fig = go.Figure(
        go.Scatter(x=s.x, y=s.y, mode="lines", name=s.name, line={"color": "#2f6fdf", "width": 2})
    )
    if estimated is not None and estimated.x:
        # join the dashed part to the last realized point so the line reads as one
        x = ([s.x[-1]] if s.x else []) + list(estimated.x)
        y = ([s.y[-1]] if s.y else []) + list(estimated.y)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name="estimated",
                line={"color": "#2f6fdf", "width": 2, "dash": "dash"},
            )
        )
    if target is not None and s.x:
        fig.add_hline(
            y=target,
            line={"dash": "dot", "color": "#1f9d55"},
            annotation_text="target",
            annotation_position="top left",
        )
    values = [v for v in [*s.y, *(estimated.y if estimated else [])] if v is not None]
    lo = min(values, default=0.0)
    for ts, label in alerts:
        fig.add_trace(
            go.Scatter(
                x=[ts],
                y=[lo],
                mode="markers",
                name="alert began",
                showlegend=False,
                marker={"symbol": "triangle-up", "size": 11, "color": "#d64545"},
                hovertext=label,
                hoverinfo="text+x",
            )
        )
    for ts, model, version in versions:
        fig.add_vline(x=ts, line={"dash": "dash", "color": "#7a4fd6", "width": 1})
        fig.add_annotation(
            x=ts,
            y=1,
            yref="paper",
            text=f"{model} {version}",
            showarrow=False,
            xanchor="left",
            font={"size": 10, "color": "#7a4fd6"},
        )
    _base(fig, "", height=220)
    fig.update_layout(margin={"l": 50, "r": 10, "t": 10, "b": 30}, showlegend=False)
    if unit == "%" and all(abs(v) <= 1.5 for v in s.y if v is not None):
        fig.update_yaxes(tickformat=".0%")  # rates are stored as fractions
    else:
        fig.update_yaxes(title=unit)
    return fig
