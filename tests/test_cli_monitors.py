"""driftwatch init / apply [--dry-run] / run / backfill on a local data dir (typer's runner)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.schemas import ModelIn
from monitor.service import Caller, Services
from monitor.settings import Settings
from storage.metadata.monitoring import MonitoringStore, ResultQuery

runner = CliRunner()
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def seed_churn(services: Services) -> None:
    """The model ``churn`` (one feature, ``age``) with 3,000 inferences of two tenants over
    the three days from ``T0`` and the reference ``train``."""
    services.register_model(
        ModelIn.model_validate(
            {
                "name": "churn",
                "task": "binary",
                "features": [{"name": "age", "kind": "numeric"}],
                "scores": ["score"],
            }
        ),
        Caller.local(),
    )
    rng = np.random.default_rng(0)
    n = 3000
    secs = rng.uniform(0, 3 * 86400, n)
    services.logstore.append_inferences(
        "churn",
        pa.table(
            {
                "request_id": [f"r{i}" for i in range(n)],
                "ts": pa.array(
                    [T0 + timedelta(seconds=float(s)) for s in secs],
                    pa.timestamp("us", tz="UTC"),
                ),
                "tenant_id": rng.choice(["acme", "globex"], n),
                "age": rng.normal(40, 10, n),
                "prediction": pa.array(rng.integers(0, 2, n), pa.int32()),
                "score": rng.random(n),
            }
        ),
    )
    services.logstore.put_reference("churn", "train", pa.table({"age": rng.normal(40, 10, 2000)}))


def _prepare(data_dir: Path) -> None:
    services = Services.open(Settings(data_dir=data_dir))
    try:
        seed_churn(services)
    finally:
        services.close()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_apply_dry_run_backfill_and_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _prepare(data)
    proposal = yaml.safe_load(invoke("init", "churn", "--data-dir", str(data)))
    names = [m["name"] for m in proposal["monitors"]]
    assert "churn-feature-drift" in names
    assert proposal["monitors"][0]["reference"] == {"dataset": "train"}
    assert proposal.get("rules"), "default alert rules from alerts.defaults"
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump({"monitors": proposal["monitors"][:1]}))

    out = invoke("apply", "-f", str(path), "--dry-run", "--data-dir", str(data))
    assert "would create monitor churn-feature-drift" in out
    # the whole proposal (monitors and alert rules) applies as it is
    whole = tmp_path / "all.yaml"
    whole.write_text(yaml.safe_dump(proposal))
    out = invoke("apply", "-f", str(whole), "--dry-run", "--data-dir", str(data))
    assert "would create rule churn-performance" in out
    invoke("apply", "-f", str(path), "--data-dir", str(data))
    changed = dict(proposal["monitors"][0], alpha=0.01)
    path.write_text(yaml.safe_dump({"monitors": [changed]}))
    out = invoke("apply", "-f", str(path), "--dry-run", "--data-dir", str(data))
    assert "would update monitor churn-feature-drift" in out and "alpha: 0.05 -> 0.01" in out

    invoke(
        "backfill",
        "--from",
        "2026-02-01",
        "--to",
        "2026-02-04",
        "-m",
        "churn-feature-drift",
        "-q",
        "--data-dir",
        str(data),
    )
    answer = json.loads(
        invoke(
            "run",
            "--monitor",
            "churn-feature-drift",
            "--window",
            "2026-02-02T13:00",
            "--data-dir",
            str(data),
        )
    )
    assert answer["status"] == "ok" and answer["window_start"].startswith("2026-02-02T00:00")

    services = Services.open(Settings(data_dir=data))
    try:
        ms = MonitoringStore(services.metadata)
        runs, total = ms.list_runs(monitor="churn-feature-drift")
        assert total == 4 and sorted(r.trigger for r in runs) == ["backfill"] * 3 + ["manual"]
        results, n = ms.query_results(ResultQuery(source_name="churn-feature-drift", column="age"))
        # three windows x (all + 2 tenants); the re-run replaced its window's rows
        assert n == 9 and len({(r.window_start, r.tenant_id) for r in results}) == 9
    finally:
        services.close()


def test_apply_refuses_a_bad_file_naming_the_field(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _prepare(data)
    path = tmp_path / "monitors.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "monitors": [
                    {
                        "name": "x",
                        "model": "churn",
                        "kind": "feature_drift",
                        "reference": "train",
                        "window": "fortnight",
                    }
                ]
            }
        )
    )
    result = runner.invoke(app, ["apply", "-f", str(path), "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "window" in result.output and "month or Nd" in result.output
