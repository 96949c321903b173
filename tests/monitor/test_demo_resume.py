"""``driftwatch demo build`` after an interrupted build finishes it. The build registers the
models first and takes minutes on a busy machine; its "already built" check looked at the
models only, so after a Ctrl-C during the backfills (or a refused webhook URL) every later
``demo build`` and ``make demo`` said "demo data already built" and served a demo without
monitors, KPIs or alerts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor import demo_scenario
from monitor.cli import app
from monitor.composition import of
from monitor.service import Services
from monitor.settings import Settings

DAYS = 14


class Interrupted(Exception):
    pass


def test_an_interrupted_demo_build_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTWATCH_ALERT_ALLOWED_HOSTS", "127.0.0.1")
    data = tmp_path / "data"
    services = Services.open(Settings(data_dir=data, alert_allowed_hosts="127.0.0.1"))

    def stop_at_the_backfills(msg: str) -> None:  # as Ctrl-C would, mid-build
        if msg.startswith("backfilling"):
            raise Interrupted(msg)

    try:
        with pytest.raises(Interrupted):
            demo_scenario.build(services, days=DAYS, progress=stop_at_the_backfills)
        assert services.metadata.get_model("basket_value") is not None  # what the check saw
        assert not demo_scenario.built(services)
    finally:
        services.close()

    runner = CliRunner()
    args = ["demo", "build", "--data-dir", str(data), "--days", str(DAYS)]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "already built" not in out.output, out.output  # the old check's answer
    assert "built in" in out.output, out.output
    services = Services.open(Settings(data_dir=data))
    try:
        assert demo_scenario.built(services)
        assert of(services).alerting.store.state_counts().get("firing", 0) > 0
    finally:
        services.close()
    # a finished build is still recognised as one
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "demo data already built" in again.output, again.output


def test_demo_build_without_the_receiver_allowed_says_so_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run by hand without `make demo`'s DRIFTWATCH_ALERT_ALLOWED_HOSTS, the build ingested
    everything and then died in a 50-line UnsafeURL traceback at the demo channel."""
    monkeypatch.delenv("DRIFTWATCH_ALERT_ALLOWED_HOSTS", raising=False)
    data = tmp_path / "data"
    r = CliRunner().invoke(app, ["demo", "build", "--data-dir", str(data), "--days", str(DAYS)])
    assert r.exit_code == 1
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    said = " ".join(r.output.split())
    assert "DRIFTWATCH_ALERT_ALLOWED_HOSTS" in said and "127.0.0.1" in said
    assert "Traceback" not in said
    assert not (data / "driftwatch.duckdb").exists()  # refused before anything was built
