"""KPI definitions: the typed, validated form of a KPI from the API, the CLI and YAML files."""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.kpis.check_config import AnomalyCheck, CheckConfig, ShiftCheck, TargetCheck
from monitor.kpis.formula import (
    BusinessValueFormula,
    EventFormula,
    Formula,
    FormulaError,
    LogFormula,
    parse_formula,
)
from monitor.windows import check_window
from storage.types import NAME_RE, ModelSchema

__all__ = ["RESERVED_NAMES", "KpiDefinition", "check_against_schema"]

# Parsed formulas are immutable values: parse each text once (the computation asks per window).
_parse = functools.lru_cache(maxsize=4096)(parse_formula)

# Route segments under /kpis that a KPI may not be called.
RESERVED_NAMES = frozenset({"summary", "apply"})

# the four cells of a binary confusion matrix a business_value formula names
Outcome = Literal["tp", "fp", "tn", "fn"]


class KpiDefinition(BaseModel):
    """A tenant KPI: what to compute per tenant and window, and how to judge it.

    Errors name the field: ``formula: expected ')' at column 14``. ``checks`` omitted means an
    anomaly check (seasonal for daily windows), a sustained-shift check, and a target check
    when a target is set;
    ``checks: []`` means none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Lower-case identifier, e.g. conversion_rate.")
    description: str = Field("", max_length=2000)
    unit: str = Field("", max_length=32, description="Shown after values, e.g. %, EUR, ms.")
    direction: Literal["higher", "lower"] = Field("higher", description="Which way is better.")
    target: float | None = None
    window: Annotated[str, AfterValidator(check_window)] = Field(
        "day", description="hour, day, week, month or Nd (N days): see monitor.windows."
    )
    tenants: Literal["all"] | list[str] = "all"
    formula: str = Field(description="e.g. rate(conversion, session); see docs/kpis.md.")
    model: str | None = Field(None, description="The model whose logs a log formula reads.")
    reference: str | None = Field(
        None, description="Reference (with labels) fitting CBPE for estimated business value."
    )
    min_events: int = Field(30, ge=0, description="Fewer events in a window give no_data.")
    outcomes: dict[Outcome, str] | None = Field(
        None,
        description="Plain names of the decisions a business_value formula values, e.g. "
        "{tp: caught churners, fp: wasted offers}: the KPI pages explain a negative value "
        "with them.",
    )
    checks: list[CheckConfig] | None = None
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"{value!r} must match {NAME_RE.pattern}")
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved")
        return value

    @field_validator("formula")
    @classmethod
    def _formula(cls, value: str) -> str:
        try:
            parse_formula(value)
        except FormulaError as exc:
            raise ValueError(str(exc)) from exc
        return value.strip()

    @field_validator("tenants")
    @classmethod
    def _tenants(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one tenant, or 'all'")
            if len(set(value)) != len(value):
                raise ValueError("a tenant is listed twice")
        return value

    @model_validator(mode="after")
    def _model_needed(self) -> KpiDefinition:
        if self.parsed.source == "logs" and not self.model:
            raise ValueError(
                f"model: the formula {self.formula!r} reads model logs; name the model"
            )
        if self.outcomes is not None:
            if not isinstance(self.parsed, BusinessValueFormula):
                raise ValueError("outcomes: only business_value formulas name their outcomes")
            blank = [k for k, v in self.outcomes.items() if not v.strip() or len(v) > 60]
            if blank:
                raise ValueError(f"outcomes: {blank[0]} needs a name of 1 to 60 characters")
        if self.parsed.source == "events" and self.model is not None and self.reference:
            raise ValueError("reference: only business_value formulas use a reference")
        metrics = [c.metric for c in self.effective_checks]
        if len(set(metrics)) != len(metrics):
            raise ValueError("checks: two checks share a name; give one of them a 'name'")
        if any(isinstance(c, TargetCheck) for c in self.effective_checks) and self.target is None:
            raise ValueError("target: a target check needs the KPI's target")
        return self

    @property
    def parsed(self) -> Formula:
        return _parse(self.formula)

    @property
    def effective_checks(self) -> list[Any]:
        if self.checks is not None:
            return list(self.checks)
        # anomaly: a window unlike its usual self; shift: a worse level that stays, judged
        # against the level before it (an anomaly check's history soon holds the new level)
        out: list[Any] = [AnomalyCheck(), ShiftCheck()]
        if self.target is not None:
            out.append(TargetCheck())
        return out

    def tenant_list(self) -> list[str] | None:
        return None if self.tenants == "all" else list(self.tenants)

    def to_spec(self) -> dict[str, Any]:
        """The JSON form stored in the database and returned by the API."""
        return self.model_dump(mode="json", exclude_none=True)


def check_against_schema(defn: KpiDefinition, schema: ModelSchema | None) -> list[str]:
    """Problems of a log formula against its model's schema (empty when fine)."""
    f = defn.parsed
    if isinstance(f, EventFormula):
        return []
    if schema is None:
        return [f"model: {defn.model!r} is not registered"]
    if isinstance(f, BusinessValueFormula):
        if schema.task != "binary":
            return [
                f"formula: business_value needs a binary model; {defn.model!r} is {schema.task}"
            ]
        if not schema.scores:
            return [f"formula: business_value needs a score column; {defn.model!r} has none"]
        return []
    assert isinstance(f, LogFormula)
    numeric = {x.name for x in schema.features if x.kind in ("numeric", "boolean")}
    numeric |= set(schema.scores)
    if schema.task == "regression":
        numeric.add(schema.prediction)
    if f.func == "mean":
        col = schema.prediction if f.column == "prediction" else f.column
        if col not in numeric:
            return [
                f"formula: mean({f.column}) needs a numeric column of {defn.model!r}: {sorted(numeric)}"
            ]
        return []
    if schema.task == "regression":
        return [f"formula: {f.func} needs a classifier; {defn.model!r} is a regression model"]
    if f.func == "positive_rate" and f.column not in ("prediction", schema.prediction):
        return [f"formula: positive_rate() reads the prediction column {schema.prediction!r}"]
    if schema.task == "multiclass":
        if f.positive is None:
            return [f"formula: {f.func}() of a multiclass model needs the class, e.g. 'churn'"]
        if schema.classes and f.positive not in schema.classes:
            return [f"formula: class {f.positive!r} is not one of {list(schema.classes)}"]
    elif f.positive not in (None, "0", "1"):
        return [f"formula: the class of a binary model is 0 or 1, got {f.positive!r}"]
    return []
