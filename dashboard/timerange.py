"""The time-range bar every page with a time axis shows: presets back from now, a from/to
date picker (the browser's own ``<input type=date>``), and what range is shown; all of it in
the URL (``range=`` or ``from=``/``to=``, see ``monitor.timerange``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dash import html

from dashboard import components as c
from dashboard import markup as m
from dashboard.auth import services
from monitor.timerange import PRESETS, RangeError, TimeRange, date_inputs, parse_time_range

RANGE_PARAMS = ("range", "from", "to")


def parse(params: Mapping[str, Any], default: str = "30d") -> TimeRange:
    """The range of a page's URL parameters (raises :class:`RangeError`)."""
    svc = services()
    return parse_time_range(params, svc.now(), svc.settings.max_range_days, default)


def bar(
    page: str, path: str, tr: TimeRange | None, keep: Mapping[str, Any], any_time: bool = False
) -> html.Div:
    """Presets and a from/to picker for ``path``; ``keep`` are the page's other URL
    parameters (tenant, metric, ...), carried by every link and by the form. ``any_time``:
    the page also shows everything (no range), offered as a preset and shown when ``tr`` is
    None."""
    rest = {k: v for k, v in keep.items() if v not in (None, "") and k not in RANGE_PARAMS}
    presets = []
    if any_time:
        presets.append(
            m.link(
                "any time",
                c.href(path, rest),
                class_="pill active" if tr is None else "pill",
                id=f"{page}-range-any",
            )
        )
    presets += [
        m.link(
            p,
            c.href(path, {**rest, "range": p}),
            class_="pill active" if tr is not None and tr.relative == p else "pill",
            id=f"{page}-range-{p}",
        )
        for p in PRESETS
    ]
    start, last = date_inputs(tr) if tr is not None else ("", "")
    form = m.tag(
        "form",
        *[m.void("input", type="hidden", name=k, value=v) for k, v in rest.items()],
        m.tag(
            "label",
            m.tag("span", "From", class_="filter-label"),
            m.void("input", type="date", name="from", value=start, id=f"{page}-from"),
            class_="field",
        ),
        m.tag(
            "label",
            m.tag("span", "To (included)", class_="filter-label"),
            m.void("input", type="date", name="to", value=last, id=f"{page}-to"),
            class_="field",
        ),
        m.tag("button", "Show", type="submit", class_="secondary", id=f"{page}-range-apply"),
        action=path,
        method="get",
        class_="filters filter-form",
        data_dash_nav=True,
    )
    label = tr.label if tr is not None else "any time" if any_time else ""
    shown = (
        m.tag("span", "Showing ", m.tag("b", label), class_="muted", id=f"{page}-range-shown")
        if label
        else ""
    )
    content = m.tag(
        "div",
        m.tag("div", m.tag("span", "Range", class_="filter-label"), *presets, class_="filters"),
        form,
        shown,
        class_="range-bar",
    )
    return m.block(content, f"{page}-range")


def error(page: str, exc: RangeError, path: str, keep: Mapping[str, Any]) -> list[Any]:
    """A visible message naming what is wrong with the range, and the bar to pick another
    (the page shows no data rather than a range the user did not ask for)."""
    return [
        html.Div(
            [
                html.Strong("This page's time range is not valid: "),
                *[html.Div(e) for e in exc.errors],
            ],
            className="error",
            role="alert",
            id=f"{page}-range-error",
        ),
        bar(page, path, None, keep),
    ]
