"""``driftwatch alerts|channels|rules`` on a local data dir (the CLI's local mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore
from tests.alerts.helpers import result

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRIFTWATCH_ALERT_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.delenv("DRIFTWATCH_URL", raising=False)
    return tmp_path / "data"


def cli(data_dir: Path, *args: str) -> str:
    r = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert r.exit_code == 0, r.output
    return r.output


def create_hook(data_dir: Path) -> str:
    """A webhook channel named ``hook`` (to a closed port: nothing here is delivered)."""
    return cli(
        data_dir,
        "channels",
        "create",
        "hook",
        "--kind",
        "webhook",
        "--target",
        "http://127.0.0.1:9/x",
    )


def test_rules_channels_alerts_silences_and_backtest(data_dir: Path, tmp_path: Path) -> None:
    out = create_hook(data_dir)
    assert "signing secret (shown once): whsec_" in out
    assert "whsec_" not in cli(data_dir, "channels", "list", "--json")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "name": "drift",
                        "match": {"kind": "feature_drift"},
                        "for": 2,
                        "channels": ["hook"],
                    }
                ]
            }
        )
    )
    assert "would create rule drift" in cli(
        data_dir, "rules", "apply", "-f", str(rules), "--dry-run"
    )
    assert "create rule drift" in cli(data_dir, "rules", "apply", "-f", str(rules))
    assert "unchanged rule drift" in cli(data_dir, "rules", "apply", "-f", str(rules))
    assert json.loads(cli(data_dir, "rules", "list", "--json"))[0]["name"] == "drift"

    # results as the runner would store and hand over
    meta = MetadataStore(f"sqlite:///{(data_dir / 'metadata.sqlite').resolve()}")
    rows = [result(h, "alert" if h in (1, 2, 3, 6) else "ok") for h in range(8)]
    MonitoringStore(meta).save_results(rows)
    from monitor.alerting import AlertingRuntime
    from monitor.settings import Settings

    class Svc:
        settings = Settings(data_dir=data_dir)
        metadata = meta

    AlertingRuntime(Svc()).process(rows[:3])
    meta.dispose()

    listed = json.loads(cli(data_dir, "alerts", "list", "--json", "--state", "firing"))
    assert len(listed) == 1
    alert_id = listed[0]["id"]
    assert "acknowledged by bob" in cli(data_dir, "alerts", "ack", str(alert_id), "--actor", "bob")
    out = cli(
        data_dir,
        "alerts",
        "silence",
        "-m",
        "tenant=acme",
        "-m",
        "column=~a.*",
        "--reason",
        "deploy",
        "--for",
        "1h",
    )
    silence_id = out.split()[1]
    silences = json.loads(cli(data_dir, "alerts", "silences", "--json"))
    assert silences[0]["muting"] == 1 and silences[0]["matchers"] == "tenant=acme column=~a.*"
    cli(data_dir, "alerts", "expire", silence_id)
    assert json.loads(cli(data_dir, "alerts", "silences", "--json")) == []

    report = json.loads(
        cli(
            data_dir,
            "rules",
            "backtest",
            "drift",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
            "--json",
        )
    )
    # breaches at hours 1-3 (fires at 2, resolves at 4) and hour 6 alone (for: 2 → never fires)
    assert report["fired"] == 1 and report["windows"] == 8
    (ep,) = report["episodes"]
    assert ep["fired_at"].startswith("2026-01-01T03:00") and ep["resolved_at"].startswith(
        "2026-01-01T05:00"
    )
    out = cli(data_dir, "rules", "backtest", "drift", "--from", "2026-01-01", "--to", "2026-01-02")
    assert "1 alerts would have fired" in out


def test_bad_matcher_is_refused(data_dir: Path) -> None:
    r = runner.invoke(
        app, ["alerts", "silence", "-m", "nope", "--reason", "x", "--data-dir", str(data_dir)]
    )
    assert r.exit_code != 0


def test_apply_without_channels_keeps_a_rules_routing(data_dir: Path, tmp_path: Path) -> None:
    """`init` writes rules without `channels:` and says rules that exist keep theirs: applying
    such a file must not silence a rule that was wired to on-call; `channels: []` does."""
    create_hook(data_dir)
    rule = {"name": "drift", "match": {"kind": "feature_drift"}, "for": 2}
    rules = tmp_path / "rules.yaml"

    def apply(**extra: object) -> str:
        rules.write_text(yaml.safe_dump({"rules": [{**rule, **extra}]}))
        return cli(data_dir, "rules", "apply", "-f", str(rules))

    def channels() -> str:  # the list's column joins them with commas
        return str(json.loads(cli(data_dir, "rules", "list", "--json"))[0]["channels"])

    assert "create rule drift" in apply(channels=["hook"])
    assert "unchanged rule drift" in apply()  # the file as `init` writes it
    assert channels() == "hook"
    assert "update rule drift" in apply(**{"for": 3})  # other fields still change
    assert channels() == "hook"
    assert "update rule drift" in apply(channels=[])
    assert channels() == ""
