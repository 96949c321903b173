"""A compact, deterministic dashboard data set written straight into the stores.

The dashboard only reads stored results, so its tests do not need the runner: this writes the
kind of rows the runner, the KPI job and the alert engine store (metric results of every monitor
kind, KPI values, alerts with a notification, runs with an error) for three tenants over 30 daily
windows, with a feature drift for ``globex`` from day 20 and a model-version rollout.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor import demo
from monitor.ingest import ParsedBody
from monitor.service import Caller, Services
from storage.metadata.alerting import AlertStore
from storage.metadata.kpis import KpiStore
from storage.metadata.monitoring import MonitoringStore
from storage.types import ALL, AlertRecord, MetricResult

TENANTS = ("acme", "globex", "initech")
FEATURES = ("tenure_months", "monthly_spend", "support_tickets", "discount_rate", "plan")
DAYS = 30
DRIFT_FROM = 20  # day index from which globex drifts


def _hist(rng: np.random.Generator, shift: float) -> dict[str, list[float]]:
    edges = list(np.linspace(0, 1, 11))
    ref = rng.dirichlet(np.full(10, 20.0)) * 1000
    cur = np.roll(ref, round(shift * 3)) * rng.uniform(0.9, 1.1, 10)
    return {"edges": edges, "reference": ref.round(1).tolist(), "current": cur.round(1).tolist()}


def seed(services: Services, now: datetime | None = None) -> dict[str, int]:
    """Write the data set; returns ids of interesting alerts (``firing``, ``pending``)."""
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    today = now.replace(hour=0)
    caller = Caller.local()
    if services.metadata.get_model("churn") is None:
        services.register_model(demo.CHURN_MODEL, caller)
    inf, labels, ref = demo.demo_batches(days=4, rows_per_hour=20, now=now)
    services.ingest_inferences("churn", ParsedBody(table=inf), caller)
    services.ingest_labels("churn", ParsedBody(table=labels), caller)
    if not services.logstore.list_references("churn"):
        services.put_reference("churn", "training", ParsedBody(table=ref), caller)
    services.metadata.ensure_tenants(TENANTS)

    rng = np.random.default_rng(3)
    ms = MonitoringStore(services.metadata)
    for name, kind in [
        ("churn-drift", "feature_drift"),
        ("churn-prediction", "prediction_drift"),
        ("churn-quality", "data_quality"),
        ("churn-performance", "performance"),
        ("churn-estimated", "estimated_performance"),
    ]:
        if ms.get_monitor(name) is None:
            ms.create_monitor(name, "churn", kind, {"model": "churn", "kind": kind})
    results: list[MetricResult] = []

    def add(
        src: str,
        kind: str,
        w: datetime,
        tenant: str,
        col: str,
        metric: str,
        value: float | None,
        thr: float | None,
        status: str,
        **details: object,
    ) -> None:
        results.append(
            MetricResult(
                source="monitor",
                source_name=src,
                kind=kind,
                model="churn",
                window_start=w,
                window_end=w + timedelta(days=1),
                tenant_id=tenant,
                model_version=ALL,
                column=col,
                metric=metric,
                value=value,
                threshold=thr,
                status=status,
                details=dict(details),
                computed_at=now,
            )
        )

    for d in range(DAYS):
        w = today - timedelta(days=DAYS - d)
        for tenant in (*TENANTS, ALL):
            drifting = tenant in ("globex", ALL) and d >= DRIFT_FROM
            for f in FEATURES:
                shift = (
                    (0.3 + 0.05 * (d - DRIFT_FROM))
                    if drifting and f in ("discount_rate", "tenure_months")
                    else 0.0
                )
                v = abs(rng.normal(0.03, 0.01)) + shift * (0.5 if tenant == ALL else 1)
                st = "alert" if v > 0.2 else "warn" if v > 0.1 else "ok"
                add(
                    "churn-drift",
                    "feature_drift",
                    w,
                    tenant,
                    f,
                    "psi",
                    v,
                    0.2,
                    st,
                    histogram=_hist(rng, v),
                )
            pv = abs(rng.normal(0.02, 0.01)) + (0.1 if drifting else 0)
            add(
                "churn-prediction",
                "prediction_drift",
                w,
                tenant,
                "score",
                "psi",
                pv,
                0.2,
                "warn" if pv > 0.1 else "ok",
            )
            add(
                "churn-quality",
                "data_quality",
                w,
                tenant,
                "monthly_spend",
                "missing_rate",
                0.01,
                0.05,
                "ok",
            )
            add(
                "churn-quality",
                "data_quality",
                w,
                tenant,
                "plan",
                "new_categories",
                1.0 if drifting else 0.0,
                0.0,
                "warn" if drifting else "ok",
            )
            auc = 0.82 - (0.06 if drifting else 0) + rng.normal(0, 0.01)
            if d < DAYS - 3:  # labels arrive three days late
                add(
                    "churn-performance",
                    "performance",
                    w,
                    tenant,
                    "",
                    "roc_auc",
                    auc,
                    0.75,
                    "ok" if auc > 0.75 else "alert",
                )
            est = auc + rng.normal(0, 0.01)
            add(
                "churn-estimated",
                "estimated_performance",
                w,
                tenant,
                "",
                "roc_auc",
                est,
                0.75,
                "ok" if est > 0.75 else "alert",
                lower=est - 0.03,
                upper=est + 0.03,
            )
        for tenant in TENANTS:
            base = {"acme": 0.12, "globex": 0.10, "initech": 0.08}[tenant]
            season = 0.01 * math.sin(2 * math.pi * w.weekday() / 7)
            drop = 0.03 if tenant == "globex" and d >= DRIFT_FROM + 3 else 0.0
            value = base + season - drop + rng.normal(0, 0.002)
            status = "alert" if drop else "ok"
            results.append(
                MetricResult(
                    source="kpi",
                    source_name="conversion_rate",
                    kind="kpi",
                    model="churn",
                    window_start=w,
                    window_end=w + timedelta(days=1),
                    tenant_id=tenant,
                    model_version=ALL,
                    column="",
                    metric="conversion_rate",
                    value=value,
                    threshold=base,
                    status=status,
                    computed_at=now,
                    details={
                        "unit": "%",
                        "direction": "higher",
                        "target": base,
                        "attainment": value / base,
                        "message": "fell below its usual range"
                        if drop
                        else "within its usual range",
                    },
                )
            )
    ms.save_results(results)
    kpis = KpiStore(services.metadata)
    if kpis.get("conversion_rate") is None:
        kpis.create(
            "conversion_rate",
            {
                "name": "conversion_rate",
                "formula": "rate(conversion, session)",
                "model": "churn",
                "unit": "%",
                "description": "Share of sessions that convert.",
            },
        )
    for i, (name, status) in enumerate([("churn-drift", "ok"), ("churn-quality", "error")]):
        run = ms.start_run(name, "churn", today - timedelta(days=1), today, "schedule", 1)
        ms.finish_run(
            run,
            status,
            error="reference 'training' has no column 'plan'" if i else None,
            results=10,
            duration_s=0.4,
        )

    alerts = AlertStore(services.metadata, "test-secret")
    alerts.put_rule("feature-drift", {"name": "feature-drift", "severity": "critical"})
    drift_start = today - timedelta(days=DAYS - DRIFT_FROM)

    def alert(
        fp: str, tenant: str, state: str, severity: str, column: str, hours: int
    ) -> AlertRecord:
        labels = {
            "alertname": "feature-drift",
            "tenant": tenant,
            "model": "churn",
            "monitor": "churn-drift",
            "column": column,
            "metric": "psi",
        }
        return AlertRecord(
            fingerprint=fp,
            rule="feature-drift",
            state=state,
            severity=severity,  # type: ignore[arg-type]
            tenant_id=tenant,
            model="churn",
            labels=labels,
            annotations={"summary": f"{column} drifted for {tenant}"},
            value=0.4,
            threshold=0.2,
            breach_streak=3,
            clear_streak=0,
            last_window_end=today,
            active_at=drift_start,
            starts_at=now - timedelta(hours=hours) if state != "pending" else None,
            ends_at=now - timedelta(hours=1) if state == "resolved" else None,
            updated_at=now,
            group_key=f"g-{tenant}",
        )

    stored = alerts.apply_evaluation(
        [
            alert("fp-globex-discount", "globex", "firing", "critical", "discount_rate", 30),
            alert("fp-globex-tenure", "globex", "firing", "warning", "tenure_months", 20),
            alert("fp-acme-plan", "acme", "pending", "warning", "plan", 2),
            alert("fp-initech-old", "initech", "resolved", "info", "monthly_spend", 200),
        ]
    )
    ids = {a.fingerprint: int(a.id or 0) for a in stored}
    return {
        "globex_firing": ids["fp-globex-discount"],
        "globex_firing2": ids["fp-globex-tenure"],
        "acme_pending": ids["fp-acme-plan"],
        "initech_resolved": ids["fp-initech-old"],
    }
