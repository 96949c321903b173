"""An alert's words: the annotations filled from its rule's templates (or the defaults of the
rule's kind) and the context a notification carries about the result behind it. Pure; used by
:mod:`alerts.evaluate` when a breach opens or updates an alert.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from alerts.readable import fmt_time, fmt_value
from alerts.rules import Rule, is_url_annotation
from storage.types import ALL, MetricResult

__all__ = [
    "CONTEXT_KEYS",
    "DEFAULT_ANNOTATIONS",
    "TIME_KEYS",
    "annotate",
    "kpi_unit",
    "render",
    "render_annotations",
    "result_context",
    "rule_annotations",
    "shown_threshold",
]

# Keys of MetricResult.details copied into an alert's context for notifications.
CONTEXT_KEYS = (
    "p_value",
    "method",
    "reference",
    "reference_size",
    "current_size",
    "sample_size",
    "n_reference",
    "n_current",
    "drivers",
    "drifted_columns",
    "related_kpis",
    "tenants",
    "estimated",
    "lower",
    "upper",
)


class _SafeDict(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` / ``{name:.3f}`` placeholders; unknown names stay as they are and a
    bad format spec leaves the template unfilled rather than losing the notification."""
    try:
        return template.format_map(_SafeDict(values))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return template


DEFAULT_ANNOTATIONS = {
    "threshold": {
        "summary": "{alertname}: {metric}{column_suffix} of {model} for {tenant_text} is "
        "{value_text} (threshold {threshold_text})",
        "description": "{monitor} ({kind}) reported {status} for the window "
        "{window_start} – {window_end}.",
    },
    "missing_data": {
        "summary": "{alertname}: {monitor} on {model} for {tenant_text} has no data",
        "description": "No usable results since {last_window_end}.",
    },
}


def tenant_text(tenant: str | None) -> str:
    """The tenant as a summary says it: "tenant acme", or "all tenants together" for the
    all-tenants series (its label ``*`` read as a tenant named "*")."""
    return "all tenants together" if tenant in (None, "", ALL) else f"tenant {tenant}"


def drifting_text(columns: Any) -> str:
    """ " in discount_rate, tenure_months" for a drift summary's drifting columns (at most
    five named), "" when the result names none."""
    if not isinstance(columns, list) or not columns:
        return ""
    names = [str(c) for c in columns]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return " in " + ", ".join(names[:5]) + more


def format_value(value: float | None, unit: str | None = None) -> str:
    """A value as annotations show it: a KPI's with its unit as the KPI pages show it
    (``unit`` not None: ``17.6 %``), any other with 4 significant digits (``n/a`` for none or
    non-finite)."""
    if unit is not None:
        return fmt_value(value, unit)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def kpi_unit(res: MetricResult, units: Mapping[str, str] | None) -> str | None:
    """The unit of a KPI's result (its definition's, from ``units``: KPI name → unit), None
    for a monitor's result or a KPI whose definition is not known."""
    if res.source != "kpi":
        return None
    unit = (units or {}).get(res.source_name)
    if unit is None and isinstance((res.details or {}).get("unit"), str):
        unit = str(res.details["unit"])
    return unit


# Times a template may name: people read them (``2026-11-25 00:00 UTC``); a link annotation
# gets them in ISO 8601 (a dashboard's ``from=`` parameter), as ``<name>_iso`` gives them.
TIME_KEYS = ("window_start", "window_end", "last_window_end")


def window_text(res: MetricResult) -> str:
    """ "for the day 2 Dec": which window a KPI alert's value is (the KPI pages show an average
    of 7 windows: the alert said "is 22.7 %" where the page said 21.4 %)."""
    ts, width = res.window_start, res.window_end - res.window_start
    day = f"{ts.day} {ts:%b}"
    if width <= timedelta(hours=1):
        return f"for the hour {day} {ts:%H}:00"
    if width <= timedelta(days=1):
        return f"for the day {day}"
    if width <= timedelta(days=7):
        return f"for the week of {day}"
    return f"for the window from {day}"


