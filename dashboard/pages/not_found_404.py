"""Unknown paths."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", title="Not found · Driftwatch")


def layout(**_params: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Page not found"),
            html.P(["Go back to the ", dcc.Link("overview", href="/"), "."]),
        ],
        id="notfound",
    )
