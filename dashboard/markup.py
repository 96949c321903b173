"""Escaped HTML for the parts of a page with many elements, shown without a component each.

Dash 4's renderer renders every component on its own, and its cost grows faster than the
number of components in a callback's output: a 200-row table of ``html.Td`` cells took 42 s
to appear in Chromium (profile: almost all of it in ``dash_renderer``); the previous alert
list took over 4 minutes for its 500 rows. ``dcc.Markdown`` holding the same table as HTML
took 1.3 s, most of it parsing the HTML into React elements. So long tables, chips and filter
bars are built here as one escaped HTML string, and :func:`block` ships it in a ``dcc.Store``
that a clientside callback writes into its container's ``innerHTML``: one parse by the
browser's own HTML parser, no React element per cell.

Safety: every text and attribute value goes through :func:`esc` (``markupsafe``); element and
attribute names come from this code only, never from data; no ``on*`` attribute and no
``<script>`` is ever written (and ``innerHTML`` does not run scripts); :func:`safe_url` keeps
only http(s) and site-relative links. Links inside the app (:func:`link`, ``data-link``)
navigate without a reload: ``assets/nav.js`` pushes the history entry Dash's router listens
to, as ``dcc.Link`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from dash import MATCH, Input, Output, State, clientside_callback, dcc, html
from markupsafe import Markup, escape

__all__ = ["Markup", "block", "esc", "external", "join", "link", "safe_url", "tag", "void"]

_ATTR_NAMES = {"class_": "class", "for_": "for"}


def esc(value: Any) -> Markup:
    """``value`` as text safe in element content and in a double-quoted attribute."""
    if isinstance(value, Markup):
        return value
    return escape("" if value is None else str(value))


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Concatenate escaped ``parts`` (Markup kept as is)."""
    return Markup(esc(sep).join(esc(p) for p in parts))


def _attrs(attrs: Mapping[str, Any]) -> str:
    out = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        key = _ATTR_NAMES.get(name, name.replace("_", "-"))
        if key.lower().startswith("on"):
            raise ValueError(f"event handler attribute {key!r} is never written")
        out.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    return "".join(out)


def tag(element: str, *children: Any, **attrs: Any) -> Markup:
    """``<element attrs>children</element>``; ``class_="x"`` gives ``class``, ``data_label``
    gives ``data-label``, ``True`` a bare attribute; None and False attributes are left out."""
    return Markup(f"<{element}{_attrs(attrs)}>{join(children)}</{element}>")


def void(element: str, **attrs: Any) -> Markup:
    """An element without content (``input``, ``br``)."""
    return Markup(f"<{element}{_attrs(attrs)}>")


def safe_url(url: Any) -> str | None:
    """``url`` if it is site-relative (``/…``) or http(s), else None (no ``javascript:``)."""
    text = str(url or "").strip()
    if text.startswith("/") and not text.startswith("//"):
        return text
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc:
        return text
    return None


def link(text: Any, href: str, **attrs: Any) -> Markup:
    """A link inside the app: history push and Dash's router, no reload (``nav.js``)."""
    url = safe_url(href)
    if url is None or not url.startswith("/"):
        raise ValueError(f"{href!r} is not a path inside the app")
    return tag("a", text, href=url, data_link=True, **attrs)


def external(text: Any, href: str, **attrs: Any) -> Markup:
    """A link out of the app, opened in a new tab; plain text if ``href`` is not http(s)."""
    url = safe_url(href)
    if url is None:
        return esc(text)
    return tag("a", text, href=url, target="_blank", rel="noopener noreferrer", **attrs)


def block(content: Markup, name: str, class_: str = "") -> html.Div:
    """``content`` in a container ``div`` (``data-markup=name``); ``name`` is unique on its
    page and starts with the page's prefix."""
    return html.Div(
        [
            dcc.Store(id={"type": "markup-html", "index": name}, data=str(content)),
            html.Div(
                id={"type": "markup", "index": name},
                className=f"markup {class_}".strip(),
                **{"data-markup": name},  # type: ignore[arg-type]  # dash takes data-* props; its types do not
            ),
        ]
    )


# Writes each block's HTML into its container when the block appears or changes. Returns
# no_update: the container's props stay as the server sent them, so React never re-renders
# (and never clears) what was written.
clientside_callback(
    """
    function (content, id) {
        const el = document.querySelector('[data-markup="' + CSS.escape(id.index) + '"]');
        if (el) { el.innerHTML = content || ''; }
        return window.dash_clientside.no_update;
    }
    """,
    Output({"type": "markup", "index": MATCH}, "title"),
    Input({"type": "markup-html", "index": MATCH}, "data"),
    State({"type": "markup-html", "index": MATCH}, "id"),
)
