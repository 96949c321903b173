"""Escaped HTML for the parts of a page with many elements, rendered by one Dash component.

Dash 4's renderer renders every component on its own, and its cost grows faster than the
number of components in a callback's output: a 200-row table of ``html.Td`` cells took 42 s
to appear in Chromium (profile: almost all of it in ``dash_renderer``), the same table as one
``dcc.Markdown`` holding HTML 1.3 s. So long tables, chips and filter bars are built here as
one escaped string and shown with :func:`block`; ``dcc.Markdown`` parses raw HTML with
``react-jsx-parser`` and turns ``<dccLink>`` into a real ``dcc.Link`` (client-side navigation,
no page reload), see :func:`link`.

Every text and attribute value goes through :func:`esc`: HTML-escaped, and ``{``/``}``
written as character references because the JSX parser would read them as expressions. The
parser also drops ``<script>`` and ``on*`` attributes, and ``dcc.Link`` refuses
``javascript:`` URLs; :func:`safe_url` keeps only http(s) and site-relative links anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from dash import dcc
from markupsafe import Markup, escape

__all__ = ["Markup", "block", "esc", "join", "link", "safe_url", "tag"]

# React's names for HTML attributes the JSX parser passes through unchanged
_ATTR_NAMES = {"class_": "className", "for_": "htmlFor", "class": "className"}


def esc(value: Any) -> Markup:
    """``value`` as text safe in element content and in a double-quoted attribute."""
    if isinstance(value, Markup):
        return value
    text = str(escape("" if value is None else str(value)))
    # no raw newline: a blank line would end Markdown's HTML block
    text = text.replace("{", "&#123;").replace("}", "&#125;").replace("\r", " ").replace("\n", " ")
    return Markup(text)


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """Concatenate escaped ``parts`` (Markup kept as is)."""
    return Markup(esc(sep).join(esc(p) for p in parts))


def _attrs(attrs: Mapping[str, Any]) -> str:
    out = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        key = _ATTR_NAMES.get(name, name.replace("_", "-"))
        out.append(f' {key}="{esc(value)}"')
    return "".join(out)


def tag(element: str, *children: Any, **attrs: Any) -> Markup:
    """``<element attrs>children</element>``; ``class_="x"`` gives ``className``, ``data_label``
    gives ``data-label``; None and False attributes are left out."""
    return Markup(f"<{element}{_attrs(attrs)}>{join(children)}</{element}>")


def void(element: str, **attrs: Any) -> Markup:
    """A self-closing element (``input``, ``br``)."""
    return Markup(f"<{element}{_attrs(attrs)} />")


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
    """A link inside the app (``dcc.Link``: history push, no reload)."""
    return tag("dccLink", text, href=href, **attrs)


def external(text: Any, href: str, **attrs: Any) -> Markup:
    """A link out of the app, opened in a new tab; plain text if ``href`` is not http(s)."""
    url = safe_url(href)
    if url is None:
        return esc(text)
    return tag("a", text, href=url, target="_blank", rel="noopener noreferrer", **attrs)


def block(content: Markup, id: str, class_: str = "") -> dcc.Markdown:
    """One Dash component showing ``content`` (wrapped in a ``div``, so Markdown sees a
    single HTML block)."""
    return dcc.Markdown(
        str(tag("div", content, class_=f"markup {class_}".strip())),
        id=id,
        dangerously_allow_html=True,
        dedent=False,
    )
