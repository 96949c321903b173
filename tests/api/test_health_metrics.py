"""Model health on ``/api/v1/metrics``: the newest value, threshold and status of every monitor
metric and KPI per tenant, within the documented cardinality bounds, read back with
``prometheus_client``'s parser (an independent reader of the text format); and the Grafana
dashboard shipped in ``docs/grafana/`` charts only names the endpoint exports."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.health_metrics import FAMILY_NAMES, Bounds, families
from storage.metadata.monitoring import MonitoringStore
from storage.types import MetricResult
from tests.api.conftest import make_settings
from tests.support import in_process

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "docs" / "grafana" / "driftwatch.json"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def res(
    tenant: str,
    status: str,
    value: float | None = 0.3,
    *,
    day: int = 0,
    source: str = "monitor",
    name: str = "churn-drift",
    kind: str = "feature_drift",
    column: str = "age",
    metric: str = "psi",
    threshold: float | None = 0.2,
    version: str = "*",
) -> MetricResult:
    start = T0 + timedelta(days=day)
    return MetricResult(
        source=source,  # type: ignore[arg-type]
        source_name=name,
        kind=kind,
        model="churn",
        window_start=start,
        window_end=start + timedelta(days=1),
        tenant_id=tenant,
        model_version=version,
        column=column,
        metric=metric,
        value=value,
        threshold=threshold,
        status=status,  # type: ignore[arg-type]
    )


def samples(fams: list, name: str) -> dict[tuple, float]:
    (fam,) = [f for f in fams if f.name == name]
    return {tuple(sorted(labels.items())): v for _n, labels, v in fam.samples}


def test_bounds_keep_the_worst_tenants_and_count_every_tenant() -> None:
    rows = [res("*", "alert", 0.5)] + [
        res(f"t{i}", status, 0.1 * i)
        for i, status in enumerate(["ok", "alert", "warn", "ok", "no_data", "alert"])
    ]
    rows.append(res("t1", "alert", 9.0, version="v2"))  # per version: never exported
    fams = families(rows, Bounds(max_tenants=3, max_series=100))
    status = samples(fams, "driftwatch_monitor_status")
    tenants = {dict(k)["tenant"] for k in status}
    assert tenants == {"*", "t1", "t5", "t2"}  # all tenants + the 3 worst (alert, alert, warn)
    assert status[tuple(sorted({**dict(next(iter(status))), "tenant": "t2"}.items()))] == 1.0
    counts = samples(fams, "driftwatch_monitor_tenants")
    by_status = {dict(k)["status"]: v for k, v in counts.items()}
    assert by_status == {"alert": 2, "warn": 1, "ok": 2, "no_data": 1}  # all six tenants
    dropped = samples(fams, "driftwatch_health_series_dropped")
    assert dropped[(("family", "driftwatch_monitor"),)] == 3
    values = samples(fams, "driftwatch_monitor_value")
    assert 9.0 not in values.values()
    # the series bound drops the least severe per-tenant label sets first
    fams = families(rows, Bounds(max_tenants=10, max_series=4))
    kept = {dict(k)["tenant"] for k in samples(fams, "driftwatch_monitor_status")}
    assert kept == {"*", "t1", "t5", "t2"}
    assert (
        samples(fams, "driftwatch_health_series_dropped")[(("family", "driftwatch_monitor"),)] == 3
    )


def test_missing_values_have_no_sample_and_status_codes_are_documented() -> None:
    fams = families([res("acme", "no_data", None, threshold=None)], Bounds())
    assert samples(fams, "driftwatch_monitor_value") == {}
    assert samples(fams, "driftwatch_monitor_threshold") == {}
    assert list(samples(fams, "driftwatch_monitor_status").values()) == [-1.0]
    assert {f.name for f in fams} == set(FAMILY_NAMES)


@pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
def test_the_endpoint_exports_the_newest_results_and_the_grafana_dashboard_uses_them(
    tmp_path: Path, metadata_url: str
) -> None:
    settings = make_settings(tmp_path, metadata_url, metrics_max_tenants=2)
    with in_process(settings) as live:
        live.services.metadata.ensure_tenants(["acme", "globex", "initech"])
        store = MonitoringStore(live.services.metadata)
        old = [res(t, "ok", 0.05) for t in ("*", "acme", "globex", "initech")]
        new = [
            res("*", "alert", 0.31, day=1),
            res("acme", "ok", 0.04, day=1),
            res("globex", "alert", 0.62, day=1),
            res("initech", "warn", 0.18, day=1),
            res("globex", "alert", 0.71, day=1, column="discount_rate"),
            res(
                "globex",
                "ok",
                0.81,
                day=1,
                kind="performance",
                name="churn-perf",
                column="",
                metric="roc_auc",
                threshold=0.7,
            ),
        ]
        kpi = [
            res(
                t,
                s,
                v,
                day=1,
                source="kpi",
                name="conversion_rate",
                kind="kpi",
                column="",
                metric="conversion_rate",
                threshold=0.25,
            )
            for t, s, v in (("acme", "ok", 0.34), ("globex", "alert", 0.227))
        ]
        kpi.append(replace(kpi[1], metric="shift", value=-0.31, threshold=-0.1))
        store.save_results(old)
        store.save_results(new)
        store.save_results(kpi)
        with live.http() as anon:
            text = anon.get("/metrics").text
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    got: dict[str, dict[tuple, float]] = {
        name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
        for name, f in parsed.items()
    }
    value = got["driftwatch_monitor_value"]
    key = {
        "model": "churn",
        "monitor": "churn-drift",
        "kind": "feature_drift",
        "column": "age",
        "metric": "psi",
    }
    assert value[tuple(sorted({**key, "tenant": "globex"}.items()))] == 0.62  # the newest window
    assert value[tuple(sorted({**key, "tenant": "*"}.items()))] == 0.31
    # metrics_max_tenants=2: globex (alert) and initech (warn); acme (ok) only counted
    tenants = {dict(k)["tenant"] for k in got["driftwatch_monitor_status"]}
    assert tenants == {"*", "globex", "initech"}
    counts = got["driftwatch_monitor_tenants"]
    assert counts[tuple(sorted({**key, "status": "ok"}.items()))] == 1.0
    assert got["driftwatch_monitor_threshold"][tuple(sorted({**key, "tenant": "*"}.items()))] == 0.2
    kpis = got["driftwatch_kpi_value"]
    gk = {"kpi": "conversion_rate", "model": "churn", "tenant": "globex"}
    assert kpis[tuple(sorted({**gk, "check": "value"}.items()))] == 0.227
    assert kpis[tuple(sorted({**gk, "check": "shift"}.items()))] == -0.31
    assert got["driftwatch_kpi_threshold"][tuple(sorted({**gk, "check": "value"}.items()))] == 0.25
    assert got["driftwatch_kpi_status"][tuple(sorted({**gk, "check": "value"}.items()))] == 2.0
    ends = got["driftwatch_monitor_window_end_timestamp_seconds"]
    assert max(ends.values()) == (T0 + timedelta(days=2)).timestamp()

    # The Grafana dashboard: every metric its queries name is exported, with samples.
    dashboard = json.loads(GRAFANA.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    names = {n for e in exprs for n in re.findall(r"\bdriftwatch_[a-z_]+", e)}
    exported = {s.name for f in parsed.values() for s in f.samples} | set(parsed)
    assert names and names <= exported, names - exported
    for what in ("monitor", "kpi"):  # value, threshold and status of both are charted
        assert {f"driftwatch_{what}_{x}" for x in ("value", "threshold", "status")} <= names
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = {m for e in exprs for m in re.findall(r"\$(\w+)", e)}
    assert used <= variables
