"""docs/scale-out.md followed as a user would, end to end: an embedded server computes drift
from its own store; ``driftwatch lake export`` moves the logs into a lake; a second server with
the same model, reference and monitor but *no rows* gets its profiles from the Spark engine,
run with the documented ``spark-submit`` command (``--master local[2]``), and its drift results
and the dashboard's read models (heatmap, feature statistic, breakdown, distribution chart) are the
embedded server's, value for value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.client import Client
from monitor.timerange import TimeRange
from tests.api.conftest import make_keys, make_settings
from tests.storage.test_lake_mirror import rows
from tests.support import live_server

pytest.importorskip("pyspark")

ROOT = Path(__file__).resolve().parents[2]
MODEL = {
    "name": "churn",
    "task": "binary",
    "features": [
        {"name": "x", "kind": "numeric"},
        {"name": "plan", "kind": "categorical"},
    ],
    "prediction": "prediction",
    "scores": ["score"],
}
MONITOR = {
    "name": "fd",
    "model": "churn",
    "kind": "feature_drift",
    "reference": {"dataset": "base"},
    "window": "day",
    "columns": ["x", "plan"],
}
WINDOWS = ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z")


def _setup(c: Client) -> None:
    c.register_model(MODEL)
    ref = rows("ref", 1500, 40).drop_columns(["request_id", "ts", "tenant_id", "model_version"])
    c.upload_reference("churn", "base", ref)
    c.request("POST", "/monitors", json=MONITOR)


def _results(c: Client) -> list[tuple]:
    for start in WINDOWS:
        c.request("POST", "/monitors/fd/run", json={"window_start": start})
    got = c.request("GET", "/results", params={"monitor": "fd", "tenant_id": "*", "limit": 1000})
    return sorted(
        (r["window_start"], r["tenant_id"], r["column"], r["metric"], r["value"], r["status"])
        for r in got["items"]
    )


def _dashboard(services: object) -> tuple:
    """What the model page and the feature page show: the drift heatmap, the feature's
    statistic over time, the per-tenant breakdown and the distribution chart (drawn from the
    hourly profiles, which the lake-fed server got from the Spark job: it holds no raw row)."""
    from monitor import queries

    span = TimeRange(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    mv = queries.model_view(services, None, "churn", "*", span)  # type: ignore[arg-type]
    fv = queries.feature_view(
        services,  # type: ignore[arg-type]
        None,
        "churn",
        "x",
        "*",
        span,
        window=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert mv is not None and fv is not None
    breakdown = sorted((b.tenant_id, b.column, b.metric, b.value, b.status) for b in fv.breakdown)
    assert mv.heatmap.z and fv.statistic and breakdown and fv.distribution is not None
    return mv.heatmap, fv.statistic, breakdown, fv.distribution


# JIT and GC for jobs of seconds: C2's compiler threads cost more CPU than they save here
SMALL_DATA_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def spark_submit_command(lake: Path, url: str, key: str) -> list[str]:
    """The local ``spark-submit`` command of docs/scale-out.md, word for word (the venv
    active: pyspark from PyPI ships spark-submit beside its python)."""
    venv_bin = Path(sys.executable).parent
    cli = ROOT / "monitor" / "cli.py"
    return [
        str(venv_bin / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        str(cli),
        "profile",
        "--engine",
        "spark",
        "--master",
        "",
        "--lake",
        str(lake),
        "--model",
        "churn",
        "--url",
        url,
        "--api-key",
        key,
    ]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # spark-submit's JVM: ~11 s on a quiet machine, minutes at load 15
def test_embedded_to_lake_to_spark_submit_gives_the_same_drift_results(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    embedded = make_settings(tmp_path / "a", scheduler_enabled=False)
    with live_server(embedded) as live:
        keys = make_keys(live)
        with Client(f"{live.url}", keys.engineer) as c:
            _setup(c)
            for b in range(4):
                c.log_inferences("churn", rows(f"b{b}", 600, b))
            want = _results(c)
        want_dash = _dashboard(live.services)
    assert len(want) > 20 and {r[5] for r in want} <= {"ok", "warn", "alert"}

    # "Moving an embedded store into a lake": the server is stopped, then
    out = CliRunner().invoke(
        app,
        [
            *("lake", "export", "--model", "churn", "--lake", str(lake), "--quiet"),
            *("--data-dir", str(embedded.data_dir)),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "inferences: 2,400 rows in 3 files" in out.output

    lake_fed = make_settings(tmp_path / "b", scheduler_enabled=False)
    with live_server(lake_fed) as live:
        keys = make_keys(live)
        with Client(f"{live.url}", keys.engineer) as c:
            _setup(c)
            assert c.get_model("churn")["rows"] == 0  # this server holds no rows at all
            # the venv active, as the docs assume (pip's spark-submit finds SPARK_HOME by it)
            venv_bin = str(Path(sys.executable).parent)
            path = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
            # SPARK_LOCAL_IP: the driver listens on loopback only, as every test server does
            # SPARK_SUBMIT_OPTS: spark-class adds it to the driver JVM (the command stays the
            # documented one); C1 only and the serial GC, as the tests' session (small data)
            env = {
                **os.environ,
                "PATH": path,
                "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_SUBMIT_OPTS": os.environ.get("SPARK_SUBMIT_OPTS", SMALL_DATA_JVM),
            }
            cmd = spark_submit_command(lake, live.url, keys.engineer)
            proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=900)
            assert proc.returncode == 0, proc.stderr.decode()[-3000:]
            report = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            assert report["dates"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
            assert report["engine"] == "spark"
            got = _results(c)
        got_dash = _dashboard(live.services)
    assert got == want
    assert got_dash == want_dash  # the same dashboard
