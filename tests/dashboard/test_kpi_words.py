"""The words of a tenant's KPI card (``dashboard/kpi_words.py``) and the banner of a tenant
with no KPI at risk, on the demo's figures: what the card's business value is made of (it said
"estimated from the model's scores" of a chart estimated only in its last 3 days), what the
chart's marks are (its red triangles had no key), and why a grey KPI is grey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.kpi_words import basis_text, trend_key
from monitor.kpis.definition import KpiDefinition
from monitor.kpis.headline import headline
from monitor.kpis.tenant_sentences import calm_sentence
from monitor.queries.kpis import Incidents, KpiCard, KpiTenantView
from monitor.queries.model import Series
from storage.types import MetricResult

DAY0 = datetime(2026, 11, 4, tzinfo=UTC)
DAYS = [DAY0 + timedelta(days=d) for d in range(29)]


def _card(estimated: int, basis: str | None = "estimated", target: float | None = None) -> KpiCard:
    real, est = DAYS[: len(DAYS) - estimated], DAYS[len(DAYS) - estimated :]
    return KpiCard(
        name="retention_value",
        tenant_id="globex",
        description="",
        unit="EUR",
        direction="higher",
        target=target,
        value=244.8,
        previous=83.4,
        change=None,
        attainment=None,
        status="ok",
        message="within its usual range",
        window_start=DAYS[-1],
        trend=Series("retention_value", real, [1.0] * len(real)),
        basis=basis,
        estimated=Series("retention_value (estimated)", est, [1.0] * len(est)) if est else None,
    )


def _view(marks: bool) -> KpiTenantView:
    return KpiTenantView(
        tenant="globex",
        tenants=["globex"],
        range_key="30d",
        cards=[],
        health=[],
        incidents=Incidents(0, 0, None, None),
        alert_marks=[(DAYS[9], "kpi-breach")] if marks else [],
        versions=[],
        computed_at=None,
    )


def test_the_business_value_basis_names_the_estimated_days() -> None:
    # the demo: 30 Nov mixed, 1-2 Dec estimated, every day before realized
    text = basis_text(_card(3))
    # control (before): "Business value: estimated from the model's scores (labels not in yet)."
    assert text == (
        "Business value: the last 3 windows (30 Nov – 2 Dec) estimated (in whole or in part) "
        "from the model's scores, their labels not in yet (dashed on the chart); the windows "
        "before are realized (every label in)."
    )
    assert basis_text(_card(0, "realized")) == "Business value: realized (every label is in)."


def test_the_chart_key_names_the_red_triangles_only_when_drawn() -> None:
    key = trend_key(_card(3), _view(marks=True))
    assert "red ▲ at the bottom: an alert on this tenant began that day" in key
    assert "dashed where estimated" in key and "target" not in key
    # control: a chart without alert marks or estimates does not explain them
    plain = trend_key(_card(0, None, target=0.25), _view(marks=False))
    assert plain == "Chart: the KPI per window; dotted green line: its target."


def test_a_tenant_banner_names_a_kpi_grey_for_having_no_target() -> None:
    """A KPI with no target is grey (never "on track"); the banner of a tenant with no KPI
    at risk says why, as it does for one worse than before or below zero."""
    rv = KpiDefinition.model_validate(
        {
            "name": "retention_value",
            "unit": "EUR",
            "model": "churn",
            "formula": "business_value(tp=50, fp=-5, tn=1, fn=-10)",
        }
    )
    rows = [
        MetricResult(
            source="kpi",
            source_name="retention_value",
            kind="kpi",
            model="churn",
            tenant_id="globex",
            model_version="*",
            window_start=d,
            window_end=d + timedelta(days=1),
            column="",
            metric="retention_value",
            value=73.4 if i < 7 else 109.0,
            threshold=None,
            status="ok",
            details={},
            computed_at=d,
        )
        for i, d in enumerate(DAYS[:14])
    ]
    h = headline(rv, "globex", rows)
    assert h.tone == "neutral"  # control (before): "good"
    # control (before): "globex: no KPI with a target to be on, none outside its usual range;
    # retention value has no target." over a green card
    assert calm_sentence("globex", [h]) == (
        "globex: no KPI off target or outside its usual range; no target: retention value."
    )
