"""Markup and charts of the alert page (pure functions from its read models): the facts with
labels as chips and the runbook, where to look next, one chart per unit, the notification
log."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from dash import dcc, html

from dashboard import components as c
from dashboard import figures
from dashboard import markup as m
from dashboard.alert_list import chips
from monitor.accounts import Account
from monitor.alert_leads import AlertLeads
from monitor.queries import ALL, AlertView, Series
from monitor.readable import fmt_change, fmt_pct, fmt_signed, fmt_value

PAGE = "alert"


def _day(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d")


def around(v: AlertView) -> dict[str, str]:
    """URL parameters of the alert's time range (whole days around it) for linked pages."""
    if v.start is None or v.end is None:
        return {}
    last = v.end - timedelta(microseconds=1)
    return {"from": _day(v.start), "to": _day(last)}


def _tenant_text(tenant: str) -> str:
    return "all tenants together" if tenant in ("", ALL) else tenant


def facts(v: AlertView, leads: AlertLeads, account: Account) -> m.Markup:
    a = v.alert
    model: Any = a.model or "–"
    if a.model and account.can_open("model"):
        model = m.link(a.model, c.href(f"/models/{a.model}", {"tenant": a.tenant_id, **around(v)}))
    # a KPI's monitor and metric are both its name: "conversion_rate", not said twice
    what = " · ".join(
        dict.fromkeys(
            x
            for x in (
                a.labels.get("monitor", ""),
                a.labels.get("column", ""),
                a.labels.get("metric", ""),
            )
            if x
        )
    )
    if leads.runbook_url and m.safe_url(leads.runbook_url):
        runbook: Any = m.external(leads.runbook_url, leads.runbook_url, id="alert-runbook")
    else:
        runbook = m.tag(
            "span",
            f"none: add annotations.runbook_url to the rule {a.rule!r}"
            if not leads.runbook_url
            else f"not shown: {leads.runbook_url!r} is not an http(s) link",
            class_="muted",
            id="alert-runbook-missing",
        )
    rows: list[tuple[str, Any]] = [
        (
            "State",
            m.join(
                [
                    m.tag("span", a.state, class_=f"badge badge-{a.state}"),
                    " ",
                    m.tag("span", a.severity, class_=f"badge badge-{a.severity}"),
                ]
            ),
        ),
        ("Rule", a.rule),
        ("What", what or "–"),
        ("Tenant", _tenant_text(a.tenant_id)),
        ("Model", model),
        (
            "Since",
            m.join(
                [
                    f"{c.fmt_ts(a.starts_at or a.active_at)} (start of the first breaching window)",
                    m.tag("span", f" {c.ago(a.starts_at or a.active_at)}", class_="muted"),
                ]
            ),
        ),
        ("Fired by Driftwatch", c.fmt_ts(getattr(a, "fired_at", None))),
        (
            "Resolved",
            f"{c.fmt_ts(a.ends_at)} (start of the window that resolved it)" if a.ends_at else "–",
        ),
        ("Value / threshold", _value_row(v)),
        (
            "Acknowledged",
            f"{a.acknowledged_by} at {c.fmt_ts(a.acknowledged_at)}" if a.acknowledged_at else "no",
        ),
        ("Notifications muted", _muted(v)),
        ("Runbook", runbook),
        ("Labels", m.tag("div", chips(a.labels, skip=set()), class_="chips", id="alert-labels")),
    ]
    if a.annotations.get("description"):
        rows.append(("Description", a.annotations["description"]))
    return m.tag(
        "table",
        m.tag("tbody", *[m.tag("tr", m.tag("th", k), m.tag("td", val)) for k, val in rows]),
        class_="table facts",
        id="alert-facts",
    )


def kpi_unit(v: AlertView) -> str | None:
    """A KPI alert's unit (its context's, else its KPI's now), None for a model alert."""
    a = v.alert
    if a.labels.get("source") != "kpi":
        return None
    unit = (a.context or {}).get("unit")
    return unit if isinstance(unit, str) else v.kpi_units.get(a.labels.get("metric", ""))


def _value(v: AlertView, x: float | None) -> str:
    """A KPI alert's value with its KPI's unit (``17.6 %``, as the KPI pages say it)."""
    unit = kpi_unit(v)
    return _f(x) if unit is None else fmt_value(x, unit)


