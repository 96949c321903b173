"""Tenant KPIs: definitions and formulas, checks, computation, the link between model signals
and KPIs, and the executive summary.

Modules: ``formula`` (parser), ``definition`` (pydantic model), ``checks`` (pure checks),
``compute`` (pushed-down computation → metric results), ``link`` (correlation and breach
ranking), ``summary`` (executive summary), ``service`` (use cases for API, CLI, scheduler,
dashboard and alerting). See ``docs/kpis.md``.
"""

from __future__ import annotations

from monitor.kpis.definition import KpiDefinition
from monitor.kpis.formula import FormulaError, parse_formula

__all__ = ["FormulaError", "KpiDefinition", "parse_formula"]
