"""Many alerts in a store, for the alert list at scale (browser test and benchmark).

Alerts are written straight into the alert store (one bulk insert), shaped like the engine's:
five rules over forty columns and fifty tenants, each fingerprint once, about a third open;
every tenth per-tenant drift alert has an all-tenants twin. Deterministic for a given ``seed``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from alerts.evaluate import fingerprint
from monitor.composition import of
from monitor.service import Services
from storage.types import ALL, AlertRecord

RULES = [
    ("churn-drift", "warning", "feature_drift", "churn-feature-drift", "wasserstein"),
    ("churn-data-quality", "warning", "data_quality", "churn-data-quality", "out_of_range"),
    ("churn-missing-data", "critical", "data_quality", "churn-data-quality", "missing_share"),
    ("churn-performance", "critical", "performance", "churn-performance", "roc_auc"),
    ("churn-prediction-drift", "info", "prediction_drift", "churn-prediction-drift", "psi"),
]


def tenants(n: int = 50) -> list[str]:
    return [f"tenant{i:03d}" for i in range(n)]


def _alert(
    rule: tuple[str, str, str, str, str],
    tenant: str,
    column: str,
    state: str,
    active: datetime,
    now: datetime,
) -> AlertRecord:
    name, severity, kind, monitor, metric = rule
    labels = {
        "alertname": name,
        "rule": name,
        "severity": severity,
        "model": "churn",
        "tenant": tenant,
        "monitor": monitor,
        "source": "monitor",
        "kind": kind,
        "metric": metric,
        "column": column,
    }
    ends = active + timedelta(days=2) if state == "resolved" else None
    return AlertRecord(
        fingerprint=fingerprint(labels),
        rule=name,
        state=state,  # type: ignore[arg-type]
        severity=severity,
        tenant_id=tenant,
        model="churn",
        labels=labels,
        annotations={"summary": f"{name}: {metric}[{column}] of churn for tenant {tenant}"},
        value=0.4,
        threshold=0.2,
        breach_streak=1,
        clear_streak=0,
        last_window_end=active + timedelta(days=1),
        active_at=active,
        starts_at=None if state == "pending" else active + timedelta(days=1),
        ends_at=ends,
        updated_at=now,
        group_key=f"{name}/{tenant}",
    )


def add_alerts(services: Services, n: int, now: datetime, seed: int = 0) -> int:
    """Insert ``n`` alerts (at most 10,000 distinct label sets) whose first breaching windows
    fall in the 60 days before ``now``; returns how many were written."""
    rng = np.random.default_rng(seed)
    names = tenants()
    services.metadata.ensure_tenants(names)
    combos = [(r, t, f"feature_{c:02d}") for c in range(40) for t in names for r in RULES]
    if n > len(combos):
        raise ValueError(f"n={n} is more than the {len(combos)} distinct label sets")
    picked = [combos[i] for i in rng.permutation(len(combos))[:n]]
    states = rng.choice(["firing", "pending", "resolved"], size=n, p=[0.3, 0.05, 0.65])
    hours = rng.integers(0, 60 * 24, size=n)
    out: list[AlertRecord] = []
    seen: set[str] = set()
    for k, ((rule, tenant, column), state, h) in enumerate(zip(picked, states, hours, strict=True)):
        active = (now - timedelta(hours=int(h))).replace(minute=0, second=0, microsecond=0)
        out.append(_alert(rule, tenant, column, str(state), active, now))
        twin = _alert(rule, ALL, column, str(state), active, now)
        if k % 10 == 0 and rule[2] == "feature_drift" and twin.fingerprint not in seen:
            seen.add(twin.fingerprint)
            out.append(twin)
    out = out[:n]
    of(services).alerting.store.apply_evaluation(out)
    return len(out)
