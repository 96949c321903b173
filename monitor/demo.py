"""Synthetic demo scenario: tenants, a churn classifier and a few days of hourly traffic.

Deterministic (seeded), so loading it twice stores nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from monitor.schemas import FeatureIn, ModelIn

TENANTS = ("acme", "globex", "initech")
PLANS = ("free", "pro", "enterprise")
REGIONS = ("eu", "us", "apac")

CHURN_MODEL = ModelIn(
    name="churn",
    task="binary",
    description="Predicts whether a customer cancels within 30 days.",
    features=[
        FeatureIn(name="tenure_months", kind="numeric"),
        FeatureIn(name="monthly_spend", kind="numeric"),
        FeatureIn(name="support_tickets", kind="numeric"),
        FeatureIn(name="logins_last_week", kind="numeric"),
        FeatureIn(name="discount_rate", kind="numeric"),
        FeatureIn(name="plan", kind="categorical", segment=True),
        FeatureIn(name="region", kind="categorical", segment=True),
        FeatureIn(name="has_mobile_app", kind="boolean"),
    ],
    prediction="prediction",
    scores=["score"],
)


def portable(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to 9 decimals. numpy's vectorised exp and sin differ in the last bit
    between CPUs (AVX-512 and AVX2 kernels); rounded, the demo's data (and so its bins, null
    seeds and verdicts) are the same on every machine, not only to 12 digits."""
    return np.round(x, 9)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function on the demo's logits, :func:`portable`."""
    return portable(1 / (1 + np.exp(-x)))


def churn_rows(
    n: int, rng: np.random.Generator, start: datetime, end: datetime, tenants: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """``n`` rows with timestamps spread over [start, end) and a label drawn from the true model."""
    span = (end - start).total_seconds()
    offsets = np.sort(rng.uniform(0, span, n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")
    tenure = rng.gamma(2.0, 12.0, n)
    spend = rng.lognormal(3.5, 0.6, n)
    tickets = rng.poisson(1.2, n).astype(float)
    logins = rng.poisson(6.0, n).astype(float)
    discount = rng.beta(2, 12, n)
    plan = rng.choice(PLANS, n, p=[0.5, 0.35, 0.15])
    region = rng.choice(REGIONS, n, p=[0.4, 0.4, 0.2])
    mobile = rng.random(n) < 0.6
    logit = -1.2 - 0.04 * tenure + 0.5 * tickets - 0.15 * logins + 2.0 * discount
    prob = sigmoid(logit)
    label = (rng.random(n) < prob).astype(np.int32)
    return {
        "ts": ts,
        "tenant_id": rng.choice(tenants, n, p=[0.5, 0.3, 0.2][: len(tenants)]),
        "tenure_months": tenure,
        "monthly_spend": spend,
        "support_tickets": tickets,
        "logins_last_week": logins,
        "discount_rate": discount,
        "plan": plan,
        "region": region,
        "has_mobile_app": mobile,
        "score": prob,
        "prediction": (prob >= 0.5).astype(np.int32),
        "label": label,
    }


def demo_batches(
    days: int = 3, rows_per_hour: int = 200, seed: int = 7, now: datetime | None = None
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Inferences, labels (only for rows older than a day: labels arrive late) and reference."""
    rng = np.random.default_rng(seed)
    now = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=days)
    n = days * 24 * rows_per_hour
    cols = churn_rows(n, rng, start, now, TENANTS)
    request_ids = np.array([f"demo-{seed}-{i}" for i in range(n)])
    label = cols.pop("label")
    inferences = pa.table(
        {
            "request_id": request_ids,
            "ts": pa.array(cols.pop("ts"), pa.timestamp("us", tz="UTC")),
            "model_version": np.where(np.arange(n) < n // 2, "v1", "v2"),
            **cols,
        }
    )
    labelled = inferences.column("ts").to_numpy() < np.datetime64(
        (now - timedelta(days=1)).replace(tzinfo=None), "us"
    )
    labels = pa.table(
        {"request_id": request_ids[labelled], "label": label[labelled].astype(np.int32)}
    )
    ref = churn_rows(
        20_000, np.random.default_rng(seed + 1), start - timedelta(days=30), start, TENANTS
    )
    ref.pop("ts")
    ref.pop("tenant_id")
    reference = pa.table(ref)
    return inferences, labels, reference
