"""Every monitor kind on a lake-fed model gives the embedded model's results (issue 16 item 7).

One app (in process: no scheduler evaluates the monitors behind the test's back), two models
with the same rows, labels, reference and monitors: ``emb`` holds its rows in the embedded
store; ``lake`` has them in a Parquet lake (inference and label files) and gets its profiles,
bottom-k samples and label aggregates from ``driftwatch profile`` over HTTP (push format 2).
Every monitor kind (feature drift with a profile method, a sample-only method and segment
attribution, prediction drift, data quality with the operational metrics, realized performance,
CBPE, multivariate drift) is evaluated on the same window of both models: the results must be
the same (values within 1e-9 relative; the order of float additions differs), except where a
kind truly cannot, which must say why: ``roc_auc`` and ``pr_auc`` rank every labelled row's
score and have no mergeable form.

Control: the same comparison against a lake model whose label files were left out (its
performance and label coverage differ) fails, so the comparison can see a difference.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from detectors import multivariate
from monitor import cli_common
from monitor.cli import app
from monitor.composition import of
from monitor.monitors import parse_monitor
from tests.api.conftest import make_keys, make_settings
from tests.storage.test_lake_rows import write_labels
from tests.storage.test_profile_engines import T0, TS, logs, write_lake
from tests.support import in_process, shifted_clock

FEATURES = [
    {"name": "x", "kind": "numeric"},
    {"name": "k", "kind": "numeric"},
    {"name": "plan", "kind": "categorical", "segment": True},
    {"name": "mobile", "kind": "boolean"},
]
MONITORS: list[dict[str, Any]] = [
    {
        "name": "fd",
        "kind": "feature_drift",
        "columns": ["x", "k", "plan"],
        "methods": {"x": ["psi", "anderson"], "k": "psi", "plan": "chi2"},
        "segments": ["all", "tenant"],
    },
    {"name": "pd", "kind": "prediction_drift", "segments": ["all", "tenant"]},
    {"name": "dq", "kind": "data_quality", "segments": ["all", "tenant"]},
    {"name": "perf", "kind": "performance", "segments": ["all", "tenant"]},
    {"name": "cbpe", "kind": "estimated_performance", "segments": ["all", "tenant"]},
    {
        "name": "mv",
        "kind": "multivariate_drift",
        "columns": ["x", "k", "plan"],
        "segments": ["all", "tenant"],
    },
]
RANK = {"roc_auc", "pr_auc"}


def _rows(n: int, seed: int, **kw: Any) -> pa.Table:
    return logs(n, seed, **kw).drop_columns(["city"])


def _profile(url: str, key: str, lake: Path, model: str) -> dict:
    out = CliRunner().invoke(
        app,
        [
            *("profile", "--engine", "duckdb", "--lake", str(lake), "--model", model),
            *("--url", url, "--api-key", key, "--quiet"),
        ],
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout.strip().splitlines()[-1])


def _key(r: Any) -> tuple[str, str, str, str]:
    return (r.tenant_id, r.model_version, r.column, r.metric)


def _same(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences between two result values/details (floats within 1e-9 relative)."""
    if isinstance(a, float) and isinstance(b, float):
        ok = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return [] if ok else [f"{path}: {a} != {b}"]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _same(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _compare(emb: list[Any], lake: list[Any]) -> list[str]:
    got = {_key(r): r for r in lake}
    diffs = []
    for r in emb:
        other = got.pop(_key(r), None)
        if other is None:
            diffs.append(f"{_key(r)} missing in lake mode")
            continue
        if r.metric in RANK and r.column == "" and r.kind == "performance":
            if not (
                other.status == "no_data" and "ranks every labelled row" in other.details["reason"]
            ):
                diffs.append(f"{_key(r)}: lake result does not say why it cannot ({other})")
            continue
        if r.status != other.status:
            diffs.append(f"{_key(r)}: status {r.status} != {other.status}")
        diffs += _same(r.value, other.value, f"{_key(r)} value")
        diffs += _same(r.threshold, other.threshold, f"{_key(r)} threshold")
        diffs += _same(r.details, other.details, f"{_key(r)} details")
    diffs += [f"{k} only in lake mode" for k in got]
    return diffs


def test_every_monitor_kind_gives_the_embedded_results_on_a_lake_fed_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}")
    lake = tmp_path / "lake"
    first = _rows(4000, 31)
    late = _rows(300, 32, start=T0 + timedelta(days=1), days=1, prefix="late")
    rows = pa.concat_tables([first, late])
    ref = _rows(2000, 33).drop_columns(["request_id", "ts", "tenant_id", "model_version"])
    ref = ref.append_column("label", ref.column("prediction"))
    # labels received two days after T0 (the server's clock) for 60% of the rows
    picked = rows.filter(pa.array([i % 5 < 3 for i in range(rows.num_rows)]))
    labels = pa.table(
        {
            "request_id": picked.column("request_id"),
            "label": pa.array(
                [
                    (p + (i % 4 == 0)) % 2
                    for i, p in enumerate(picked.column("prediction").to_pylist())
                ],
                pa.int64(),
            ),
            "ts": picked.column("ts"),
            "tenant_id": picked.column("tenant_id"),
        }
    )
    # the multivariate monitor's domain classifier with 10 boosting rounds, not 100: the test
    # compares its results on both models (the same rows must give the same AUC, importances
    # and verdict), not its power; 16 windows x 5 folds were half of the test's CPU
    small = functools.partial(multivariate.DomainClassifier, max_iter=10)
    monkeypatch.setattr(multivariate, "DomainClassifier", small)
    with in_process(settings, shifted_clock(T0 + timedelta(days=3, hours=5))) as live:
        monkeypatch.setattr(cli_common, "TRANSPORT", live.transport)  # `--url` reaches the app
        keys = make_keys(live)
        with live.http(keys.engineer, timeout=120) as c:
            sink = pa.BufferOutputStream()
            pq.write_table(ref, sink)
            for model in ("emb", "lake"):
                body = {
                    "name": model,
                    "task": "binary",
                    "features": FEATURES,
                    "prediction": "prediction",
                    "scores": ["score"],
                }
                assert c.post("/models", json=body).status_code == 201
                r = c.put(
                    f"/models/{model}/references/base",
                    content=sink.getvalue().to_pybytes(),
                    headers={"Content-Type": "application/vnd.apache.parquet"},
                )
                assert r.status_code == 200, r.text
                for m in MONITORS:
                    body = {
                        **m,
                        "name": f"{model}-{m['name']}",
                        "model": model,
                        "reference": {"dataset": "base"},
                        "window": "day",
                        "min_rows": 20,
                    }
                    r = c.post("/monitors", json=body)
                    assert r.status_code == 201, r.text
            spec = c.get("/models/lake/profile-spec").json()
            assert spec["format"] == 2 and spec["sample"]["k"] == 5000 and spec["labels"]

            ls = live.services.logstore
            ls.append_inferences("emb", rows)
            ls.append_labels("emb", labels)
            with ls.reader() as cur:
                stored = cur.sql(
                    'SELECT request_id, label, ts, received_at, tenant_id FROM "labels__emb"'
                ).to_arrow_table()
            write_lake(lake, "lake", first, "part-0")
            write_lake(lake, "lake", late, "part-late")
            write_labels(
                lake,
                "lake",
                stored.cast(
                    pa.schema(
                        [
                            ("request_id", pa.string()),
                            ("label", pa.int64()),
                            ("ts", TS),
                            ("received_at", TS),
                            ("tenant_id", pa.string()),
                        ]
                    )
                ),
                "labels-0",
            )
            report = _profile(live.url, keys.engineer, lake, "lake")
            assert len(report["dates"]) == 3

            runner = of(live.services).monitors.runner
            store = runner.store
            # the scheduler has profiled every day of the embedded model, as the job has the lake's
            runner.profiles.ensure("emb", T0, T0 + timedelta(days=3))

            def evaluate(model: str, name: str) -> list[Any]:
                record = store.get_monitor(f"{model}-{name}")
                assert record is not None
                ws = T0 + timedelta(days=1)
                results, _ = runner.evaluate(
                    record, parse_monitor(record.config), ws, ws + timedelta(days=1)
                )
                return results

            for m in MONITORS:
                emb, lk = evaluate("emb", m["name"]), evaluate("lake", m["name"])
                assert emb and any(r.status != "no_data" for r in emb), m["name"]
                diffs = _compare(emb, lk)
                assert diffs == [], (m["name"], diffs[:8])
                if m["name"] == "fd":  # the sample-only method and attribution ran
                    assert any(r.metric == "anderson" and r.status != "no_data" for r in lk)

            _same_distribution_chart(live.services, c, rows)

            # control: without its label files the lake model's performance differs
            for f in (lake / "labels").rglob("*.parquet"):
                f.unlink()
            assert _profile(live.url, keys.engineer, lake, "lake")["dates"]
            assert _compare(evaluate("emb", "perf"), evaluate("lake", "perf")) != []


