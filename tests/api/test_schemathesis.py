"""The probe of issue 12, kept: schemathesis against the OpenAPI document of a real server on
127.0.0.1, with an admin key and a viewer key, every operation that is safe to fuzz,
deterministic (the same cases on every run) and bounded (``EXAMPLES`` per operation and
phase: about 1.5 minutes per key on two busy cores).

Checks: no server error, status codes and content types the document states, bodies matching
their schemas, response headers, ``Allow`` on 405 for methods a path does not serve, and
schema-violating requests refused. The alerting routes answer with data in them (a channel,
a rule, firing, resolved and all-tenants alerts, queued deliveries, a silence). Excluded: ``DELETE /keys/{key}`` (a generated id may be
the key in use). Not checked: that every schema-valid request succeeds (``start`` before
``end``, a known monitor... are rules a JSON schema cannot state).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.composition import of
from monitor.schemas import ModelIn
from monitor.service import Caller
from tests.alerts.helpers import result
from tests.api.conftest import CHURN, make_settings
from tests.support import Live, live_server

EXAMPLES = 8
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance,unsupported_method,"
    "negative_data_rejection"
)
ST = Path(sys.executable).with_name("st")


def _seed_alerting(live: Live) -> None:
    """Data behind the alerting routes, so their answers are checked with bodies in them: a
    webhook channel, a rule with it, firing and resolved alerts of two tenants and one over
    all tenants (their notification queued: the worker is off), a silence."""
    engine = of(live.services).alerting.engine
    engine.create_channel("probe-hook", "webhook", "https://127.0.0.1:9/hook")
    engine.put_rule(
        {
            "name": "probe-drift",
            "match": {"kind": "feature_drift"},
            "channels": ["probe-hook"],
            "group_wait": "0s",
            "annotations": {"runbook_url": "https://runbooks.example/{alertname}?t={tenant}"},
        }
    )
    rows = [
        result(h, status, tenant=tenant, column=column)
        for h, status in enumerate(["alert", "alert", "ok", "alert"])
        for tenant in ("acme", "globex", "*")
        for column in ("age", "plan")
    ]
    engine.process(rows)
    engine.flush_due(live.services.now() + timedelta(hours=1))
    engine.silence(
        [{"name": "tenant", "value": "globex"}],
        "probe",
        "test",
        live.services.now() + timedelta(days=1),
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, scheduler_enabled=False, alert_worker=False, alert_allowed_hosts="127.0.0.1"
    )
    with live_server(settings) as live:
        meta = live.services.metadata
        keys = {
            "admin": meta.create_api_key("probe-admin", "admin")[1],
            "viewer": meta.create_api_key("probe-viewer", "viewer")[1],
        }
        live.services.register_model(ModelIn.model_validate(CHURN), Caller.local())
        _seed_alerting(live)
        for role, key in keys.items():
            run = subprocess.run(
                [
                    str(ST),
                    "run",
                    f"{live.url}/api/v1/openapi.json",
                    "-H",
                    f"Authorization: Bearer {key}",
                    "--checks",
                    CHECKS,
                    "--max-examples",
                    str(EXAMPLES),
                    "--exclude-path",
                    "/api/v1/keys/{key}",
                    "--generation-deterministic",
                    "--phases",
                    "examples,coverage,fuzzing",
                    "--suppress-health-check",
                    "all",
                    "--workers",
                    "1",
                    "--no-color",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=tmp_path,
            )
            out = run.stdout + run.stderr
            assert run.returncode == 0, f"{role}: schemathesis found problems:\n{out[-6000:]}"
            assert " passed" in out and "failures" not in out.split("SUMMARY")[-1], out[-3000:]
