"""Alert rules: which metric results a rule watches, when they breach, and what an alert says.

A rule is a frozen value parsed from its JSON/YAML form (the API body, ``driftwatch apply``
files and the ``alert_rules.spec`` column all use it)::

    name: churn-auc-low
    kind: threshold            # or missing_data
    match:                     # each field: a value, a glob ("feature_*"), or a list of them
      model: churn
      kind: [performance, estimated_performance]
      metric: roc_auc
      tenant: "*"
    condition: {status: alert}        # or {op: "<", threshold: 0.7} on the result's value
    for: 2                            # consecutive breaching windows before firing
    keep_firing_for: 1                # clear windows it keeps firing after the breach
    severity: critical
    labels: {team: ml}
    annotations:
      summary: "{metric} of {model} for {tenant} is {value:.3f} (threshold {threshold})"
      runbook_url: "https://wiki.example/runbooks/{alertname}?tenant={tenant}"
    channels: [oncall]
    group_by: [tenant, model, rule]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
    send_resolved: true

``missing_data`` rules fire for a series (monitor × model × tenant) whose results are
``no_data``, or that produced nothing for ``max_silence``. Realized performance (kind
``performance``) needs labels, which arrive late: with ``label_delay: 3d`` its windows are
judged only once their labels should be in (a ``no_data`` window younger than that is not yet
missing), and its silence is counted from its newest labelled window and may last
``max_silence + label_delay``.

Errors are :class:`RuleError` (a ``ValueError``) naming the field, the value and the choices.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from alerts.errors import AlertInputError
from storage.types import SEVERITIES, MetricResult

RULE_KINDS = ("threshold", "missing_data")
# Result kinds computed from labels, which arrive after the predictions (``label_delay``).
LABELLED_KINDS = frozenset({"performance"})
MATCH_FIELDS = ("model", "source", "monitor", "kind", "metric", "column", "tenant")
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
DEFAULT_GROUP_BY = ("tenant", "model", "rule")
# Labels every alert gets from its rule and result (see alerts.evaluate.series_labels).
RESERVED_LABELS = frozenset(
    {
        "alertname",
        "rule",
        "severity",
        "model",
        "tenant",
        "monitor",
        "source",
        "kind",
        "metric",
        "column",
        "model_version",
    }
)
RULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class RuleError(AlertInputError):
    """A rule specification is invalid; the message names the field and the allowed values."""


def is_url_annotation(name: str) -> bool:
    """Annotations that are links (``runbook_url``, Alertmanager's convention, or any
    ``*_url``): an http(s) URL template whose label values are URL-quoted when filled."""
    return name == "runbook_url" or name.endswith("_url")


def parse_duration(value: Any, field_name: str) -> timedelta:
    """``"30s"``, ``"5m"``, ``"4h"``, ``"3d"``, ``"250ms"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise RuleError(f"{field_name}={value!r} is not a duration such as 30s, 5m, 4h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value).strip())
        if not m:
            raise RuleError(
                f"{field_name}={value!r} is not a duration such as 30s, 5m, 4h, 2d or 250ms"
            )
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds < 0 or not math.isfinite(seconds):
        raise RuleError(f"{field_name}={value!r} must be a non-negative duration")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


@dataclass(frozen=True)
class FieldMatcher:
    """One field of a rule's ``match``: exact values, globs, or anything (``*``)."""

    exact: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()
    any: bool = True
    source: tuple[str, ...] = ("*",)

    @classmethod
    def parse(cls, value: Any, field_name: str) -> FieldMatcher:
        if value is None:
            return cls()
        values = [value] if isinstance(value, str) else list(value)
        if not values or not all(isinstance(v, str) for v in values):
            raise RuleError(f"match.{field_name}={value!r} must be a string or a list of strings")
        if "*" in values:
            return cls()
        exact = frozenset(v for v in values if not any(c in v for c in "*?["))
        patterns = tuple(
            re.compile(fnmatch.translate(v)) for v in values if any(c in v for c in "*?[")
        )
        return cls(exact=exact, patterns=patterns, any=False, source=tuple(values))

    def __call__(self, value: str) -> bool:
        if self.any:
            return True
        if value in self.exact:
            return True
        return any(p.match(value) for p in self.patterns)

    def to_json(self) -> str | list[str]:
        return self.source[0] if len(self.source) == 1 else list(self.source)


@dataclass(frozen=True)
class Condition:
    """``status`` in a set of statuses, or ``value op threshold``."""

    statuses: frozenset[str] = frozenset({"alert"})
    op: str | None = None
    threshold: float | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None, kind: str) -> Condition:
        if kind == "missing_data":
            return cls(statuses=frozenset({"no_data"}))
        data = dict(data or {"status": "alert"})
        if "op" in data or "threshold" in data:
            op = data.get("op")
            if op not in OPS:
                raise RuleError(f"condition.op={op!r} is not one of {', '.join(OPS)}")
            try:
                threshold = float(data["threshold"])
            except (KeyError, TypeError, ValueError) as exc:
                raise RuleError(
                    f"condition.threshold={data.get('threshold')!r} must be a number"
                ) from exc
            return cls(statuses=frozenset(), op=op, threshold=threshold)
        status = data.get("status", "alert")
        statuses = [status] if isinstance(status, str) else list(status)
        allowed = ("warn", "alert")
        bad = [s for s in statuses if s not in allowed]
        if bad or not statuses:
            raise RuleError(
                f"condition.status={status!r}: use one or more of {', '.join(allowed)} "
                "(no_data neither fires nor resolves; use a missing_data rule)"
            )
        return cls(statuses=frozenset(statuses))

    def breached(self, result: MetricResult) -> bool:
        if self.op is not None:
            if result.value is None or self.threshold is None:
                return False
            return OPS[self.op](result.value, self.threshold)
        return result.status in self.statuses

    def to_dict(self) -> dict[str, Any]:
        if self.op is not None:
            return {"op": self.op, "threshold": self.threshold}
        statuses = sorted(self.statuses)
        return {"status": statuses[0] if len(statuses) == 1 else statuses}


