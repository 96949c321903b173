"""``driftwatch apply -f`` with a ``kpis:`` section and ``driftwatch kpis list|show|compute``
on a local data dir, in process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from typer.testing import CliRunner

from monitor.cli import app
from storage.logstore import LogStore
from tests.kpis.conftest import START, seasonal_events

runner = CliRunner()
KPIS = {
    "monitors": [],
    "kpis": [
        {
            "name": "conversion_rate",
            "description": "Sessions that convert",
            "unit": "%",
            "target": 0.2,
            "formula": "rate(conversion, session)",
            "min_events": 50,
        }
    ],
}


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_apply_compute_list_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    spec = tmp_path / "kpis.yaml"
    spec.write_text(yaml.safe_dump(KPIS))
    assert "would create kpi conversion_rate" in run(
        "apply", "-f", str(spec), "--dry-run", "--data-dir", str(data)
    )
    assert "create kpi conversion_rate" in run("apply", "-f", str(spec), "--data-dir", str(data))
    assert "unchanged kpi conversion_rate" in run("apply", "-f", str(spec), "--data-dir", str(data))
    spec.write_text(yaml.safe_dump({"kpis": [dict(KPIS["kpis"][0], target=0.25)]}))
    changed = run("apply", "-f", str(spec), "--dry-run", "--data-dir", str(data))
    assert "would update kpi conversion_rate" in changed and "target: 0.2 -> 0.25" in changed

    with LogStore(data / "driftwatch.duckdb") as logs:
        logs.append_events(seasonal_events({"acme": (200, 0.3)}, days=14))
    end = (START + timedelta(days=14)).date().isoformat()
    out = run(
        "kpis", "compute", "--from", START.date().isoformat(), "--to", end, "--data-dir", str(data)
    )
    assert "computed 56 KPI result rows" in out  # 14 days × (KPI, anomaly, shift, target rows)
    listed = run("kpis", "list", "--data-dir", str(data))
    assert "conversion_rate" in listed and "rate(conversion, session)" in listed
    shown = run("kpis", "show", "conversion_rate", "--tenant", "acme", "--data-dir", str(data))
    assert "formula: rate(conversion, session)" in shown
    assert (START + timedelta(days=13)).date().isoformat() in shown


def test_bad_kpi_in_the_file_is_refused_with_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "kpis.yaml"
    spec.write_text(yaml.safe_dump({"kpis": [{"name": "x", "formula": "rate(a b)"}]}))
    result = runner.invoke(app, ["apply", "-f", str(spec), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "kpis.0.formula" in result.output and "column 8" in result.output
