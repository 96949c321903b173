"""KPIs through the real API: definitions, computation, tenant scope, and the must-show link
scenario — a feature drift for one tenant precedes its KPI drop: the related-signals API ranks
that feature's drift first, the model alert's related KPIs list the KPI, and an unrelated
tenant's KPIs are not listed.

The drift results are written directly through the monitoring store (as the monitor runner
would write them), so the scenario does not depend on drift statistics of generated logs.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.metadata.monitoring import MonitoringStore
from storage.types import MetricResult
from tests.api.conftest import Keys, client, make_keys, make_settings
from tests.kpis.conftest import seasonal_events
from tests.support import JARGON, PATIENCE_S, Live, live_server, wait_job

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 63
DRIFT_DAY = 47  # age drifts for acme from here on
DROP_DAY = 50  # acme's conversion falls 15 % from here on
KPI = {
    "name": "conversion_rate",
    "description": "Sessions that convert",
    "unit": "%",
    "direction": "higher",
    "target": 0.15,
    "formula": "rate(conversion, session)",
    "min_events": 100,
}


def _strings(node: Any) -> list[str]:
    """Every text in a JSON answer (keys are field names, not text)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    return []


def _day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


def _post_events(c: httpx.Client, table: pa.Table) -> None:
    # A request_id column (all null) is sent because ingest's event-id filler reads it even
    # when the body has event ids (reported to the ingest owner).
    table = table.append_column("request_id", pa.nulls(table.num_rows, pa.string()))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = c.post("/events", content=buf.getvalue(), headers={"Content-Type": "application/parquet"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == table.num_rows


def _drift_results(live: Live) -> None:
    rng = np.random.default_rng(1)
    rows: list[MetricResult] = []
    for day in range(DAYS):
        w = START + timedelta(days=day)
        for tenant in ("acme", "globex"):
            drifted = []
            for col in ("age", "plan", "mobile"):
                value = float(rng.uniform(0.01, 0.06))
                if tenant == "acme" and col == "age" and day >= DRIFT_DAY:
                    value = float(rng.uniform(0.3, 0.4))
                status = "alert" if value > 0.2 else "ok"
                if status == "alert":
                    drifted.append(col)
                rows.append(
                    _result(
                        "churn_drift", "feature_drift", w, tenant, col, "psi", value, 0.2, status
                    )
                )
            rows.append(
                _result(
                    "churn_drift",
                    "feature_drift",
                    w,
                    tenant,
                    "",
                    "drift_share",
                    len(drifted) / 3,
                    None,
                    "warn" if drifted else "ok",
                )
            )
            rows.append(
                _result(
                    "churn_perf",
                    "estimated_performance",
                    w,
                    tenant,
                    "",
                    "roc_auc",
                    float(rng.normal(0.8, 0.01)),
                    0.7,
                    "ok",
                )
            )
    MonitoringStore(live.services.metadata).save_results(rows)


def _result(
    monitor: str,
    kind: str,
    w: datetime,
    tenant: str,
    column: str,
    metric: str,
    value: float,
    threshold: float | None,
    status: str,
) -> MetricResult:
    return MetricResult(
        source="monitor",
        source_name=monitor,
        kind=kind,
        model="churn",
        window_start=w,
        window_end=w + timedelta(days=1),
        tenant_id=tenant,
        model_version="*",
        column=column,
        metric=metric,
        value=value,
        threshold=threshold,
        status=status,  # type: ignore[arg-type]
    )


def _scenario(live: Live, eng: httpx.Client) -> None:
    drops = {"acme": {d: 0.85 for d in range(DROP_DAY, DAYS)}}
    events = seasonal_events({"acme": (4000, 0.3), "globex": (4000, 0.3)}, days=DAYS, drops=drops)
    for start in range(0, events.num_rows, 400_000):
        _post_events(eng, events.slice(start, 400_000))
    _drift_results(live)
    r = eng.post("/kpis", json=KPI)
    assert r.status_code == 201, r.text
    r = eng.post("/kpis/conversion_rate/compute", params={"start": _day(0), "end": _day(DAYS)})
    assert r.status_code == 202, r.text
    job = wait_job(eng, r.json())
    assert job["state"] == "done" and job["result"]["results"] > 0


def test_feature_drift_precedes_kpi_drop_and_scoped_keys_see_their_tenant(
    live: Live, keys: Keys, eng: httpx.Client, churn: dict
) -> None:
    _scenario(live, eng)
    with client(live, keys.viewer) as viewer:
        series = viewer.get("/kpis/conversion_rate/results", params={"tenant_id": "acme"}).json()
        flagged = sorted(r["window_start"] for r in series if r["status"] == "alert")
        assert flagged and flagged[0] == _day(DROP_DAY)
        assert all(_day(DROP_DAY) <= w for w in flagged)
        # (the server's scheduler may also compute the windows from the last event to today)
        globex = viewer.get(
            "/kpis/conversion_rate/results",
            params={"tenant_id": "globex", "start": _day(0), "end": _day(DAYS)},
        ).json()
        assert len(globex) == DAYS and not [r for r in globex if r["status"] == "alert"]

        # KPI breach → ranked model signals: acme's age drift first
        r = viewer.get(
            "/tenants/acme/kpis/conversion_rate/related-signals",
            params={"window_start": _day(DROP_DAY + 2)},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert "not proof" in body["note"]
        top = body["signals"][0]
        assert (top["monitor"], top["column"], top["metric"]) == ("churn_drift", "age", "psi")
        assert top["breached"] == "alert" and top["breached_since"] == _day(DRIFT_DAY)
        assert top["correlation"] < -0.5
        # the default breach window is the latest flagged one
        assert viewer.get("/tenants/acme/kpis/conversion_rate/related-signals").status_code == 200

        # model alert (acme, since the drift began) → the tenant KPIs that moved
        r = viewer.get(
            "/tenants/acme/models/churn/related-kpis",
            params={
                "since": _day(DRIFT_DAY),
                "until": _day(DROP_DAY + 3),
                "monitor": "churn_drift",
                "column": "age",
                "metric": "psi",
            },
        )
        assert r.status_code == 200, r.text
        listed = r.json()["kpis"]
        assert [(k["kpi"], k["tenant_id"]) for k in listed] == [("conversion_rate", "acme")]
        assert listed[0]["status"] == "alert" and listed[0]["change"] < -0.05
        # the same windows for the unrelated tenant: nothing moved, nothing listed
        r = viewer.get(
            "/tenants/globex/models/churn/related-kpis",
            params={"since": _day(DRIFT_DAY), "until": _day(DROP_DAY + 3)},
        )
        assert r.status_code == 200 and r.json()["kpis"] == []

        # executive summary of acme in the drop
        r = viewer.get("/tenants/acme/kpis/summary", params={"at": _day(DROP_DAY)})
        tenant = r.json()["tenants"][0]
        kpi = tenant["kpis"][0]
        assert tenant["tenant_id"] == "acme" and tenant["status"] == "alert"
        assert kpi["status"] == "alert" and kpi["change"] < -0.1
        assert "Conversion rate for acme was" in kpi["sentence"] and "down" in kpi["sentence"]
        # the business headline: the last 7 days against before, in plain words
        head = kpi["headline"]
        assert head["tone"] == "bad" and head["level_windows"] == 7
        assert head["sentence"].startswith("Conversion rate averaged ")
        assert "Flagged in the latest day: unusual for this time of the week." in head["sentence"]
        assert tenant["models"] == [
            {
                "model": "churn",
                "health": "degraded",
                "window_start": _day(DROP_DAY),
                "alerts": 1,
                "warnings": 1,
                "reasons": ["the churn model's inputs changed (age)"],
            }
        ]
        assert kpi["sentence"].endswith("Flagged: unusual for this time of the week.")
        across = viewer.get("/kpis/summary", params={"at": _day(DROP_DAY)}).json()
        # the executive summary speaks plainly: no statistics in any text it answers (the
        # check messages said "robust z -7.8", the model reasons "feature_drift psi")
        texts = _strings(r.json()) + _strings(across)
        assert texts and not [t for t in texts if JARGON.search(t)], [
            t for t in texts if JARGON.search(t)
        ]
        assert {t["tenant_id"] for t in across["tenants"]} == {"acme", "globex"}
        assert across["across_tenants"][0]["counts"]["alert"] == 1

    # a key scoped to globex sees only globex
    with client(live, keys.globex) as globex:
        rows = globex.get("/kpis/conversion_rate/results").json()
        assert rows and {r["tenant_id"] for r in rows} == {"globex"}
        assert (
            globex.get("/kpis/conversion_rate/results", params={"tenant_id": "acme"}).status_code
            == 404
        )
        assert globex.get("/tenants/acme/kpis/conversion_rate/related-signals").status_code == 404
        assert globex.get("/tenants/acme/kpis/summary").status_code == 404
        assert globex.get("/tenants/acme/models/churn/related-kpis").status_code == 404
        summary = globex.get("/kpis/summary", params={"at": _day(DROP_DAY)}).json()
        assert [t["tenant_id"] for t in summary["tenants"]] == ["globex"]
        assert globex.get("/tenants/globex/kpis/summary").status_code == 200


def test_definitions_are_validated_and_versioned(
    live: Live, eng: httpx.Client, churn: dict
) -> None:
    r = eng.post("/kpis", json=dict(KPI, formula="rate(conversion session)"))
    assert r.status_code == 422
    assert r.json()["error"]["errors"][0]["loc"] == ["formula"]
    assert "column 17" in r.json()["error"]["message"]
    r = eng.post("/kpis", json={"name": "acceptance", "formula": "label_rate(label)"})
    assert r.status_code == 422 and "model" in r.json()["error"]["message"]
    r = eng.post("/kpis", json={"name": "bad", "formula": "mean(plan)", "model": "churn"})
    assert r.status_code == 422 and "numeric" in r.json()["error"]["message"]
    r = eng.post("/kpis", json={"name": "x", "formula": "count(a)", "checks": [{"type": "nope"}]})
    assert r.status_code == 422 and r.json()["error"]["errors"][0]["loc"][0] == "checks"

    assert eng.post("/kpis", json=KPI).status_code == 201
    assert eng.post("/kpis", json=KPI).status_code == 409
    r = eng.put("/kpis/conversion_rate", json=dict(KPI, target=0.2))
    assert r.status_code == 200 and r.json()["version"] == 2
    assert eng.put("/kpis/conversion_rate", json=dict(KPI, target=0.2)).json()["version"] == 2
    assert eng.get("/kpis").json()[0]["definition"]["target"] == 0.2
    score = {"name": "mean_score", "formula": "mean(score)", "model": "churn"}
    assert eng.post("/kpis", json=score).status_code == 201
    assert eng.delete("/kpis/conversion_rate").status_code == 204
    assert eng.get("/kpis/conversion_rate").status_code == 404
    assert [k["name"] for k in eng.get("/kpis").json()] == ["mean_score"]


def test_the_server_scheduler_computes_closed_kpi_windows(
    tmp_path: Path, metadata_url: str
) -> None:
    settings = make_settings(tmp_path, metadata_url, scheduler_tick_seconds=1)
    with live_server(settings) as live:
        keys = make_keys(live)
        yesterday = datetime.now(UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        ) - timedelta(days=1)
        rows = [
            {"tenant_id": "acme", "ts": (yesterday + timedelta(minutes=i)).isoformat(), "name": n}
            for i in range(60)
            for n in (["session", "conversion"] if i % 3 == 0 else ["session"])
        ]
        with client(live, keys.engineer) as eng:
            assert eng.post("/events", json=rows).status_code == 200
            assert eng.post("/kpis", json=dict(KPI, min_events=10)).status_code == 201
            deadline = time.monotonic() + PATIENCE_S  # the scheduler ticks each second
            found: list[dict] = []
            while time.monotonic() < deadline and not found:
                found = eng.get("/kpis/conversion_rate/results").json()
                time.sleep(0.5)
        assert [(r["tenant_id"], r["window_start"], r["status"]) for r in found] == [
            ("acme", yesterday.isoformat(), "ok")
        ]
        assert found[0]["value"] == pytest.approx(20 / 60)