def result_context(result: MetricResult, unit: str | None = None) -> dict[str, Any]:
    """What a notification says about the result behind an alert (JSON-able); ``unit``: a
    KPI's unit, kept so its value is shown with it (``context.unit``)."""
    ctx: dict[str, Any] = {
        "source": result.source,
        "monitor": result.source_name,
        "kind": result.kind,
        "model": result.model,
        "tenant": result.tenant_id,
        "model_version": result.model_version,
        "column": result.column,
        "metric": result.metric,
        "value": result.value,
        "threshold": result.threshold,
        "status": result.status,
        "window": {"start": result.window_start.isoformat(), "end": result.window_end.isoformat()},
        "definition_version": result.definition_version,
    }
    if unit is not None:
        ctx["unit"] = unit
    details = result.details or {}
    for key in CONTEXT_KEYS:
        if key in details:
            ctx[key] = details[key]
    return ctx


def template_values(
    rule: Rule, labels: Mapping[str, str], res: MetricResult, unit: str | None = None
) -> dict[str, Any]:
    """What a template may name: the result's scalar details, the labels, the value, the
    threshold (``*_text``: as people read them, a KPI's with its ``unit``), the window."""
    values: dict[str, Any] = {k: v for k, v in (res.details or {}).items() if is_scalar(v)}
    values.update(labels)
    values.update(
        value=res.value,
        threshold=shown_threshold(rule, res),
        # a KPI's value is one window's: say which (its pages average several)
        value_text=format_value(res.value, unit)
        + (f" {window_text(res)}" if res.source == "kpi" else ""),
        threshold_text=format_value(shown_threshold(rule, res), unit),
        status=res.status,
        window_start=fmt_time(res.window_start),
        window_end=fmt_time(res.window_end),
        last_window_end=fmt_time(res.window_end),
        window_start_iso=res.window_start.isoformat(),
        window_end_iso=res.window_end.isoformat(),
        last_window_end_iso=res.window_end.isoformat(),
        column_suffix=f"[{res.column}]" if res.column else "",
        model=res.model or "",
        tenant_text=tenant_text(labels.get("tenant")),
        drifting=drifting_text((res.details or {}).get("drifted_columns")),
    )
    return values


def shown_threshold(rule: Rule, res: MetricResult) -> float | None:
    """The rule's own threshold when it compares values, else the result's."""
    if rule.condition.op is not None:
        return rule.condition.threshold
    return res.threshold


def is_scalar(v: Any) -> bool:
    """Whether a detail can fill a template (not a list or a mapping)."""
    return isinstance(v, str | int | float | bool) or v is None


def render_annotations(templates: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """Fill every annotation template; a link annotation (``runbook_url``, any ``*_url``)
    gets its text values URL-quoted, so a tenant named "acme corp" makes a working link."""
    quoted: dict[str, Any] | None = None
    out = {}
    for key, template in templates.items():
        if is_url_annotation(key):
            if quoted is None:
                iso = {k: values[f"{k}_iso"] for k in TIME_KEYS if f"{k}_iso" in values}
                quoted = {
                    k: urllib.parse.quote(v, safe="") if isinstance(v, str) else v
                    for k, v in {**values, **iso}.items()
                }
            out[key] = render(template, quoted)
        else:
            out[key] = render(template, values)
    return out


def rule_annotations(rule: Rule, values: Mapping[str, Any]) -> dict[str, str]:
    """The rule's annotations (its own templates over the defaults of its kind), filled."""
    templates = dict(DEFAULT_ANNOTATIONS[rule.kind])
    templates.update(rule.annotations)
    return render_annotations(templates, values)


def annotate(
    rule: Rule, labels: Mapping[str, str], res: MetricResult, unit: str | None = None
) -> dict[str, str]:
    """The annotations of the alert ``labels`` names, from the result it shows (``unit``: a
    KPI's, see :func:`kpi_unit`)."""
    return rule_annotations(rule, template_values(rule, labels, res, unit))
