"""KPI formulas and definitions: what parses, what is refused, and that errors name the field."""

from __future__ import annotations

import pytest

from monitor.errors import ValidationFailed
from monitor.kpis.definition import KpiDefinition, check_against_schema
from monitor.kpis.formula import (
    BusinessValueFormula,
    EventFormula,
    FormulaError,
    LogFormula,
    parse_formula,
)
from monitor.kpis.service import parse_kpi
from storage.types import FeatureSpec, ModelSchema


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count(session)", EventFormula("count", "session")),
        ("count('page-view')", EventFormula("count", "page-view")),
        ("  sum( revenue.value )", EventFormula("sum", "revenue")),
        ("mean(revenue.value)", EventFormula("mean", "revenue")),
        ("percentile(latency.value, 0.95)", EventFormula("percentile", "latency", q=0.95)),
        ("rate(conversion, session)", EventFormula("rate", "conversion", denominator="session")),
        ("mean(score)", LogFormula("mean", "score")),
        ("positive_rate(prediction)", LogFormula("positive_rate", "prediction")),
        ("positive_rate(prediction, 'gold')", LogFormula("positive_rate", "prediction", "gold")),
        ("label_rate(label, 1)", LogFormula("label_rate", "label", "1")),
        (
            "business_value(tp=40, fp=-5, fn=-20, per_row=1)",
            BusinessValueFormula(40.0, -5.0, 0.0, -20.0, per_row=True),
        ),
    ],
)
def test_formulas_parse_to_typed_trees(text: str, expected: object) -> None:
    assert parse_formula(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty formula"),
        ("count(", "expected a name at column 7"),
        ("count(session", "expected ')' at column 14"),
        ("drop(session)", "unknown function 'drop' at column 1"),
        ("count(session); DROP TABLE events", "unexpected character ';' at column 15"),
        ("sum(revenue)", "expected '<event>.value'"),
        ("percentile(latency.value, 95)", "must be a number in [0, 1]"),
        ("percentile(latency.value)", "takes 2 argument(s), got 1"),
        ("rate(conversion)", "takes 2 argument(s), got 1"),
        ("count(a, b)", "takes 1 argument(s), got 2"),
        ("label_rate(prediction)", "must be 'label'"),
        ("business_value(tp=1, tp=2)", "tp given twice"),
        ("business_value(x=1)", "expected tp=, fp=, tn=, fn= or per_row="),
        ("count(x=1)", "takes no keyword arguments"),
        ("count(session) count(x)", "expected the end at column 16, got 'count'"),
    ],
)
def test_bad_formulas_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    assert message in str(info.value), str(info.value)


def _errors(data: dict) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationFailed) as info:
        parse_kpi(data)
    return [(e.loc, e.msg) for e in info.value.errors]


def test_definition_errors_name_the_field() -> None:
    assert _errors({"name": "x", "formula": "count("})[0][0] == ("formula",)
    assert _errors({"name": "Bad Name", "formula": "count(a)"})[0][0] == ("name",)
    assert _errors({"name": "summary", "formula": "count(a)"})[0][1].endswith("is reserved")
    assert _errors({"name": "x", "formula": "count(a)", "window": "fortnight"})[0][0] == ("window",)
    assert _errors({"name": "x", "formula": "count(a)", "min_events": -1})[0][0] == ("min_events",)
    assert _errors({"name": "x", "formula": "count(a)", "colour": "red"})[0][0] == ("colour",)
    errs = _errors(
        {"name": "x", "formula": "count(a)", "checks": [{"type": "change", "max_change": 0}]}
    )
    assert errs[0][0][:3] == ("checks", "0", "change")
    assert "model" in _errors({"name": "x", "formula": "mean(score)"})[0][1]
    assert (
        "target"
        in _errors({"name": "x", "formula": "count(a)", "checks": [{"type": "target"}]})[0][1]
    )
    two = [{"type": "anomaly"}, {"type": "anomaly", "seasonal": "none"}]
    assert "share a name" in _errors({"name": "x", "formula": "count(a)", "checks": two})[0][1]


def test_default_checks_and_round_trip() -> None:
    d = KpiDefinition.model_validate({"name": "conv", "formula": "rate(c, s)", "target": 0.3})
    assert [c.metric for c in d.effective_checks] == ["anomaly", "shift", "target"]
    assert KpiDefinition.model_validate(d.to_spec()) == d
    none = KpiDefinition.model_validate({"name": "n", "formula": "count(s)", "checks": []})
    assert none.effective_checks == []


CHURN = ModelSchema(
    "binary",
    (FeatureSpec("age", "numeric"), FeatureSpec("plan", "categorical")),
    scores=("score",),
)


@pytest.mark.parametrize(
    ("formula", "problem"),
    [
        ("mean(score)", None),
        ("mean(age)", None),
        ("mean(plan)", "numeric column"),
        ("positive_rate(prediction)", None),
        ("positive_rate(prediction, 'x')", "0 or 1"),
        ("label_rate(label)", None),
        ("business_value(tp=1)", None),
    ],
)
def test_log_formulas_are_checked_against_the_model(formula: str, problem: str | None) -> None:
    d = KpiDefinition.model_validate({"name": "k", "formula": formula, "model": "churn"})
    found = check_against_schema(d, CHURN)
    assert (problem is None and not found) or (problem and problem in found[0]), found
    assert "not registered" in check_against_schema(d, None)[0]
    regression = ModelSchema("regression", CHURN.features)
    if formula.startswith("business_value"):
        assert "binary" in check_against_schema(d, regression)[0]
