"""The model page's "why": drifted features ranked by NannyML's correlation measure (drift vs
the absolute change of performance from a reference level), checked against pandas and the
t distribution, on constructed series where the answer is known, and on stored results."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor import drift_impact
from monitor.drift_impact import abs_change, correlate, rank, reference_level
from monitor.queries import AccessDenied
from monitor.service import Services
from monitor.settings import Settings
from storage.types import ALL, MetricResult
from tests.dashboard.seed import seed

T0 = datetime(2026, 3, 1, tzinfo=UTC)
W = [T0 + timedelta(days=i) for i in range(20)]


def drift_row(feature: str, i: int, value: float, threshold: float = 0.2) -> MetricResult:
    return MetricResult(
        source="monitor",
        source_name="m",
        kind="feature_drift",
        model="churn",
        window_start=W[i],
        window_end=W[i] + timedelta(days=1),
        tenant_id="acme",
        model_version=ALL,
        column=feature,
        metric="psi",
        value=value,
        threshold=threshold,
        status="alert" if value >= threshold else "ok",
    )


def test_correlation_matches_pandas_and_the_t_test() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=15), rng.normal(size=15)
    y = y + 0.8 * x
    got = correlate(dict(zip(W, x, strict=False)), dict(zip(W, y, strict=False)))
    assert got is not None and got.pairs == 15
    assert got.r == pytest.approx(pd.Series(x).corr(pd.Series(y)), abs=1e-12)
    t = got.r * math.sqrt((15 - 2) / (1 - got.r**2))
    assert got.p_value == pytest.approx(2 * stats.t.sf(abs(t), 13), rel=1e-9)
    # only the windows both have count; too few or a constant side gives no r
    assert correlate(dict(zip(W[:4], x, strict=False)), dict(zip(W, y, strict=False))) is None
    assert correlate(dict(zip(W, np.ones(15), strict=False)), dict(zip(W, y, strict=False))) is None


def test_reference_level_is_the_quiet_windows_mean_else_the_median() -> None:
    values = {W[i]: float(i) for i in range(10)}
    assert reference_level(values, W[:4]) == pytest.approx(1.5)
    assert reference_level(values, W[:2]) == pytest.approx(4.5)  # too few quiet: median
    assert abs_change(values, 2.0)[W[5]] == 3.0 and abs_change(values, None) == {}


def test_the_feature_whose_drift_moves_performance_ranks_first() -> None:
    rng = np.random.default_rng(7)
    perf = {}
    rows: dict[str, list[MetricResult]] = {"cause": [], "noise": [], "calm": []}
    for i in range(20):
        shift = 0.0 if i < 10 else (i - 9) * 0.02  # performance falls from window 10
        perf[W[i]] = 0.80 - shift + rng.normal(0, 0.003)
        rows["cause"].append(drift_row("cause", i, 0.05 + shift * 10 + rng.normal(0, 0.01)))
        spike = 0.5 if i in (3, 4) else 0.05  # drifts twice, performance does not move
        rows["noise"].append(drift_row("noise", i, spike + rng.normal(0, 0.01)))
        rows["calm"].append(drift_row("calm", i, 0.05 + rng.normal(0, 0.01)))
    ranked, undrifted, level = rank(rows, perf, {})
    assert [f.feature for f in ranked] == ["cause", "noise"] and undrifted == 1
    cause, noise = ranked
    assert cause.performance is not None and cause.performance.r > 0.95
    assert cause.performance.p_value < 1e-6 and cause.drifted_windows >= 8
    assert noise.performance is not None and noise.performance.r < 0.3
    # the reference level: mean performance of the windows where nothing drifted
    drifting = {r.window_start for rs in rows.values() for r in rs if r.status == "alert"}
    quiet = [perf[w] for w in W if w not in drifting]
    assert level == pytest.approx(sum(quiet) / len(quiet))


def test_a_feature_that_moves_only_the_kpi_is_still_a_lead() -> None:
    kpi = {W[i]: 0.33 if i < 12 else 0.22 for i in range(20)}
    perf = {W[i]: 0.8 + (0.001 if i % 2 else -0.001) for i in range(20)}
    rows = {
        "discount": [drift_row("discount", i, 0.05 if i < 12 else 0.9) for i in range(20)],
        "plan": [drift_row("plan", i, 0.5 if i in (2, 5, 9) else 0.05) for i in range(20)],
    }
    ranked, _, _ = rank(rows, perf, kpi)
    assert ranked[0].feature == "discount"
    assert ranked[0].kpi is not None and ranked[0].kpi.r > 0.95
    assert ranked[0].strength == ranked[0].kpi.r


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    svc = Services.open(Settings(data_dir=tmp_path_factory.mktemp("impact") / "data"))
    seed(svc)
    yield svc  # type: ignore[misc]
    svc.close()


def test_feature_impact_on_stored_results(services: Services) -> None:
    view = drift_impact.feature_impact(services, None, "churn", "globex", "30d")
    assert view.basis in ("estimated", "realized") and view.metric
    assert view.features, "globex drifts in the seeded data"
    assert all(f.drifted_windows > 0 for f in view.features)
    strengths = [f.strength for f in view.features]
    assert strengths == sorted(strengths, reverse=True)
    # a tenant-scoped user: only their tenant, never the all-tenant attribution
    mine = drift_impact.feature_impact(services, ("acme",), "churn", None, "30d")
    assert mine.tenant == "acme" and all(f.carriers == [] for f in mine.features)
    with pytest.raises(AccessDenied):
        drift_impact.feature_impact(services, ("acme",), "churn", "globex", "30d")


# The runner's leave-one-out attribution of globex's discount_rate drift in the 60-day demo's
# newest window (details.drivers, all tenants 0.937): every tenant, ranked; leaving initech or
# acme out raises the statistic
DEMO_DRIVERS = [
    {"tenant_id": "globex", "rows": 130, "statistic": 2.763, "statistic_without": 0.06707,
     "contribution": 0.8700},
    {"tenant_id": "initech", "rows": 92, "statistic": 0.07848, "statistic_without": 1.198,
     "contribution": -0.2605},
    {"tenant_id": "acme", "rows": 179, "statistic": 0.07381, "statistic_without": 1.644,
     "contribution": -0.7066},
]  # fmt: skip


def test_only_tenants_that_carry_a_drift_are_named(services: Services) -> None:
    """The model page's "carried by" named the two first tenants of the ranking, so initech
    (0.08 alone, 1.2 without, against 0.94 over all tenants) "carried" globex's drift; the
    alert page of the all-tenants twin listed every tenant under "Which tenants carry it"."""
    from monitor.alert_leads import alert_leads
    from storage.types import AlertRecord

    carriers = drift_impact._carriers({"drivers": DEMO_DRIVERS})
    assert [c.tenant_id for c in carriers] == ["globex"], carriers
    now = datetime(2026, 12, 3, tzinfo=UTC)
    twin = AlertRecord(
        fingerprint="f", rule="churn-drift", state="firing", severity="warning",
        tenant_id=ALL, model="churn", labels={"column": "discount_rate"}, annotations={},
        value=0.94, threshold=0.11, breach_streak=2, clear_streak=0, last_window_end=now,
        active_at=now, starts_at=now, ends_at=None, updated_at=now,
        context={"drivers": DEMO_DRIVERS}, id=1,
    )  # fmt: skip
    leads = alert_leads(services, None, twin)
    assert [d.tenant_id for d in leads.drivers] == ["globex"], leads.drivers
