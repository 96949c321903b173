"""The CLI's KPI commands are written once against ``monitor.kpi_backend``: the local backend
(the KPI service of the data dir) and the HTTP backend (a server's API, computation as a server
job) must answer the same values for what the commands print. Runs the API in process
(tests.support.in_process)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from rich.progress import Progress
from typer.testing import CliRunner

from alerts.defaults import default_rules
from monitor.cli import app
from monitor.cli_common import check_response, follow_job
from monitor.composition import of
from monitor.kpi_backend import HttpKpis, LocalKpis
from monitor.kpis.service import KpiService
from monitor.service import Services
from storage.kpi_sql import KpiQueries
from tests.api.conftest import make_keys, make_settings
from tests.api.test_kpis_api import _post_events
from tests.kpis.conftest import START, seasonal_events
from tests.support import in_process

SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)
KPI = {"name": "conversion", "formula": "rate(conversion, session)", "target": 0.2}
LISTED = ["name", "definition", "version", "enabled"]  # what `kpis list` prints


def _printed(series: list[dict]) -> list[tuple]:
    """What `kpis show --tenant` prints of each window."""
    return [
        (r["window_start"], r["value"], r["status"], r["details"].get("message")) for r in series
    ]


@SQLITE_ONLY
def test_local_and_http_backends_answer_alike(tmp_path: Path, metadata_url: str) -> None:
    settings = make_settings(tmp_path, metadata_url)
    with in_process(settings) as live:
        keys = make_keys(live)
        local = LocalKpis(
            KpiService(
                live.services.metadata,
                live.services.logstore,
                queries=KpiQueries(live.services.logstore),
            )
        )
        with live.http(keys.admin) as client:
            http = HttpKpis(client, check_response, follow_job)
            # a dry run changes nothing and says the same on both sides
            assert http.apply([KPI], True) == local.apply([KPI], True)
            assert http.kpis() == local.kpis() == []
            created = http.apply([KPI], False)
            assert [c["action"] for c in created] == ["create"]
            again = {**KPI, "target": 0.25}
            assert http.apply([again], True) == local.apply([again], True)
            listed = [{k: r[k] for k in LISTED} for r in http.kpis()]
            assert listed == [{k: r[k] for k in LISTED} for r in local.kpis()]
            assert listed[0]["definition"]["formula"] == KPI["formula"]

            _post_events(client, seasonal_events({"acme": (400, 0.3)}, days=6))
            end = START + timedelta(days=6)
            over_http = http.compute(None, START, end, Progress(disable=True))
            http_show = http.show("conversion", "acme")
            here = local.compute(["conversion"], START, end, Progress(disable=True))
            assert over_http == here >= 6  # rows of six daily windows, both times
            local_show = local.show("conversion", "acme")
            assert http_show[0] == local_show[0] == listed[0]["definition"]
            assert _printed(http_show[1]) == _printed(local_show[1])
            assert len(http_show[1]) == 6
            assert http.show("conversion", None)[1] == []


def _breach_alerts(services: Services) -> list[tuple]:
    alerts = of(services).alerting.store.list_alerts(rule="kpi-breach")
    return sorted((a.tenant_id, a.state, a.active_at, a.labels.get("metric")) for a in alerts)


def test_local_kpis_compute_feeds_alerting_as_the_server_does(tmp_path: Path) -> None:
    """``driftwatch kpis compute`` on the local data dir computes through the composition
    root's KPI service, whose results go to alerting, as a server's KPI job does: the same
    breaches open the same alerts. Control: the command once built a KPI service of its own
    with no alert sink, so a local backfill of a breaching KPI opened no alert at all."""
    rule = next(r for r in default_rules("churn", "binary") if r.name == "kpi-breach")
    kpi = {**KPI, "target": 0.4}  # acme converts ~30 %: every window breaches
    events = seasonal_events({"acme": (400, 0.3)}, days=6)
    end = START + timedelta(days=6)

    def prepare(services: Services) -> None:
        of(services).alerting.store.put_rule(rule.name, rule.to_dict())
        of(services).kpis.create(kpi, "test")

    local_settings = make_settings(tmp_path / "local")
    services = Services.open(local_settings)
    try:
        prepare(services)
        services.logstore.append_events(events)
    finally:
        services.close()
    args = ["kpis", "compute", "--from", START.isoformat(), "--to", end.isoformat()]
    result = CliRunner().invoke(
        app, [*args, "--data-dir", str(local_settings.data_dir)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    services = Services.open(local_settings)
    try:
        here = _breach_alerts(services)
    finally:
        services.close()

    with in_process(make_settings(tmp_path / "server")) as live:
        prepare(live.services)
        with live.http(make_keys(live).admin) as client:
            _post_events(client, events)
            HttpKpis(client, check_response, follow_job).compute(
                None, START, end, Progress(disable=True)
            )
        served = _breach_alerts(live.services)
    assert served, "the server's KPI job should open the KPI's alert"
    assert here == served