def _same_distribution_chart(services: Any, c: httpx.Client, rows: pa.Table) -> None:
    """The feature page's distribution chart of the lake-fed model (no raw rows on the server)
    has the embedded model's bars, drawn from the hourly profiles, and they are the window's
    rows counted on the reference's right-closed bin edges independently (numpy)."""
    from dashboard import figures
    from monitor import queries
    from monitor.timerange import TimeRange

    ws = T0 + timedelta(days=1)
    for model in ("emb", "lake"):
        r = c.post(f"/monitors/{model}-fd/run", json={"window_start": ws.isoformat()})
        assert r.status_code == 200, r.text
    span = TimeRange(T0, T0 + timedelta(days=3))
    in_window = pc.and_(
        pc.greater_equal(rows["ts"], ws), pc.less(rows["ts"], ws + timedelta(days=1))
    )
    for column in ("x", "k", "plan"):
        for tenant in ("*", "globex"):
            bars = {}
            for model in ("emb", "lake"):
                fv = queries.feature_view(services, None, model, column, tenant, span, window=ws)
                assert fv is not None and fv.window == ws and fv.distribution is not None, model
                fig = figures.distribution_overlay(fv.distribution)
                bars[model] = [(tuple(b.x), tuple(b.y)) for b in fig.data]
            assert bars["lake"] == bars["emb"], (column, tenant)
            d = queries.feature_view(services, None, "lake", column, tenant, span, window=ws)
            assert d is not None and d.distribution is not None
            if column == "x" and tenant == "*":  # the bars are the window's rows
                record = of(services).monitors.store.get_monitor("lake-fd")
                h = of(services).monitors.window_histograms(
                    "lake-fd", "x", "*", ws, ws + timedelta(days=1)
                )
                assert record is not None and h is not None
                x = rows.filter(in_window)["x"].drop_null().to_numpy(zero_copy_only=False)
                x = x[~np.isnan(x)]
                want = np.bincount(
                    np.searchsorted(h.edges, x, side="left"), minlength=len(h.edges) + 1
                )
                assert h.current == want.tolist()
                # the chart's bars: runs of the reference's bins (at most MAX_BARS of them),
                # each the window's rows counted on the bars' own edges
                bar_edges = d.distribution.edges
                assert bar_edges is not None and set(bar_edges) <= set(h.edges)
                assert (bar_edges[0], bar_edges[-1]) == (h.edges[0], h.edges[-1])
                assert len(h.edges) + 1 > queries.feature.MAX_BARS >= len(bar_edges) + 1
                bars_want = np.bincount(
                    np.searchsorted(bar_edges, x, side="left"), minlength=len(bar_edges) + 1
                )
                assert d.distribution.current == pytest.approx(
                    (bars_want / bars_want.sum()).tolist(), abs=1e-15
                )
                assert (
                    d.distribution.labels[0].startswith("≤")
                    and len(d.distribution.labels) == len(bar_edges) + 1
                )
    # control: the raw-row chart (the feature page before) has nothing to draw for the lake model
    for column in ("x", "plan"):
        assert (
            queries.logged_distribution(
                services, "lake", column, "*", ws, ws + timedelta(days=1), {"dataset": "base"}
            )
            is None
        )
        assert (
            queries.logged_distribution(
                services, "emb", column, "*", ws, ws + timedelta(days=1), {"dataset": "base"}
            )
            is not None
        )
