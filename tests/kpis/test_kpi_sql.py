"""storage.kpi_sql against an independent numpy computation on the same rows, windows aligned
to UTC days, hours and Monday weeks, and the business value (realized and CBPE-estimated)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from detectors.estimation import BinaryCBPE
from monitor.kpis.compute import KpiComputer, align, windows_between
from monitor.kpis.definition import KpiDefinition
from storage.kpi_sql import EventMeasure, KpiQueries, KpiQueryError, LogMeasure, window_start
from storage.logstore import LogStore
from storage.types import FeatureSpec, ModelSchema

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SCHEMA = ModelSchema("binary", (FeatureSpec("age", "numeric"),), scores=("score",))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    s = LogStore(tmp_path / "k.duckdb")
    yield s
    s.close()


def _events(n: int = 20_000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ts = int(T0.timestamp() * 1e6) + rng.integers(0, 21 * 86_400_000_000, n)
    value = rng.gamma(2.0, 5.0, n)
    value[rng.random(n) < 0.05] = np.nan  # some events without a value
    return pa.table(
        {
            "event_id": pa.array([f"e{i}" for i in range(n)]),
            "tenant_id": pa.array(rng.choice(["a", "b", "c"], n)),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "name": pa.array(rng.choice(["visit", "buy", "latency", "other"], n)),
            "value": pa.array(value, mask=np.isnan(value)),
        }
    )


def test_windows_align_to_utc_days_hours_and_monday_weeks() -> None:
    ts = datetime(2026, 3, 5, 13, 45, tzinfo=UTC)  # Thursday
    assert align(ts, "hour") == datetime(2026, 3, 5, 13, tzinfo=UTC)
    assert align(ts, "day") == datetime(2026, 3, 5, tzinfo=UTC)
    assert align(ts, "week") == datetime(2026, 3, 2, tzinfo=UTC)
    assert window_start("week", 0).weekday() == 0
    assert windows_between(ts, ts + timedelta(days=2), "day") == [
        datetime(2026, 3, 5, tzinfo=UTC),
        datetime(2026, 3, 6, tzinfo=UTC),
    ]


@pytest.mark.parametrize("window", ["day", "week", "hour"])
def test_event_measures_equal_numpy(store: LogStore, window: str) -> None:
    table = _events()
    store.append_events(table)
    measures = [
        EventMeasure("n", "count", "visit"),
        EventMeasure("s", "sum", "buy"),
        EventMeasure("m", "mean", "buy"),
        EventMeasure("p95", "percentile", "latency", q=0.95),
        EventMeasure("p50", "percentile", "latency", q=0.5),
        EventMeasure("r", "rate", "buy", denominator="visit"),
    ]
    start, end = T0 + timedelta(days=2), T0 + timedelta(days=16)
    got = KpiQueries(store).event_measures(measures, window, start, end)
    d = table.to_pydict()
    ts = np.array([t for t in d["ts"]])
    keep = (ts >= start) & (ts < end)
    tenant = np.array(d["tenant_id"])[keep]
    name = np.array(d["name"])[keep]
    val = np.array([np.nan if v is None else v for v in d["value"]])[keep]
    win = np.array([align(t, window) for t in ts[keep]])
    for key, m in ((m.key, m) for m in measures):
        cells = got[key]
        seen = {
            (t, w): k
            for k, (t, w) in enumerate(zip(cells.tenant_id, cells.window_start, strict=True))
        }
        for t in ("a", "b", "c"):
            for w in sorted(set(win)):
                sel = (tenant == t) & (win == w)
                own = sel & (name == m.event)
                vals = val[own][np.isfinite(val[own])]
                if m.func == "count":
                    want, support = float(own.sum()), int(own.sum())
                elif m.func == "rate":
                    den = int((sel & (name == m.denominator)).sum())
                    want, support = (own.sum() / den if den else np.nan), den
                elif not vals.size:
                    want, support = np.nan, 0
                elif m.func == "sum":
                    want, support = float(vals.sum()), vals.size
                elif m.func == "mean":
                    want, support = float(vals.mean()), vals.size
                else:
                    want, support = float(np.quantile(vals, m.q)), vals.size
                k = seen[(t, w)]
                assert int(cells.support[k]) == support, (key, t, w)
                if support == 0 and m.func != "count":
                    assert np.isnan(cells.value[k])  # undefined, judged no_data
                else:
                    assert cells.value[k] == pytest.approx(want, rel=1e-9), (key, t, w)


def test_log_measures_equal_numpy(store: LogStore) -> None:
    rng = np.random.default_rng(1)
    n = 5_000
    store.ensure_model("churn", SCHEMA)
    ts = int(T0.timestamp() * 1e6) + rng.integers(0, 3 * 86_400_000_000, n)
    score = rng.random(n)
    pred = (score > 0.5).astype(np.int32)
    tenant = rng.choice(["a", "b"], n)
    store.append_inferences(
        "churn",
        pa.table(
            {
                "request_id": pa.array([f"r{i}" for i in range(n)]),
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "tenant_id": pa.array(tenant),
                "model_version": pa.array(["v1"] * n),
                "age": pa.array(rng.normal(40, 10, n)),
                "prediction": pa.array(pred),
                "score": pa.array(score),
            }
        ),
    )
    labelled = rng.random(n) < 0.6
    label = (rng.random(n) < score).astype(np.int32)
    store.append_labels(
        "churn",
        pa.table(
            {
                "request_id": pa.array([f"r{i}" for i in np.flatnonzero(labelled)]),
                "label": pa.array(label[labelled]),
                "ts": pa.array(ts[labelled], pa.timestamp("us", tz="UTC")),
            }
        ),
    )
    q = KpiQueries(store)
    measures = [
        LogMeasure("score", "mean", "churn", "score"),
        LogMeasure("pos", "positive_rate", "churn", "prediction", 1),
        LogMeasure("acc", "label_rate", "churn", "prediction", 1),
        LogMeasure("cm", "confusion", "churn", "prediction", 1),
    ]
    got = q.log_measures(measures, "day", T0, T0 + timedelta(days=3))
    day = (ts - int(T0.timestamp() * 1e6)) // 86_400_000_000
    for k in range(len(got["score"])):
        t, w = got["score"].tenant_id[k], got["score"].window_start[k]
        sel = (tenant == t) & (day == (w - T0).days)
        assert got["score"].value[k] == pytest.approx(score[sel].mean())
        assert got["pos"].value[k] == pytest.approx(pred[sel].mean())
        lab = sel & labelled
        assert got["acc"].value[k] == pytest.approx(label[lab].mean())
        assert got["acc"].support[k] == lab.sum()
        cm = got["cm"].extra
        assert cm["tp"][k] == (lab & (pred == 1) & (label == 1)).sum()
        assert cm["fp"][k] == (lab & (pred == 1) & (label == 0)).sum()
        assert cm["tn"][k] == (lab & (pred == 0) & (label == 0)).sum()
        assert cm["fn"][k] == (lab & (pred == 0) & (label == 1)).sum()
        assert cm["unlabelled"][k] == (sel & ~labelled).sum()
    with pytest.raises(KpiQueryError, match="no column 'nope'"):
        q.log_measures(
            [LogMeasure("x", "mean", "churn", "nope")], "day", T0, T0 + timedelta(days=1)
        )
    with pytest.raises(KpiQueryError, match="no log tables"):
        q.log_measures([LogMeasure("x", "mean", "ghost", "a")], "day", T0, T0 + timedelta(days=1))

    # business value: realized on labelled rows + CBPE expected confusion on the others
    ref_n = 4_000
    ref_score = rng.random(ref_n)
    store.put_reference(
        "churn",
        "base",
        pa.table(
            {
                "request_id": pa.array([f"x{i}" for i in range(ref_n)]),
                "ts": pa.array(np.full(ref_n, ts[0]), pa.timestamp("us", tz="UTC")),
                "tenant_id": pa.array(["a"] * ref_n),
                "model_version": pa.array(["v1"] * ref_n),
                "prediction": pa.array((ref_score > 0.5).astype(np.int32)),
                "score": pa.array(ref_score),
                "label": pa.array((rng.random(ref_n) < ref_score).astype(np.int32)),
            }
        ),
    )
    value = {"tp": 40.0, "fp": -5.0, "tn": 0.0, "fn": -20.0}
    defn = KpiDefinition.model_validate(
        {
            "name": "value",
            "formula": "business_value(tp=40, fp=-5, fn=-20)",
            "model": "churn",
            "reference": "base",
            "min_events": 1,
            "checks": [],
        }
    )
    rows = KpiComputer(q, lambda m: SCHEMA).compute([defn], T0, T0 + timedelta(days=3))
    cbpe = BinaryCBPE().fit(
        ref_score,
        (store.read_reference("churn", "base").column("label").to_numpy()),
        ref_score > 0.5,
    )
    for r in rows:
        sel = (tenant == r.tenant_id) & (day == (r.window_start - T0).days)
        lab, unl = sel & labelled, sel & ~labelled
        realized = sum(
            value[k] * int(m.sum())
            for k, m in {
                "tp": lab & (pred == 1) & (label == 1),
                "fp": lab & (pred == 1) & (label == 0),
                "tn": lab & (pred == 0) & (label == 0),
                "fn": lab & (pred == 0) & (label == 1),
            }.items()
        )
        e = cbpe.estimate(score[unl], pred[unl]).confusion
        expected = value["tp"] * e.tp + value["fp"] * e.fp + value["fn"] * e.fn
        assert r.value == pytest.approx(realized + expected, rel=1e-6)
        assert r.details["value_basis"] == "mixed"
        assert r.details["unlabelled"] == int(unl.sum())
