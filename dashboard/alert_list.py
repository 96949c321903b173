"""Markup of the alert list (pure functions from its read model, see ``dashboard.markup``):
filter form, sortable header, rows with label chips and twins, pager."""

from __future__ import annotations

from typing import Any

from dashboard import components as c
from dashboard import markup as m
from dashboard import timerange
from monitor import alert_pages
from monitor.alert_pages import AlertList, ListFilters, ListRow
from monitor.queries import ALL

PAGE = "alerts"
STATE_TEXT = {
    "open": "Firing + pending",
    "firing": "Firing",
    "pending": "Pending",
    "resolved": "Resolved",
    "all": "All",
}
SORT_TEXT = {
    "priority": "Priority",
    "since": "Since",
    "started": "Firing since",
    "updated": "Last change",
    "state": "State",
    "severity": "Severity",
    "rule": "Rule",
    "tenant": "Tenant",
    "model": "Model",
}
# first click on a column sorts newest first for times, A→Z / most severe first otherwise
FIRST_ORDER = {"since": "desc", "started": "desc", "updated": "desc"}
# labels the list shows in their own column or that the chips would only repeat (the alert
# page shows every label)
SHOWN = {"alertname", "rule", "severity", "tenant", "model", "source", "monitor"}


def _href(f: ListFilters, **changes: Any) -> str:
    return c.href("/alerts", f.params(**changes))


def _select(name: str, label: str, current: str, options: list[tuple[str, str]]) -> m.Markup:
    opts = [
        m.tag("option", text, value=value, selected=value == current) for value, text in options
    ]
    field = m.tag("select", *opts, name=name, id=f"alerts-filter-{name}")
    return m.tag("label", m.tag("span", label, class_="filter-label"), field, class_="field")


def _filters(v: AlertList) -> m.Markup:
    f = v.filters
    tenants = [("", "Any")] + [(t, "all tenants together" if t == ALL else t) for t in v.tenants]
    if f.tenant and f.tenant not in v.tenants:
        tenants.append((f.tenant, f.tenant))
    models = [("", "Any")] + [(x, x) for x in v.models]
    rules = [("", "Any")] + [(x, x) for x in v.rules]
    for opts, cur in ((models, f.model), (rules, f.rule)):
        if cur and cur not in {o for o, _ in opts}:
            opts.append((cur, cur))
    fields = [
        _select("state", "State", f.state, list(STATE_TEXT.items())),
        _select(
            "severity",
            "Severity",
            f.severity,
            [("", "Any"), *[(s, s.capitalize()) for s in alert_pages.SEVERITIES]],
        ),
        _select("tenant", "Tenant", f.tenant, tenants),
        _select("model", "Model", f.model, models),
        _select("rule", "Rule", f.rule, rules),
        _select(
            "per_page",
            "Per page",
            str(f.per_page),
            [(str(n), str(n)) for n in alert_pages.PER_PAGE],
        ),
    ]
    hidden = [
        m.void("input", type="hidden", name=k, value=val)
        for k, val in f.params().items()
        if k in ("sort", "order", "range", "from", "to")
    ]
    return m.tag(
        "form",
        *fields,
        *hidden,
        m.tag("button", "Apply", type="submit", class_="secondary"),
        m.link("Clear", "/alerts", class_="pill", id="alerts-clear"),
        action="/alerts",
        method="get",
        class_="filters filter-form",
        id="alerts-filters",
        data_dash_nav="1",
        data_autosubmit="1",
    )


def _header(f: ListFilters, key: str | None, text: str) -> m.Markup:
    if key is None:
        return m.tag("th", text)
    if f.sort == key:
        order = "asc" if f.order == "desc" else "desc"
        arrow = " ▼" if f.order == "desc" else " ▲"
        aria = "descending" if f.order == "desc" else "ascending"
    else:
        order, arrow, aria = FIRST_ORDER.get(key, "asc"), "", None
    return m.tag(
        "th",
        m.link(text + arrow, _href(f, sort=key, order=order, page=1), id=f"alerts-sort-{key}"),
        aria_sort=aria,
    )


def chips(labels: dict[str, str], skip: set[str] = SHOWN) -> m.Markup:
    """Labels as ``key value`` chips."""
    return m.join(
        m.tag("span", m.tag("span", k, class_="chip-key"), " ", v, class_="chip", title=f"{k}={v}")
        for k, v in sorted(labels.items())
        if k not in skip and v != ""
    )


def _tenant(a: Any) -> m.Markup:
    if a.tenant_id == ALL:
        return m.tag(
            "span", "all tenants", class_="muted", title="computed over all tenants together"
        )
    return m.esc(a.tenant_id)


def _twins(r: ListRow) -> m.Markup:
    if not r.twins:
        return m.Markup("")
    if r.alert.tenant_id == ALL:
        head = "same signal per tenant: "
        parts = [m.link(f"{t.tenant_id} #{t.id}", f"/alerts/{t.id}") for t in r.twins]
    else:
        head = "same signal over all tenants: "
        parts = [
            m.link(f"#{t.id} ({t.state_text(r.alert.id)})", f"/alerts/{t.id}") for t in r.twins
        ]
    return m.tag("div", head, m.join(parts, ", "), class_="muted twin")