def _value_row(v: AlertView) -> m.Markup:
    """``0.31 / 0.10 in the last breaching window, 2026-11-20``: the value is the last
    breaching window's (kept when the alert resolves), which the reader cannot guess."""
    a = v.alert
    text = f"{_value(v, a.value)} / {_value(v, a.threshold)}"
    window = (a.context or {}).get("window") or {}
    try:
        start = datetime.fromisoformat(window["start"])
        end = datetime.fromisoformat(window["end"])
    except (KeyError, TypeError, ValueError):
        return m.join([text])
    where = f" in the last breaching window, {c.fmt_window(start, end)}"
    return m.join([text, m.tag("span", where, class_="muted", id="alert-value-window")])


def _muted(v: AlertView) -> m.Markup:
    """Whether and why this alert's notifications are muted now (silences, inhibition)."""
    parts = [
        m.esc(
            f"silenced by silence {s.id} ({s.reason}, by {s.created_by}) until {c.fmt_ts(s.ends_at)}"
        )
        for s in getattr(v, "silences", ())
    ]
    parts += [
        m.join(["inhibited by ", m.link(f"alert {i.id} ({i.rule})", f"/alerts/{i.id}")])
        for i in getattr(v, "inhibitors", ())
    ]
    if not parts:
        return m.esc("no")
    return m.tag("span", m.join(parts, "; "), id="alert-muted")


def _pct(x: float | None) -> str:
    return fmt_pct(x, digits=0)


