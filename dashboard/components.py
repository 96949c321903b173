"""Shared pieces of every page: the shell (navigation by role), freshness stamp, empty
states, error boxes, status badges and filter links that keep filters in the URL."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dash import dcc, html

from dashboard.auth import services
from monitor.accounts import Account
from monitor.errors import DriftwatchError
from monitor.readable import fmt_time

log = logging.getLogger("driftwatch.dashboard")

NAV = [
    ("Overview", "/", "overview"),
    ("Alerts", "/alerts", "alerts"),
    ("KPIs", "/kpis", "kpis"),
    ("Monitors", "/monitors", "monitors"),
]
STATUS_LABEL = {"alert": "Alert", "warn": "Warning", "ok": "Healthy", "no_data": "No data"}


def shell(acct: Account | None, content: Any, csrf: str = "") -> html.Div:
    links = [
        dcc.Link(label, href=href, className="nav-link", id=f"shell-nav-{page}")
        for label, href, page in NAV
        if acct is not None and acct.can_open(page)
    ]
    who: list[Any] = []
    if acct is not None:
        scope = ", ".join(acct.tenants) if acct.tenants else "all tenants"
        who = [
            html.Span(f"{acct.username} · {acct.role} · {scope}", className="who"),
            # POST with the session's CSRF token: a link (GET) could be fired by any page
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf_token", value=csrf, id="shell-csrf"),
                    html.Button(
                        "Log out", type="submit", className="nav-link logout", id="shell-logout"
                    ),
                ],
                method="post",
                action="/logout",
                className="logout-form",
            ),
        ]
    return html.Div(
        [
            html.Header(
                [html.A("Driftwatch", href="/", className="brand"), html.Nav(links), *who],
                className="topbar",
            ),
            html.Main(content, className="content"),
        ]
    )


def ago(ts: datetime | None, now: datetime | None = None) -> str:
    """``"3 h ago"``-style age of a timestamp."""
    if ts is None:
        return "never"
    delta = (now or services().now()) - ts
    return f"{duration(delta)} ago" if delta >= timedelta(0) else "in the future"


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return "–"
    s = max(delta.total_seconds(), 0)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def fmt_ts(ts: datetime | None) -> str:
    """``2026-11-25 00:00 UTC``: the one format of times people read (alert texts, CLI)."""
    return fmt_time(ts)


def fmt_window(start: datetime, end: datetime) -> str:
    """A window as people read it: whole UTC days by their dates ("2026-12-02", "2026-11-30
    to 2026-12-06"), otherwise by its start and end times."""
    midnight = all(t.hour == t.minute == t.second == 0 for t in (start, end))
    if midnight:
        last = end - timedelta(days=1)
        day = f"{start:%Y-%m-%d}"
        return day if last.date() == start.date() else f"{day} to {last:%Y-%m-%d}"
    return f"{fmt_ts(start)} to {fmt_ts(end)}"


def overlap_note(page: str, span: tuple[datetime, datetime] | None) -> list[html.P]:
    """What a page shows when its range holds no window's start (24h on daily monitors):
    the window(s) overlapping the range, named."""
    if span is None:
        return []
    return [
        html.P(
            f"No window starts in this range (the monitors' windows are longer than it): "
            f"showing the window it falls in, {fmt_window(*span)}.",
            className="muted",
            id=f"{page}-overlap",
        )
    ]


def freshness(page: str, ts: datetime | None) -> html.P:
    """ "Data last computed …" line every page shows."""
    text = (
        f"Data last computed {fmt_ts(ts)} ({ago(ts)})."
        if ts
        else "No results computed yet: monitors have not run."
    )
    return html.P(text, className="freshness", id=f"{page}-freshness")


def empty(page: str, title: str, *lines: Any) -> html.Div:
    """An empty state saying what to do next."""
    return html.Div(
        [html.H3(title), *[html.P(line) for line in lines]],
        className="empty",
        id=f"{page}-empty",
    )


def error_box(page: str, exc: BaseException, what: str = "loading this page") -> html.Div:
    """A plain sentence for the user; the exception (type, traceback) goes to the server log
    under a short reference the user can quote. Only our own errors, whose messages are
    written for users, are shown as they are."""
    ref = secrets.token_hex(4)
    log.exception("dashboard error while %s [ref %s]", what, ref)
    if isinstance(exc, DriftwatchError):
        message = exc.message
    else:
        message = f"Something went wrong on the server (reference {ref}); try again later."
    return html.Div(
        [
            html.Strong(f"Could not finish {what}. "),
            html.Span(message),
        ],
        className="error",
        role="alert",
        id=f"{page}-error",
    )


def denied(page: str, message: str) -> html.Div:
    return html.Div(message, className="error", role="alert", id=f"{page}-denied")


def badge(status: str, text: str | None = None) -> html.Span:
    return html.Span(text or STATUS_LABEL.get(status, status), className=f"badge badge-{status}")


def href(path: str, params: Mapping[str, Any]) -> str:
    q = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(q)}" if q else path


def filter_links(
    page: str,
    name: str,
    label: str,
    options: Sequence[tuple[str, str]],
    current: str,
    path: str,
    params: Mapping[str, Any],
) -> html.Div:
    """A row of links, one per option, each the current URL with ``name`` set: filters live
    in the URL, so a link can be shared."""
    return html.Div(
        [
            html.Span(label, className="filter-label"),
            *[
                dcc.Link(
                    text,
                    href=href(path, {**params, name: value}),
                    className="pill active" if value == current else "pill",
                    id=f"{page}-{name}-{i}",
                )
                for i, (value, text) in enumerate(options)
            ],
        ],
        className="filters",
    )


def table(page: str, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> html.Table:
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        className="table",
        id=f"{page}-{name}",
    )
