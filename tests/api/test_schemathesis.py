"""The probe of issue 12, kept: schemathesis against the OpenAPI document of the API app in
this process (schemathesis' ASGI transport: no server, no socket; the app's lifespan runs as
under a server, see ``tests.support.in_process``), with an admin key and a viewer key, every
operation that is safe to fuzz, deterministic (a fixed seed, the same cases on every run) and
bounded (``EXAMPLES`` per operation and phase). Schemathesis' engine runs as ``st run`` does
(phases examples, coverage and fuzzing), so the checks are the CLI's. What needs a real
server (keep-alive after a refused request, HTTP framing) is in ``test_bad_params.py``.

Checks: no server error, status codes and content types the document states, bodies matching
their schemas, response headers, ``Allow`` on 405 for methods a path does not serve, and
schema-violating requests refused. The alerting routes answer with data in them (a channel,
a rule, firing, resolved and all-tenants alerts, queued deliveries, a silence). Excluded: ``DELETE /keys/{key}`` (a generated id may be
the key in use). Not checked: that every schema-valid request succeeds (``start`` before
``end``, a known monitor... are rules a JSON schema cannot state).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from monitor.composition import of
from monitor.schemas import ModelIn
from monitor.service import Caller
from tests.alerts.helpers import result
from tests.api.conftest import CHURN, make_settings
from tests.support import Live, in_process

EXAMPLES = 8
SEED = 20261202
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
    "negative_data_rejection",
)


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


def _config(key: str) -> SchemathesisConfig:
    """What ``st run --checks CHECKS --max-examples EXAMPLES --generation-deterministic
    --phases examples,coverage,fuzzing --suppress-health-check all --workers 1 --seed SEED``
    sets, with the key as the bearer token."""
    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in CHECKS})
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["all"],
            "workers": 1,
            "headers": {"Authorization": f"Bearer {key}"},
            "checks": checks,
            "generation": {"max-examples": EXAMPLES, "deterministic": True},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
        }
    )


def _problems(live: Live, key: str) -> tuple[list[str], int]:
    """Run schemathesis against the app with ``key``: the problems it found (operation, phase,
    check and message) and how many scenarios passed."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", live.app, config=_config(key))
    schema = schema.exclude(path="/api/v1/keys/{key}")
    problems: list[str] = []
    passed = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.status == Status.SUCCESS:
                passed += 1
            elif event.status in (Status.FAILURE, Status.ERROR):
                found = [
                    f"{event.recorder.label} [{event.phase.value}] {check.name}: "
                    f"{check.failure_info.failure.title if check.failure_info else ''} "
                    f"{check.failure_info.failure.message if check.failure_info else ''}"
                    for checks in event.recorder.checks.values()
                    for check in checks
                    if check.status == Status.FAILURE
                ]
                problems += found or [
                    f"{event.recorder.label} [{event.phase.value}]: {event.status}"
                ]
        elif isinstance(event, events.NonFatalError):
            problems.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
    return problems, passed


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, scheduler_enabled=False, alert_worker=False, alert_allowed_hosts="127.0.0.1"
    )
    with in_process(settings) as live:
        meta = live.services.metadata
        keys = {
            "admin": meta.create_api_key("probe-admin", "admin")[1],
            "viewer": meta.create_api_key("probe-viewer", "viewer")[1],
        }
        live.services.register_model(ModelIn.model_validate(CHURN), Caller.local())
        _seed_alerting(live)
        for role, key in keys.items():
            problems, passed = _problems(live, key)
            assert not problems, f"{role}: schemathesis found problems:\n" + "\n".join(problems)
            assert passed > 50, f"{role}: only {passed} scenarios passed"