def lead_items(v: AlertView, leads: AlertLeads, account: Account) -> list[m.Markup]:
    """Where to look next, most direct first."""
    rng = around(v)
    items: list[m.Markup] = []
    who = _tenant_text(leads.tenant)
    if leads.model and account.can_open("model"):
        items.append(
            m.join(
                [
                    m.link(
                        f"Model {leads.model} for {who}",
                        c.href(f"/models/{leads.model}", {"tenant": leads.tenant, **rng}),
                        id="alert-lead-model",
                    ),
                    m.tag("span", f" — {rng.get('from')} to {rng.get('to')}", class_="muted"),
                ]
            )
        )
    if leads.column and account.can_open("feature"):
        params = {"tenant": leads.tenant, **rng}
        at = ""
        if leads.window is not None:
            params["window"] = leads.window.isoformat()
            at = f" at the window of {c.fmt_ts(leads.window)}"
        items.append(
            m.join(
                [
                    m.link(
                        f"Feature {leads.column}: its distribution against the reference{at}",
                        c.href(f"/models/{leads.model}/features/{leads.column}", params),
                        id="alert-lead-feature",
                    )
                ]
            )
        )
    if leads.drifted:
        at = f" in the window of {c.fmt_ts(leads.window)}" if leads.window is not None else ""
        parts: list[Any] = []
        for d in leads.drifted:
            if d.feature and account.can_open("feature"):
                params = {"tenant": leads.tenant, **rng}
                if leads.window is not None:
                    params["window"] = leads.window.isoformat()
                name: Any = m.link(
                    d.name, c.href(f"/models/{leads.model}/features/{d.name}", params)
                )
            else:
                name = d.name
            if d.alert_id is not None:
                name = m.join([name, " (", m.link(f"#{d.alert_id}", f"/alerts/{d.alert_id}"), ")"])
            parts.append(name)
        items.insert(
            0,
            m.tag(
                "span",
                f"Drifting{at}: ",
                m.join(parts, ", "),
                id="alert-lead-drifted",
            ),
        )
    if leads.tenant not in ("", ALL):
        text = f"Business KPIs of {leads.tenant}"
        if account.can_open("kpis"):
            items.append(m.link(text, c.href(f"/kpis/{leads.tenant}", rng), id="alert-lead-kpis"))
        else:
            items.append(
                m.tag("span", f"{text} (the KPI pages are not open to your role)", class_="muted")
            )
    for t in leads.twins:
        state = t.state_text(v.alert.id)  # as the twin's own row reads it
        if leads.tenant in ("", ALL):
            text = f"The same signal for {t.tenant_id} alone: #{t.id} ({state})"
        else:
            text = f"The same signal over all tenants together: #{t.id} ({state})"
        items.append(m.link(text, f"/alerts/{t.id}", class_="twin-link"))
    if leads.drivers:
        ranked = sorted(leads.drivers, key=lambda d: -(d.contribution or 0.0))
        parts = [
            m.join(
                [
                    m.link(
                        d.tenant_id,
                        c.href(f"/models/{leads.model}", {"tenant": d.tenant_id, **rng}),
                    )
                    if account.can_open("model")
                    else d.tenant_id,
                    f" (its own {_f(d.statistic)}; without it {_f(d.without)})",
                ]
            )
            for d in ranked
        ]
        items.append(
            m.tag(
                "span",
                "Which tenants carry it (leave one out, newest window): ",
                m.join(parts, "; "),
                id="alert-lead-drivers",
            )
        )
    for k in leads.related_kpis:
        text = f"{k.kpi} of {k.tenant_id} moved with this alert: "
        if k.before is not None and k.during is not None:
            unit = k.unit or v.kpi_units.get(k.kpi, "")
            text += f"{fmt_value(k.during, unit)} against {fmt_value(k.before, unit)} before"
            # a rate moves by points, as on the KPI pages; a count or an amount by a
            # percentage only where it means something: of the two levels shown, both above
            # zero, at most doubled (a money KPI from 5 to 110 EUR read "+2093 %")
            if unit == "%":
                text += f" ({fmt_change(k.during - k.before, k.before, unit)})"
            elif k.before > 0 and k.during > 0 and abs(k.during / k.before - 1) <= 1:
                text += f" ({_pct(k.during / k.before - 1)})"
        else:
            text += f"{_pct(k.change)} against the windows before"
            if (k.unit or v.kpi_units.get(k.kpi, "")) == "%":
                text += " (relative to its level)"
        if k.correlation is not None:
            text += f", correlation {fmt_signed(k.correlation)}"
        if account.can_open("kpis"):
            items.append(m.link(text, c.href(f"/kpis/{k.tenant_id}", rng), class_="related-kpi"))
        else:
            items.append(m.tag("span", text, class_="related-kpi"))
    for s in leads.related_signals:
        what = (
            f"{s.model}: {s.metric}" + (f" of {s.column}" if s.column else "") + f" ({s.monitor})"
        )
        if s.breached:
            since = f" since {c.fmt_ts(s.breached_since)}" if s.breached_since else ""
            what += f", over its threshold ({s.breached}){since}"
        if s.correlation is not None:
            what += f", correlation {fmt_signed(s.correlation)}"
        model_page = account.can_open("model")
        if s.kind == "feature_drift" and s.column and account.can_open("feature"):
            href = c.href(f"/models/{s.model}/features/{s.column}", {"tenant": leads.tenant, **rng})
            items.append(m.link(what, href, class_="related-signal"))
        elif model_page:
            href = c.href(f"/models/{s.model}", {"tenant": leads.tenant, **rng})
            items.append(m.link(what, href, class_="related-signal"))
        else:
            items.append(m.tag("span", what, class_="related-signal"))
    if not items:
        items.append(m.tag("span", "No linked page for this alert.", class_="muted"))
    return items


def leads_block(v: AlertView, leads: AlertLeads, account: Account) -> m.Markup:
    items = lead_items(v, leads, account)
    note = (
        m.tag("p", leads.note, class_="muted")
        if leads.related_kpis or leads.related_signals
        else ""
    )
    return m.tag(
        "div",
        m.tag("h2", "Where to look next"),
        m.tag("ul", *[m.tag("li", i) for i in items], class_="leads"),
        note,
        class_="card",
        id="alert-leads",
    )


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _mark(fig: Any, ts: datetime) -> Any:
    fig.add_vline(x=ts, line={"color": "#d64545", "width": 1, "dash": "dot"})
    fig.add_annotation(
        x=ts,
        y=1,
        yref="paper",
        text="first breaching window",
        showarrow=False,
        xanchor="left",
        font={"size": 10, "color": "#d64545"},
    )
    return fig


def _without(name: str, metric: str) -> str:
    """A series name without the metric its chart's title names."""
    return " ".join(w for w in name.split(" ") if w and w != metric)


