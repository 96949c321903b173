"""What an alert belongs to: a series (rule × model × tenant × monitor × metric × column) is
named by its labels, and an alert by their fingerprint; whether a window of a series had data.
Pure; used by :mod:`alerts.evaluate` and the pages that list alerts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from alerts.rules import Rule
from storage.types import ALL, MetricResult

__all__ = ["ROW_COUNT_KEYS", "fingerprint", "has_data", "series_labels"]


# Keys under which a ``no_data`` result counts the rows it had (too few to judge): ``n_current``
# for drift, ``n`` for realized (labelled rows) and estimated performance.
ROW_COUNT_KEYS = ("n_current", "n")


def has_data(result: MetricResult) -> bool:
    """Whether a window of a series had data: a verdict, or rows too few to judge.

    What ``missing_data`` rules watch: a ``no_data`` result without rows (no logs, no labels
    yet) is missing data; one with rows below the monitor's ``min_rows`` is low traffic.
    """
    if result.status != "no_data":
        return True
    details = result.details or {}
    return any(isinstance(details.get(k), int | float) and details[k] > 0 for k in ROW_COUNT_KEYS)


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable id of a label set (16 hex digits of SHA-256 over the sorted labels)."""
    raw = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def series_labels(rule: Rule, result: MetricResult) -> dict[str, str]:
    """The labels of the alert a result belongs to under ``rule``."""
    labels = {
        "alertname": rule.name,
        "rule": rule.name,
        "severity": rule.severity,
        "model": result.model or "",
        "tenant": result.tenant_id,
        "monitor": result.source_name,
        "source": result.source,
        "kind": result.kind,
    }
    if rule.kind == "threshold":
        labels["metric"] = result.metric
        if result.column:
            labels["column"] = result.column
        if result.model_version != ALL:
            labels["model_version"] = result.model_version
    labels.update(rule.labels)  # cannot clash: Rule.from_dict refuses reserved names
    return labels
