"""The CLI's monitor commands (apply, init, run, backfill) are written once against
``monitor.monitor_backend``: the local backend (the data dir's monitor service) and the HTTP
backend (a server's API, a backfill as a server job) must answer the same values for what the
commands print. Runs the API in process (tests.support.in_process)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from rich.progress import Progress

from monitor.cli_common import check_response, follow_job
from monitor.composition import of
from monitor.monitor_backend import HttpMonitors, LocalMonitors
from tests.api.conftest import make_keys, make_settings
from tests.support import in_process
from tests.test_cli_monitors import T0, seed_churn


def test_local_and_http_backends_answer_alike(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # SQLite metadata in the data dir
    with in_process(settings) as live:
        keys = make_keys(live)
        services = live.services
        seed_churn(services)
        local = LocalMonitors(of(services).monitors)
        with live.http(keys.admin) as client:
            http = HttpMonitors(client, check_response, follow_job)
            doc = http.propose("churn", None)
            assert doc == local.propose("churn", None) and doc["monitors"]
            items = doc["monitors"]
            assert http.apply(items, True) == local.apply(items, True)
            assert [c["action"] for c in http.apply(items, False)] == ["create"] * len(items)
            assert http.apply(items, True) == local.apply(items, True)
            name = items[0]["name"]
            at = T0 + timedelta(hours=30)
            over_http, here = http.run(name, at), local.run(name, at)
            # `run` prints the answer as it is: the API's run summary has more fields and a
            # 'Z' time (kept as it was); the fields both print agree
            same = ("status", "results", "error")
            assert {k: over_http[k] for k in same} == {k: here[k] for k in same}
            assert here["status"] == "ok" and here["results"] > 0, here
            assert datetime.fromisoformat(over_http["window_start"]) == datetime.fromisoformat(
                here["window_start"]
            )
            end = T0 + timedelta(days=3)
            failed = http.backfill([name], T0, end, Progress(disable=True))
            assert failed == local.backfill([name], T0, end, Progress(disable=True)) == 0
            assert http.backfill(None, T0, end, Progress(disable=True)) == local.backfill(
                None, T0, end, Progress(disable=True)
            )