def charts(v: AlertView) -> list[Any]:
    """One chart per metric of the signal, and one small chart per KPI with its own unit:
    never two units on one axis."""
    a = v.alert
    out: list[Any] = []
    by_metric: dict[str, list[Series]] = defaultdict(list)
    for s, metric in zip(v.signal, v.signal_metrics or [""] * len(v.signal), strict=False):
        by_metric[metric].append(s)
    for i, (metric, series) in enumerate(sorted(by_metric.items())):
        # the title names the metric (a KPI's name): the legend names only what tells the
        # lines apart ("conversion_rate" twice read "conversion_rate conversion_rate")
        named = [replace(s, name=_without(s.name, metric)) for s in series]
        fig = figures.series_chart(
            f"{metric or 'The signal'} around the alert", named, y_title=metric
        )
        if kpi_unit(v) == "%" and all(abs(y) <= 1.5 for s in series for y in s.y if y is not None):
            fig.update_yaxes(tickformat=".0%")  # as the KPI's own chart below (control: 0.2)
        out.append(
            html.Div(
                dcc.Graph(
                    id="alert-signal" if i == 0 else f"alert-signal-{i}",
                    figure=_mark(fig, a.active_at),
                    config={"displayModeBar": False},
                ),
                className="card",
            )
        )
    if not v.signal:
        out.append(c.empty(PAGE, "No stored results match this alert's labels."))
    if v.kpis:
        cards = []
        for s in v.kpis:
            unit = v.kpi_units.get(s.name, "")
            title = f"{s.name.replace('_', ' ')}" + (f" ({unit})" if unit else "")
            fig = figures.series_chart(title, [s], y_title=unit, threshold=True)
            if unit == "%" and all(abs(y) <= 1.5 for y in s.y if y is not None):
                fig.update_yaxes(tickformat=".0%", title="")  # rates stored as fractions
            fig.update_layout(height=240, showlegend=False)
            cards.append(
                html.Div(
                    dcc.Graph(
                        id=f"alert-kpi-{s.name}",
                        figure=_mark(fig, a.active_at),
                        config={"displayModeBar": False},
                    ),
                    className="card small-chart",
                )
            )
        out += [
            html.H2(f"KPIs of {a.tenant_id} (one chart each: each has its own unit)"),
            html.Div(cards, className="row", id="alert-kpis"),
        ]
    return out


def notifications(v: AlertView) -> Any:
    if not v.notifications and v.missing_channels and v.alert.state == "firing":
        names = ", ".join(v.missing_channels)
        return c.empty(
            PAGE,
            f"Waiting for a channel: {names} does not exist or is disabled",
            "The notification goes out once the rule's channel exists and is enabled "
            "(driftwatch channels list).",
        )
    if not v.notifications and v.rule_channels == ():
        return c.empty(
            PAGE,
            f"Not sent: the rule {v.alert.rule!r} has no channel",
            "Its alerts show on the dashboard only; add channels to the rule to be notified.",
        )
    if not v.notifications and v.inhibitors:
        return c.empty(
            PAGE,
            "Not sent: inhibited by " + ", ".join(f"#{i.id} ({i.rule})" for i in v.inhibitors),
            "The inhibiting alert's notification stands for this one (see Notifications "
            "muted above).",
        )
    if not v.notifications:
        return c.empty(
            PAGE,
            "No notification sent for this alert yet",
            "Notifications go out when its group flushes; add a channel to the rule "
            "if none is configured.",
        )
    rows = [
        m.tag(
            "tr",
            *[
                m.tag("td", val, data_label=label)
                for label, val in (
                    ("at", c.fmt_ts(n.at)),
                    ("status", n.status),
                    ("channel", n.channel or "–"),
                    ("event", n.event),
                    ("attempts", str(n.attempts)),
                    ("detail", n.detail),
                )
            ],
        )
        for n in v.notifications
    ]
    head = m.tag(
        "tr", *[m.tag("th", h) for h in ("at", "status", "channel", "event", "attempts", "detail")]
    )
    table = m.tag(
        "table",
        m.tag("thead", head),
        m.tag("tbody", *rows),
        class_="table",
        id="alert-notifications",
    )
    return m.block(table, "alert-notifications")