def _inhibited(r: ListRow) -> m.Markup | str:
    """'inhibited by #12 (critical data quality...)': its notifications wait while those fire."""
    if not r.inhibited:
        return ""
    why = "its notifications are held while the alerts that inhibit it fire"
    if not r.inhibitors:
        return m.tag("span", "inhibited", class_="inhibited", title=why)
    links = [m.link(f"#{t.id}", f"/alerts/{t.id}") for t in r.inhibitors[:3]]
    more = f" and {len(r.inhibitors) - 3} more" if len(r.inhibitors) > 3 else ""
    return m.tag("span", "inhibited by ", m.join(links, ", "), more, class_="inhibited", title=why)


def _state(a: Any, r: ListRow) -> m.Markup:
    """The state badge; a firing alert the inhibit rules mute reads "inhibited", as the
    overview counts it apart from the firing ones."""
    if a.state == "firing" and r.inhibited:
        why = "firing, but its notifications are held while the alert that inhibits it fires"
        return m.tag("span", "inhibited", class_="badge badge-inhibited", title=why)
    return m.tag("span", a.state, class_=f"badge badge-{a.state}")


def _since(v: AlertList, a: Any) -> m.Markup:
    return m.join(
        [
            m.tag("span", c.fmt_ts(a.active_at), class_="nowrap"),
            m.tag("div", c.ago(a.active_at, v.now), class_="age"),
        ]
    )


def _row(v: AlertList, r: ListRow) -> m.Markup:
    a = r.alert
    handling: list[m.Markup | str] = [
        f"acknowledged by {a.acknowledged_by}" if a.acknowledged_at else "",
        "silenced" if r.silenced else "",
        _inhibited(r),
    ]
    summary = a.annotations.get("summary") or ""
    cells = [
        ("Severity", m.tag("span", a.severity, class_=f"badge badge-{a.severity}")),
        ("State", _state(a, r)),
        (
            "Alert",
            m.join(
                [
                    m.link(
                        a.rule, f"/alerts/{a.id}", id=f"alerts-link-{a.id}", class_="alert-link"
                    ),
                    m.tag("div", summary, class_="muted") if summary else "",
                    m.tag("div", chips(a.labels), class_="chips"),
                    _twins(r),
                ]
            ),
        ),
        ("Tenant", _tenant(a)),
        ("Model", a.model or "–"),
        ("Since", _since(v, a)),
        ("Handling", m.join([x for x in handling if x], " · ") if any(handling) else "–"),
    ]
    return m.tag(
        "tr",
        *[m.tag("td", val, data_label=label) for label, val in cells],
        data_alert=str(a.id),
    )


def _pager(v: AlertList) -> m.Markup:
    f = v.filters
    total = f"{v.total:,}"
    where = m.tag(
        "span",
        f"Showing {v.first:,}–{v.last:,} of {total} alerts" if v.rows else f"0 of {total} alerts",
        id="alerts-count",
    )
    links: list[Any] = []
    if f.page > 1:
        links += [
            m.link("« First", _href(f, page=1), class_="pill", id="alerts-first"),
            m.link("‹ Previous", _href(f, page=f.page - 1), class_="pill", id="alerts-prev"),
        ]
    links.append(m.tag("span", f"page {f.page} of {v.pages:,}", class_="page-of"))
    if f.page < v.pages:
        links += [
            m.link("Next ›", _href(f, page=f.page + 1), class_="pill", id="alerts-next"),
            m.link("Last »", _href(f, page=v.pages), class_="pill", id="alerts-last"),
        ]
    return m.tag("div", where, *links, class_="pager")


def render(v: AlertList) -> list[Any]:
    f = v.filters
    top = [
        c.freshness(PAGE, v.computed_at),
        timerange.bar(PAGE, "/alerts", v.span, f.params(page=1), any_time=True),
    ]
    body: list[Any] = [_filters(v)]
    if f.sort == "priority":
        how: Any = (
            "Firing first, then pending, then resolved; most severe first; open alerts oldest "
            "first. Click a column to sort."
        )
    else:
        how = m.join(
            [
                f"Sorted by {SORT_TEXT[f.sort].lower()} ({f.order}) · back to ",
                m.link("priority order", _href(f, sort="priority", order="asc", page=1)),
            ]
        )
    body.append(m.tag("p", how, class_="muted", id="alerts-order"))
    if not v.rows:
        if v.total and f.page > v.pages:
            body.append(
                m.tag(
                    "div",
                    f"page={f.page} is past the last page ({v.pages}). ",
                    m.link("Go to the last page", _href(f, page=v.pages)),
                    class_="error",
                    role="alert",
                    id="alerts-bad-page",
                )
            )
        else:
            body.append(
                m.tag(
                    "div",
                    m.tag("h3", "No alerts match"),
                    m.tag(
                        "p",
                        "Alerts appear when an alert rule's condition holds on monitor or KPI "
                        "results (`driftwatch rules list` lists the rules). Widen the filters, "
                        "e.g. State: All.",
                    ),
                    class_="empty",
                    id="alerts-empty",
                )
            )
        return [*top, m.block(m.join(body), "alerts-list")]
    head = m.tag(
        "tr",
        _header(f, "severity", "Severity"),
        _header(f, "state", "State"),
        _header(f, "rule", "Alert"),
        _header(f, "tenant", "Tenant"),
        _header(f, "model", "Model"),
        _header(f, "since", "Since (first breaching window)"),
        _header(f, None, "Handling"),
    )
    table = m.tag(
        "table",
        m.tag("thead", head),
        m.tag("tbody", *[_row(v, r) for r in v.rows]),
        class_="table alert-table",
        id="alerts-table",
    )
    body += [_pager(v), table, _pager(v)]
    return [*top, m.block(m.join(body), "alerts-list")]
