"""The CLI's alerting commands are written once against ``monitor.alerting_backend``: the local
backend (the data dir's metadata DB) and the HTTP backend (a server's API) must answer the same
values for what the commands print. Runs the API in process (tests.support.in_process)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.alerting_backend import HttpAlerting, LocalAlerting
from monitor.cli_common import check_response
from monitor.composition import of
from tests.alerts.helpers import result
from tests.api.conftest import make_keys, make_settings
from tests.support import in_process

SQLITE_ONLY = pytest.mark.parametrize("metadata_url", ["sqlite"], indirect=True)

# what each command prints (monitor/cli_alerts.py), per listing
PRINTED = {
    "channels": ["id", "name", "kind", "url_hint", "enabled", "disabled_reason", "secret_count"],
    "rules": ["name", "enabled", "version", "spec", "updated_at"],
    "alerts": ["id", "state", "severity", "rule", "tenant_id", "model", "acknowledged_by"],
    "silences": ["id", "active", "matchers", "reason", "created_by", "ends_at", "muting"],
    "deliveries": ["id", "channel_name", "event", "status", "attempts", "webhook_id"],
}


def _cut(rows: list[dict], columns: list[str]) -> list[dict]:
    return [{c: r.get(c) for c in columns} for r in rows]


@SQLITE_ONLY
def test_local_and_http_backends_answer_alike(
    tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTWATCH_ALERT_ALLOWED_HOSTS", "127.0.0.1")
    settings = make_settings(tmp_path, metadata_url, alert_allowed_hosts="127.0.0.1")
    with in_process(settings) as live:
        keys = make_keys(live)
        runtime = of(live.services).alerting
        local = LocalAlerting(runtime)
        with live.http(keys.admin) as client:
            http = HttpAlerting(client, check_response)
            rec, secret = http.create_channel(
                {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/x"}, "cli"
            )
            assert secret and secret.startswith("whsec_") and rec["name"] == "hook"
            spec = {
                "name": "drift",
                "match": {"kind": "feature_drift"},
                "channels": ["hook"],
                "group_wait": "0s",
            }
            local.put_rule(spec, "cli")
            assert http.rule_spec("drift") == local.rule_spec("drift") is not None
            assert http.rule_spec("nope") is None and local.rule_spec("nope") is None
            runtime.process([result(0, tenant="acme"), result(0, tenant="globex")])
            firing = local.list_alerts(["firing"], None, None, None, 100)
            assert len(firing) == 2
            http.acknowledge(firing[0]["id"], "cli")
            ends = runtime.store.now() + timedelta(hours=2)
            local.silence([{"name": "tenant", "op": "=", "value": "acme"}], "test", ends, "cli")
            runtime.engine.flush_due(runtime.store.now() + timedelta(days=1))
            pairs = {
                "channels": (http.channels(), local.channels()),
                "rules": (http.rules(), local.rules()),
                "alerts": (
                    http.list_alerts(None, None, None, None, 100),
                    local.list_alerts(None, None, None, None, 100),
                ),
                "silences": (http.silences(False), local.silences(False)),
                "deliveries": (http.deliveries(None), local.deliveries(None)),
            }
            for name, (over_http, here) in pairs.items():
                assert here, name
                assert _cut(over_http, PRINTED[name]) == _cut(here, PRINTED[name]), name
            assert http.backtest("drift", ends - timedelta(days=3), ends) == local.backtest(
                "drift", ends - timedelta(days=3), ends
            )
