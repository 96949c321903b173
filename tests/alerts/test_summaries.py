"""What the first line of a notification tells on-call (the ``summary`` annotation: the
alert list's line, the page's title, Slack's text, PagerDuty's summary):

* the all-tenants series is "all tenants together", not "tenant *" (a tenant named "*"?);
* the drift summary, the default rule that pages for a model's drift, names the columns
  that drift, where it said only "drift_share 0.25" and left them to the alert's context.
"""

from __future__ import annotations

from alerts.annotations import annotate
from alerts.defaults import default_rules
from alerts.rules import Rule
from alerts.series import series_labels
from tests.alerts.helpers import result


def _rule(name: str) -> Rule:
    (rule,) = [r for r in default_rules("churn", "binary") if r.name == f"churn-{name}"]
    return rule


def _summary(rule: Rule, **kw: object) -> str:
    res = result(0, **kw)  # type: ignore[arg-type]
    return annotate(rule, series_labels(rule, res), res)["summary"]


def test_the_all_tenants_series_is_not_called_tenant_star() -> None:
    per_column = _rule("drift")
    assert _summary(per_column, tenant="*", metric="wasserstein", column="discount_rate") == (
        "churn-drift: wasserstein[discount_rate] of churn for all tenants together is 0.5 "
        "(threshold 0.2)"
    )  # control: "… of churn for tenant * is 0.5 …"
    # a tenant keeps its name
    assert "of churn for tenant globex is" in _summary(per_column, tenant="globex")


def test_the_drift_summary_names_the_drifting_columns() -> None:
    summary = _rule("drift-summary")
    drifted = {"drifted_columns": ["discount_rate", "tenure_months"]}
    text = _summary(
        summary,
        tenant="globex",
        metric="drift_share",
        column="",
        value=0.25,
        threshold=None,
        status="warn",
        monitor="churn-feature-drift",
        details=drifted,
    )
    # control: "churn-drift-summary: churn drifts for tenant globex (churn-feature-drift:
    # drift_share 0.25)"
    assert text == (
        "churn-drift-summary: churn drifts for tenant globex in discount_rate, tenure_months "
        "(churn-feature-drift: drift_share 0.25)"
    )
    many = {"drifted_columns": [f"x{i}" for i in range(8)]}
    text = _summary(summary, metric="drift_share", column="", status="warn", details=many)
    assert " in x0, x1, x2, x3, x4 and 3 more (" in text
    # a multivariate check names no column: no dangling " in "
    text = _summary(
        summary,
        metric="domain_classifier_auc",
        column="",
        status="alert",
        kind="multivariate_drift",
    )
    assert "drifts for tenant acme (" in text


def test_slack_names_a_money_kpi_by_its_levels_not_a_huge_percentage() -> None:
    from alerts.formats import _kpi_text

    # control: "retention_value (+2093.0%)"
    assert _kpi_text(
        {"kpi": "retention_value", "change": 20.93, "before": 5.0, "during": 109.7}
    ) == ("retention_value (5 → 110)")
    # the minus sign, as the KPI pages write it (control: "conversion_rate (-28.0%)")
    assert _kpi_text(
        {"kpi": "conversion_rate", "change": -0.28, "before": 0.33, "during": 0.24}
    ) == ("conversion_rate (−28 %)")
    assert _kpi_text({"kpi": "conversion_rate", "change": -0.28}) == "conversion_rate (−28 %)"
    # a rate whose unit is known moves by points (control: "conversion_rate (-28.0%)")
    rate = {"kpi": "conversion_rate", "change": -0.28, "before": 0.33, "during": 0.24}
    assert _kpi_text({**rate, "unit": "%"}) == "conversion_rate (−9 pp)"
