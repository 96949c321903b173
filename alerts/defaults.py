"""Default alert rules that ``driftwatch init MODEL`` proposes with the default monitors.

They page (``critical``) on what users feel: realized or estimated performance falling below
its threshold, tenant KPI breaches, and monitors that stopped producing data; feature and
prediction drift and data quality stay ``warning`` context. Drift is told once per model:
``MODEL-drift-summary`` watches each segment's ``drift_share`` (and the multivariate check),
fires after two drifted windows and stays firing through two clear ones; the per-column
``MODEL-drift`` alerts carry the detail on the dashboard without notifying. So a model with one
drifting feature is told once and a model without drift rarely (see ``docs/monitors.md``,
"What to expect in week one").
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.rules import Rule

TASK_VALUES = ("binary", "multiclass", "regression")


def default_rules(
    model_name: str,
    task: str,
    channels: Sequence[str] = (),
    max_silence: str = "26h",
    label_delay: str = "7d",
) -> list[Rule]:
    """The default rules for one model.

    Parameters
    ----------
    model_name : str
    task : {"binary", "multiclass", "regression"}
    channels : sequence of str
        Channel names notified by every rule (none: the rules alert without notifying
        until channels are added).
    max_silence : str
        How long a monitor may stay silent before the missing-data rule fires (default:
        a daily window plus two hours of grace).
    label_delay : str
        How late the model's labels arrive (default a week). Realized performance needs
        them: its windows count as missing only once their labels should be in, and its
        series may be silent for ``max_silence`` plus this. Too short a delay pages for
        labels that are merely late; too long finds labels that stopped coming later.

    Returns
    -------
    list of Rule

    Examples
    --------
    >>> [r.name for r in default_rules("churn", "binary")]  # doctest: +NORMALIZE_WHITESPACE
    ['churn-performance', 'churn-missing-data', 'churn-drift', 'churn-drift-summary',
     'churn-data-quality', 'kpi-breach']
    """
    if task not in TASK_VALUES:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASK_VALUES)}")
    ch = list(channels)
    specs = [
        {
            "name": f"{model_name}-performance",
            "description": "Realized (labels) or estimated (no labels yet) performance "
            "is below its threshold.",
            "match": {"model": model_name, "kind": ["performance", "estimated_performance"]},
            "condition": {"status": "alert"},
            "for": 1,
            "severity": "critical",
            "channels": ch,
        },
        {
            "name": f"{model_name}-missing-data",
            "kind": "missing_data",
            "description": "A monitor of the model produced no data (no logs, missed runs, "
            "no labels once they should have arrived).",
            "match": {"model": model_name, "source": "monitor"},
            "for": 2,
            "max_silence": max_silence,
            "label_delay": label_delay,
            "severity": "critical",
            "channels": ch,
        },
        {
            "name": f"{model_name}-drift",
            "description": "A feature or the predictions drift, column by column, for two "
            "windows: context on the dashboard and the API, not notified (the model-level "
            "drift-summary rule notifies). A column that drifts on and off stays one alert.",
            "match": {
                "model": model_name,
                "kind": ["feature_drift", "prediction_drift"],
            },
            "condition": {"status": "alert"},
            # with the default monitors' fdr, a column without drift is flagged in about
            # alpha / columns of windows: twice in a row is rare, lasting drift is not
            "for": 2,
            # drift near the threshold is flagged in most windows, not all: stay firing
            # through two clear windows rather than resolving and firing again
            "keep_firing_for": 2,
            "group_by": ["model", "rule"],
            "severity": "warning",
            "channels": [],
        },
        {
            "name": f"{model_name}-drift-summary",
            "description": "The model drifts: some feature or prediction column (drift_share "
            "above 0) or the multivariate check, for two windows. One alert per model and "
            "segment that stays firing while drift goes on; the columns are in its context.",
            "match": {
                "model": model_name,
                "kind": ["feature_drift", "prediction_drift", "multivariate_drift"],
                "metric": ["drift_share", "domain_classifier_auc"],
            },
            "condition": {"status": ["warn", "alert"]},
            "for": 2,
            "keep_firing_for": 2,
            "group_by": ["model", "rule"],
            # context, not a page: a reminder a month rather than every four hours
            "repeat_interval": "30d",
            "annotations": {
                "summary": "{alertname}: {model} drifts for {tenant_text}{drifting} "
                "({monitor}: {metric} {value_text})",
                "description": "{monitor} ({kind}) found drift in the window {window_start} – "
                "{window_end}; the drifting columns are in the alert's context and on its "
                "dashboard page.",
            },
            "severity": "warning",
            "channels": ch,
        },
        {
            "name": f"{model_name}-data-quality",
            "match": {"model": model_name, "kind": "data_quality"},
            "condition": {"status": "alert"},
            "for": 1,
            "severity": "warning",
            "channels": ch,
        },
        {
            # One rule for all KPIs: KPIs are per tenant, not per model, so every model's
            # defaults propose the same rule (storing it twice is a no-op).
            "name": "kpi-breach",
            "description": "A tenant KPI breached its target or moved abnormally.",
            # the KPI's own row only (its status is the worst of its checks): one alert per
            # KPI and tenant, not one more per check row (kind kpi_check)
            "match": {"source": "kpi", "kind": "kpi"},
            "condition": {"status": "alert"},
            "for": 1,
            # A business alert resolves once the KPI has been clear for three windows in a
            # row, as the KPI's shift check needs three windows back near its old level: a
            # day between an anomaly and the shift check's alarm does not end the incident.
            "keep_firing_for": 2,
            "severity": "critical",
            "channels": ch,
        },
    ]
    return [Rule.from_dict(s) for s in specs]
