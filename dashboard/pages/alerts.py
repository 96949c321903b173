"""Alerts ``/alerts``: one page of alerts at a time, sorted and filtered on the server.

Filters, sort and page live in the URL (``state``, ``severity``, ``tenant``, ``model``,
``rule``, ``sort``, ``order``, ``page``, ``per_page``); a bad value is named in a message,
never replaced silently. The table is markup (``dashboard.markup``): one component however
many rows, so a page of alerts appears at once.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard import auth, timerange
from dashboard import components as c
from dashboard.alert_list import render
from monitor import alert_pages, queries
from monitor.timerange import RangeError

dash.register_page(__name__, path_template="/alerts", name="Alerts", title="Alerts · Driftwatch")

PAGE = "alerts"


def layout(**params: Any) -> html.Div:
    # Rendered here, not in a callback after the layout: one round trip and one render pass
    # less, so the list appears sooner (the router's request passed the same access check).
    return html.Div([html.H1("Alerts"), html.Div(content(params), id="alerts-content")])


def bad_params(errors: list[str]) -> html.Div:
    return html.Div(
        [
            html.Strong("This alert list's URL has a bad value: "),
            *[html.Div(e) for e in errors],
            dcc.Link("Show the default list", href="/alerts"),
        ],
        className="error",
        role="alert",
        id="alerts-bad-params",
    )


def content(params: dict[str, Any]) -> Any:
    acct = auth.account()
    if acct is None or not acct.can_open(PAGE):
        return c.denied(PAGE, "Log in with a role that may open the alert list.")
    filters, errors = alert_pages.parse_filters(params or {})
    if errors:
        return bad_params(errors)
    try:
        view = alert_pages.alert_list(auth.services(), acct.tenants, filters)
    except RangeError as exc:
        return timerange.error(PAGE, exc, "/alerts", filters.params())
    except queries.AccessDenied as exc:
        return c.denied(PAGE, str(exc))
    except Exception as exc:
        return c.error_box(PAGE, exc)
    return render(view)