@dataclass(frozen=True)
class Rule:
    """A parsed, validated alert rule (see the module docstring for the YAML form)."""

    name: str
    kind: str = "threshold"
    match: Mapping[str, FieldMatcher] = field(default_factory=dict)
    condition: Condition = Condition()
    for_windows: int = 1
    keep_firing_for: int = 0
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    send_resolved: bool = True
    max_silence: timedelta | None = None  # missing_data: no result for this long fires
    label_delay: timedelta | None = None  # missing_data: how late labels arrive
    description: str = ""

    def label_wait(self, kind: str) -> timedelta:
        """How long after a window of ``kind`` ends its data may still be on its way:
        ``label_delay`` for kinds computed from labels, nothing for the others."""
        if self.label_delay is not None and kind in LABELLED_KINDS:
            return self.label_delay
        return timedelta(0)

    def matches(self, result: MetricResult) -> bool:
        """True when ``result`` is one this rule watches (wildcards allowed per field)."""
        m = self.match
        return (
            m["model"](result.model or "")
            and m["kind"](result.kind)
            and m["metric"](result.metric)
            and m["monitor"](result.source_name)
            and m["tenant"](result.tenant_id)
            and m["column"](result.column)
            and m["source"](result.source)
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Parse and validate a rule's JSON/YAML form.

        Raises
        ------
        RuleError
            Naming the field, the value and the allowed choices.
        """
        if not isinstance(data, Mapping):
            raise RuleError(f"a rule must be a mapping, got {type(data).__name__}")
        known = {
            "name",
            "kind",
            "match",
            "condition",
            "for",
            "keep_firing_for",
            "severity",
            "labels",
            "annotations",
            "channels",
            "group_by",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "send_resolved",
            "max_silence",
            "label_delay",
            "description",
            "enabled",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise RuleError(f"unknown rule fields {unknown}; allowed: {', '.join(sorted(known))}")
        name = data.get("name")
        if not isinstance(name, str) or not RULE_NAME_RE.match(name):
            raise RuleError(f"name={name!r} must match {RULE_NAME_RE.pattern}")
        kind = data.get("kind", "threshold")
        if kind not in RULE_KINDS:
            raise RuleError(f"kind={kind!r} is not one of {', '.join(RULE_KINDS)}")
        match_data = data.get("match") or {}
        if not isinstance(match_data, Mapping):
            raise RuleError(f"match={match_data!r} must be a mapping of field → pattern")
        bad = sorted(set(match_data) - set(MATCH_FIELDS))
        if bad:
            raise RuleError(f"match fields {bad} unknown; allowed: {', '.join(MATCH_FIELDS)}")
        match = {f: FieldMatcher.parse(match_data.get(f), f) for f in MATCH_FIELDS}
        severity = data.get("severity", "warning")
        if severity not in SEVERITIES:
            raise RuleError(f"severity={severity!r} is not one of {', '.join(SEVERITIES)}")
        for_windows = _int(data.get("for", 1), "for", minimum=1)
        keep = _int(data.get("keep_firing_for", 0), "keep_firing_for", minimum=0)
        labels = _str_map(data.get("labels"), "labels")
        clash = sorted(set(labels) & RESERVED_LABELS)
        if clash:
            raise RuleError(
                f"labels {clash} are set from the results; rule labels may not override "
                f"{', '.join(sorted(RESERVED_LABELS))}"
            )
        annotations = _str_map(data.get("annotations"), "annotations")
        for key, template in annotations.items():
            if is_url_annotation(key) and not re.match(r"^https?://[^\s{}/]", template.strip()):
                raise RuleError(
                    f"annotations.{key}={template!r} must be an http:// or https:// URL "
                    "(its path and query may use {label} placeholders)"
                )
        channels = data.get("channels") or []
        if isinstance(channels, str) or not all(isinstance(c, str) for c in channels):
            raise RuleError(f"channels={channels!r} must be a list of channel names")
        group_by = data.get("group_by") or list(DEFAULT_GROUP_BY)
        if isinstance(group_by, str) or not all(isinstance(g, str) for g in group_by):
            raise RuleError(f"group_by={group_by!r} must be a list of label names")
        max_silence = data.get("max_silence")
        label_delay = data.get("label_delay")
        if label_delay is not None and kind != "missing_data":
            raise RuleError(
                f"label_delay={label_delay!r} applies to kind missing_data only, not {kind!r}"
            )
        send_resolved = data.get("send_resolved", True)
        if not isinstance(send_resolved, bool):
            raise RuleError(f"send_resolved={send_resolved!r} must be true or false")
        return cls(
            name=name,
            kind=kind,
            match=match,
            condition=Condition.parse(data.get("condition"), kind),
            for_windows=for_windows,
            keep_firing_for=keep,
            severity=severity,
            labels=labels,
            annotations=annotations,
            channels=tuple(channels),
            group_by=tuple(group_by),
            group_wait=parse_duration(data.get("group_wait", "30s"), "group_wait"),
            group_interval=parse_duration(data.get("group_interval", "5m"), "group_interval"),
            repeat_interval=parse_duration(data.get("repeat_interval", "4h"), "repeat_interval"),
            send_resolved=send_resolved,
            max_silence=None if max_silence is None else parse_duration(max_silence, "max_silence"),
            label_delay=None if label_delay is None else parse_duration(label_delay, "label_delay"),
            description=str(data.get("description", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON/YAML form; ``Rule.from_dict(rule.to_dict()) == rule``."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "match": {f: m.to_json() for f, m in self.match.items() if not m.any},
            "for": self.for_windows,
            "keep_firing_for": self.keep_firing_for,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "channels": list(self.channels),
            "group_by": list(self.group_by),
            "group_wait": format_duration(self.group_wait),
            "group_interval": format_duration(self.group_interval),
            "repeat_interval": format_duration(self.repeat_interval),
            "send_resolved": self.send_resolved,
        }
        if self.kind == "threshold":
            out["condition"] = self.condition.to_dict()
        if self.max_silence is not None:
            out["max_silence"] = format_duration(self.max_silence)
        if self.label_delay is not None:
            out["label_delay"] = format_duration(self.label_delay)
        if self.description:
            out["description"] = self.description
        return out


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RuleError(f"{name}={value!r} must be an integer ≥ {minimum}")
    return value


def _str_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise RuleError(f"{name}={value!r} must be a mapping of strings")
    return {k: str(v) for k, v in value.items()}


def parse_rules(items: Iterable[Mapping[str, Any]]) -> list[Rule]:
    """Parse many rules, refusing duplicate names."""
    rules = [Rule.from_dict(item) for item in items]
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise RuleError(f"rule name {rule.name!r} appears twice")
        seen.add(rule.name)
    return rules
