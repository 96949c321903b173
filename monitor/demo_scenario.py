"""The realistic demo (``make demo``): three tenants, a churn classifier with probabilities and a
basket-value regression model, 60 days of hourly traffic with weekly seasonality, labels three
days late, business events, a feature drift for ``globex`` from day 40 followed by a drop in its
conversion, model-version rollouts, and the default monitors, a KPI and the default alert
rules (missing-data rules told the labels' delay) run over all of it. A shorter build keeps
the story in proportion (``build(days=14)``: drift from day 9). Alerts go to a local webhook
receiver (``driftwatch demo receiver``) that appends every delivery to
``<data_dir>/demo-webhooks.jsonl``.

Deterministic (seeded) and idempotent: building twice stores nothing twice.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from monitor.demo import CHURN_MODEL, PLANS, REGIONS, portable, sigmoid
from monitor.ingest import ParsedBody
from monitor.schemas import FeatureIn, ModelIn
from monitor.service import Caller, Services

log = logging.getLogger("driftwatch.demo")

DAYS = 60
DRIFT_TENANT = "globex"
DRIFT_DAY = 40  # globex's discounts and tenure shift from this day
KPI_DROP_DAY = 42  # ... and its conversion falls two days later
CHURN_V2_DAY = 30  # churn v2 rolls out
BASKET_V2_DAY = 45
LABEL_DELAY = timedelta(days=3)
WEBHOOK_PORT = 8765
CHANNEL = "demo-webhook"
TENANT_RATE = {"acme": 14.0, "globex": 10.0, "initech": 7.0}  # churn rows per hour
CONVERSION = {"acme": 0.34, "globex": 0.30, "initech": 0.26}  # of sessions
SESSIONS_PER_PREDICTION = 4
CONVERSION_TARGET = 0.25
DEMO_USERS = [
    ("admin", "admin", None),
    ("engineer", "engineer", None),
    ("oncall", "oncall", None),
    ("exec", "executive", None),
    ("acme", "engineer", ["acme"]),
]
DEMO_PASSWORD = "driftwatch-demo"

BASKET_MODEL = ModelIn(
    name="basket_value",
    task="regression",
    description="Predicts the value of a shopping basket at checkout.",
    features=[
        FeatureIn(name="items", kind="numeric"),
        FeatureIn(name="session_minutes", kind="numeric"),
        FeatureIn(name="discount_offered", kind="numeric"),
        FeatureIn(name="device", kind="categorical", segment=True),
        FeatureIn(name="returning", kind="boolean"),
    ],
    prediction="predicted_value",
    scores=[],
)


@dataclass
class ScenarioSummary:
    rows: dict[str, int] = field(default_factory=dict)
    events: int = 0
    monitors: list[str] = field(default_factory=list)
    kpi_rows: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # the demo channel's signing secret when this build created the channel (else None)
    webhook_secret: str | None = None


def _scaled(day: int, days: int) -> float:
    """Day ``day`` of the 60-day story in a build of ``days`` (a shorter build keeps every
    event, in proportion: drift, KPI drop and rollouts all happen)."""
    return day * days / DAYS


def _hours(now: datetime, days: int) -> np.ndarray:
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    return np.arange(
        np.datetime64(start.replace(tzinfo=None), "h"), np.datetime64(end.replace(tzinfo=None), "h")
    )


def _traffic(
    rng: np.random.Generator, hours: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Row timestamps and tenants: Poisson counts per hour with a daily and a weekly cycle."""
    hod = (hours.astype("datetime64[h]").astype(np.int64) % 24).astype(float)
    dow = ((hours.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(float)  # 0 = Monday
    daily = portable(0.55 + 0.45 * np.sin((hod - 6) / 24 * 2 * np.pi).clip(min=-0.8))
    weekly = np.where(dow >= 5, 0.65, 1.0)
    ts_parts, tenant_parts = [], []
    for tenant, rate in TENANT_RATE.items():
        counts = rng.poisson(rate * scale * daily * weekly)
        base = np.repeat(hours.astype("datetime64[us]"), counts)
        offsets = (rng.uniform(0, 3600, counts.sum()) * 1e6).astype("timedelta64[us]")
        ts_parts.append(base + offsets)
        tenant_parts.append(np.full(counts.sum(), tenant))
    ts = np.concatenate(ts_parts)
    tenants = np.concatenate(tenant_parts)
    order = np.argsort(ts, kind="stable")
    return ts[order], tenants[order]


def churn_traffic(
    now: datetime, days: int = DAYS, scale: float = 1.0, seed: int = 11
) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """Churn inferences, labels (3 days late), business events and a labelled reference."""
    rng = np.random.default_rng(seed)
    hours = _hours(now, days)
    ts, tenant = _traffic(rng, hours, scale)
    n = len(ts)
    start = hours[0].astype("datetime64[us]")
    day = ((ts - start) / np.timedelta64(1, "D")).astype(float)
    drift = (tenant == DRIFT_TENANT) & (day >= _scaled(DRIFT_DAY, days))
    tenure = np.where(drift, rng.gamma(1.4, 7.0, n), rng.gamma(2.0, 12.0, n))
    discount = np.where(drift, rng.beta(5, 8, n), rng.beta(2, 12, n))
    tickets = rng.poisson(1.2, n).astype(float)
    logins = rng.poisson(6.0, n).astype(float)
    spend = rng.lognormal(3.5, 0.6, n)
    plan = rng.choice(PLANS, n, p=[0.5, 0.35, 0.15])
    region = rng.choice(REGIONS, n, p=[0.4, 0.4, 0.2])
    mobile = rng.random(n) < 0.6
    logit = -1.2 - 0.04 * tenure + 0.5 * tickets - 0.15 * logins + 2.0 * discount
    prob = sigmoid(logit)
    label = (rng.random(n) < prob).astype(np.int32)
    v2 = day >= _scaled(CHURN_V2_DAY, days)
    score = np.where(v2, sigmoid(logit * 1.05 + 0.05), prob)
    request_id = np.array([f"churn-{seed}-{i}" for i in range(n)])
    inferences = pa.table(
        {
            "request_id": request_id,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "tenant_id": tenant,
            "model_version": np.where(v2, "v2", "v1"),
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_tickets": tickets,
            "logins_last_week": logins,
            "discount_rate": discount,
            "plan": plan,
            "region": region,
            "has_mobile_app": mobile,
            "score": score,
            "prediction": (score >= 0.5).astype(np.int32),
        }
    )
    cutoff = np.datetime64((now - LABEL_DELAY).replace(tzinfo=None), "us")
    late = ts < cutoff
    labels = pa.table({"request_id": request_id[late], "label": label[late]})
    # business events: sessions (some linked to a prediction), conversions for some of them
    k = SESSIONS_PER_PREDICTION
    s_ts = np.repeat(ts, k) + (rng.uniform(0, 3600, n * k) * 1e6).astype("timedelta64[us]")
    s_tenant = np.repeat(tenant, k)
    s_day = np.repeat(day, k)
    s_prob = np.repeat(prob, k)
    s_rid = np.where(np.arange(n * k) % k == 0, np.repeat(request_id, k), None)  # type: ignore[call-overload]  # numpy stubs: None scalar
    conv_p = np.vectorize(CONVERSION.get)(s_tenant) * (1.15 - 0.5 * s_prob)
    s_dow = ((s_ts.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(float)
    conv_p = conv_p * np.where(s_dow >= 5, 1.1, 1.0)
    dropped = (s_tenant == DRIFT_TENANT) & (s_day >= _scaled(KPI_DROP_DAY, days))
    conv_p = np.where(dropped, conv_p * 0.7, conv_p)
    converted = rng.random(n * k) < conv_p
    ev_ts = np.concatenate([s_ts, s_ts[converted] + np.timedelta64(5, "m")])
    m_conv = int(converted.sum())
    events = pa.table(
        {
            "ts": pa.array(ev_ts, pa.timestamp("us", tz="UTC")),
            "tenant_id": np.concatenate([s_tenant, s_tenant[converted]]),
            "name": np.concatenate([np.full(n * k, "session"), np.full(m_conv, "conversion")]),
            "value": np.ones(len(ev_ts)),
            "request_id": pa.array(np.concatenate([s_rid, s_rid[converted]]).tolist(), pa.string()),
        }
    )
    ref_rng = np.random.default_rng(seed + 1)
    m = 20_000
    r_tenure, r_disc = ref_rng.gamma(2.0, 12.0, m), ref_rng.beta(2, 12, m)
    r_tickets, r_logins = (
        ref_rng.poisson(1.2, m).astype(float),
        ref_rng.poisson(6.0, m).astype(float),
    )
    r_logit = -1.2 - 0.04 * r_tenure + 0.5 * r_tickets - 0.15 * r_logins + 2.0 * r_disc
    r_prob = sigmoid(r_logit)
    reference = pa.table(
        {
            "tenure_months": r_tenure,
            "monthly_spend": ref_rng.lognormal(3.5, 0.6, m),
            "support_tickets": r_tickets,
            "logins_last_week": r_logins,
            "discount_rate": r_disc,
            "plan": ref_rng.choice(PLANS, m, p=[0.5, 0.35, 0.15]),
            "region": ref_rng.choice(REGIONS, m, p=[0.4, 0.4, 0.2]),
            "has_mobile_app": ref_rng.random(m) < 0.6,
            "score": r_prob,
            "prediction": (r_prob >= 0.5).astype(np.int32),
            "label": (ref_rng.random(m) < r_prob).astype(np.int32),
        }
    )
    return inferences, labels, events, reference


def basket_traffic(
    now: datetime, days: int = DAYS, scale: float = 1.0, seed: int = 12
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Basket-value inferences, labels (the real basket value, 3 days late) and reference.

    As many rows as the churn model: at half of it the smallest tenant's weekend days fell
    below the monitors' 30 rows (``no_data``, a missing-data alert the story does not have).
    """
    rng = np.random.default_rng(seed)
    hours = _hours(now, days)
    ts, tenant = _traffic(rng, hours, scale)
    n = len(ts)
    start = hours[0].astype("datetime64[us]")
    day = ((ts - start) / np.timedelta64(1, "D")).astype(float)

    def draw(k: int, g: np.random.Generator) -> dict[str, np.ndarray]:
        items = g.poisson(4.0, k).astype(float) + 1
        minutes = g.gamma(3.0, 4.0, k)
        disc = g.beta(2, 10, k)
        device = g.choice(["web", "ios", "android"], k, p=[0.5, 0.3, 0.2])
        returning = g.random(k) < 0.55
        value = 12 * items * (1 - disc) + 0.8 * minutes + np.where(returning, 8, 0)
        value = value * g.lognormal(0, 0.15, k)
        return {
            "items": items,
            "session_minutes": minutes,
            "discount_offered": disc,
            "device": device,
            "returning": returning,
            "_value": value,
        }

    cols = draw(n, rng)
    actual = cols.pop("_value")
    v2 = day >= _scaled(BASKET_V2_DAY, days)
    noise = rng.normal(0, np.where(v2, 4.0, 6.0), n)
    predicted = actual + noise
    request_id = np.array([f"basket-{seed}-{i}" for i in range(n)])
    inferences = pa.table(
        {
            "request_id": request_id,
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "tenant_id": tenant,
            "model_version": np.where(v2, "2024.2", "2024.1"),
            **cols,
            "predicted_value": predicted,
        }
    )
    cutoff = np.datetime64((now - LABEL_DELAY).replace(tzinfo=None), "us")
    late = ts < cutoff
    labels = pa.table({"request_id": request_id[late], "label": actual[late]})
    ref = draw(10_000, np.random.default_rng(seed + 1))
    ref_value = ref.pop("_value")
    ref["predicted_value"] = ref_value + np.random.default_rng(seed + 2).normal(0, 6.0, 10_000)
    ref["label"] = ref_value
    return inferences, labels, pa.table(ref)


def built(services: Services) -> bool:
    """Whether a build finished in these services: its last step, the demo users, is done.
    An interrupted build (Ctrl-C during the backfills, a refused webhook URL) has registered
    the models already, which ``demo build`` took for a finished demo: it said "already
    built" and served one without monitors or alerts. Building again completes it and, the
    build being idempotent, stores nothing twice."""
    from storage.metadata.users import UserStore

    return UserStore(services.metadata).get(DEMO_USERS[-1][0]) is not None


def build(
    services: Services,
    *,
    now: datetime | None = None,
    days: int = DAYS,
    scale: float = 1.0,
    webhook_url: str | None = f"http://127.0.0.1:{WEBHOOK_PORT}/hook",
    progress: Callable[[str], None] = lambda msg: None,
) -> ScenarioSummary:
    """Load the scenario into ``services`` and run monitors, KPIs and rules over it.

    The last two days run as scheduled runs (so their alerts notify the webhook channel);
    everything before is a backfill, which keeps alert state without paging.
    """
    from alerts.defaults import default_rules
    from monitor.accounts import Accounts
    from monitor.composition import of
    from monitor.monitors import default_monitors
    from storage.metadata import AlreadyExists

    t0 = time.perf_counter()
    now = (now or services.now()).replace(minute=0, second=0, microsecond=0)
    today = now.replace(hour=0)
    caller = Caller.local()
    out = ScenarioSummary()

    progress("generating traffic")
    c_inf, c_lab, c_ev, c_ref = churn_traffic(now, days, scale)
    b_inf, b_lab, b_ref = basket_traffic(now, days, scale)
    for spec, inf, lab, ref in [
        (CHURN_MODEL, c_inf, c_lab, c_ref),
        (BASKET_MODEL, b_inf, b_lab, b_ref),
    ]:
        if services.metadata.get_model(spec.name) is None:
            services.register_model(spec, caller)
        progress(f"ingesting {inf.num_rows:,} {spec.name} rows and {lab.num_rows:,} labels")
        s = services.ingest_inferences(spec.name, ParsedBody(table=inf), caller)
        services.ingest_labels(spec.name, ParsedBody(table=lab), caller)
        if not services.logstore.list_references(spec.name):
            services.put_reference(spec.name, "training", ParsedBody(table=ref), caller)
        out.rows[spec.name] = s.accepted + s.duplicates
    progress(f"ingesting {c_ev.num_rows:,} business events")
    out.events = services.ingest_events(ParsedBody(table=c_ev), caller).accepted

    runtime = of(services).alerting
    if webhook_url and runtime.store.get_channel(CHANNEL) is None:
        _, out.webhook_secret = runtime.engine.create_channel(
            CHANNEL, "webhook", webhook_url, actor="demo"
        )
    channels = [CHANNEL] if webhook_url else []
    for spec in (CHURN_MODEL, BASKET_MODEL):
        delay = f"{LABEL_DELAY.days}d"
        for rule in default_rules(spec.name, spec.task, channels, label_delay=delay):
            runtime.engine.put_rule(rule.to_dict(), actor="demo")

    mon = of(services).monitors
    # Traffic starts ``days`` before this hour: the first whole day is the next one (a
    # partial first day would have too few rows: no_data, a missing-data alert).
    start = today - timedelta(days=days - 1)
    split = today - timedelta(days=2)
    for spec in (CHURN_MODEL, BASKET_MODEL):
        info = services.metadata.get_model(spec.name)
        assert info is not None
        for cfg in default_monitors(spec.name, info.schema, "training"):
            try:
                mon.create(cfg.to_json(), actor="demo")
            except Exception as exc:  # already there from an earlier build
                if "exists" not in str(exc):
                    raise
            out.monitors.append(cfg.name)
    for name in out.monitors:
        progress(f"backfilling {name}")
        mon.backfill(name, start, split)
        for d in range(2):
            mon.run(name, split + timedelta(days=d))

    kpis = of(services).kpis
    specs = [
        {
            "name": "conversion_rate",
            "description": "Share of sessions that end in a conversion.",
            "unit": "%",
            "direction": "higher",
            "window": "day",
            "formula": "rate(conversion, session)",
            "model": "churn",
            "target": CONVERSION_TARGET,
            "min_events": 50,
        },
        {
            "name": "retention_value",
            "description": "Value of the churn model's decisions: a caught churner is worth 50, "
            "a wasted offer costs 5, a kept customer 1, a missed churner costs 10.",
            "unit": "EUR",
            "direction": "higher",
            "window": "day",
            "formula": "business_value(tp=50, fp=-5, tn=1, fn=-10)",
            "model": "churn",
            "reference": "training",
            "outcomes": {
                "tp": "caught churners",
                "fp": "wasted offers",
                "tn": "kept customers",
                "fn": "missed churners",
            },
        },
    ]
    for kpi_spec in specs:
        try:
            kpis.create(kpi_spec, actor="demo")
        except Exception as exc:  # already there from an earlier build
            if "exists" not in str(exc):
                raise
    progress("computing KPIs")
    out.kpi_rows = kpis.compute(start, split)
    from storage.reads import results_between

    backlog = results_between(services.metadata, start=start, end=split, source="kpi")
    runtime.process(backlog, notify=False)
    out.kpi_rows += kpis.compute(split, today)
    recent = results_between(services.metadata, start=split, end=today, source="kpi")
    runtime.process(recent, notify=True)

    accounts = Accounts(services.metadata)
    for username, role, tenants in DEMO_USERS:
        with contextlib.suppress(AlreadyExists):
            accounts.create(username, DEMO_PASSWORD, role, tenants, actor="demo")
    out.alerts = runtime.store.state_counts()
    out.seconds = time.perf_counter() - t0
    return out
