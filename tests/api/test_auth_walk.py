"""Walk every route of the app with no key, a revoked key, a too-weak key and another tenant's
key, and check each answer. A new route must be added to ROUTES or this test fails.

The walk shares one app per metadata backend (module scope): every call it makes is refused,
or is a tenant's read of its own (empty) view, so no route changes what the next one sees."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from monitor.api import create_app
from tests.api.conftest import CHURN, Keys, client, make_keys, make_settings
from tests.storage.conftest import BACKENDS, Templates, migrated_copy
from tests.support import Live, in_process

# (method, path) -> (minimum role or "public", unscoped: a scoped key is refused)
ROUTES: dict[tuple[str, str], tuple[str, bool]] = {
    ("GET", "/api/v1/health"): ("public", False),
    ("GET", "/api/v1/ready"): ("public", False),
    ("POST", "/api/v1/models"): ("engineer", True),
    ("GET", "/api/v1/models"): ("viewer", False),
    ("GET", "/api/v1/models/{model}"): ("viewer", False),
    ("PUT", "/api/v1/models/{model}"): ("engineer", True),
    ("POST", "/api/v1/models/{model}/inferences"): ("engineer", False),
    ("POST", "/api/v1/models/{model}/labels"): ("engineer", False),
    ("POST", "/api/v1/events"): ("engineer", False),
    ("GET", "/api/v1/events/quarantine"): ("viewer", False),
    ("PUT", "/api/v1/models/{model}/references/{name}"): ("engineer", True),
    ("GET", "/api/v1/models/{model}/references"): ("viewer", False),
    ("GET", "/api/v1/models/{model}/quarantine"): ("viewer", False),
    ("GET", "/api/v1/tenants"): ("viewer", False),
    ("GET", "/api/v1/tenants/{tenant_id}"): ("viewer", False),
    ("POST", "/api/v1/tenants"): ("admin", True),
    ("POST", "/api/v1/keys"): ("admin", True),
    ("GET", "/api/v1/keys"): ("admin", False),
    ("DELETE", "/api/v1/keys/{key}"): ("admin", True),
    ("GET", "/api/v1/audit"): ("admin", True),
    # KPIs (issue 5)
    ("GET", "/api/v1/kpis"): ("viewer", False),
    ("POST", "/api/v1/kpis"): ("engineer", True),
    ("POST", "/api/v1/kpis/apply"): ("engineer", True),
    ("GET", "/api/v1/kpis/summary"): ("viewer", False),
    ("GET", "/api/v1/kpis/{kpi}"): ("viewer", False),
    ("PUT", "/api/v1/kpis/{kpi}"): ("engineer", True),
    ("DELETE", "/api/v1/kpis/{kpi}"): ("engineer", True),
    ("POST", "/api/v1/kpis/{kpi}/compute"): ("engineer", True),
    ("GET", "/api/v1/kpis/{kpi}/results"): ("viewer", False),
    ("GET", "/api/v1/tenants/{tenant_id}/kpis/summary"): ("viewer", False),
    ("GET", "/api/v1/tenants/{tenant_id}/kpis/{kpi}/related-signals"): ("viewer", False),
    ("GET", "/api/v1/tenants/{tenant_id}/models/{model}/related-kpis"): ("viewer", False),
    # monitors (issue 4)
    ("GET", "/api/v1/monitors"): ("viewer", False),
    ("POST", "/api/v1/monitors"): ("engineer", True),
    ("POST", "/api/v1/monitors/apply"): ("engineer", True),
    ("GET", "/api/v1/monitors/{name}"): ("viewer", False),
    ("PUT", "/api/v1/monitors/{name}"): ("engineer", True),
    ("DELETE", "/api/v1/monitors/{name}"): ("engineer", True),
    ("GET", "/api/v1/monitors/{name}/versions"): ("viewer", False),
    ("POST", "/api/v1/monitors/{name}/run"): ("engineer", True),
    ("POST", "/api/v1/monitors/{name}/backfill"): ("engineer", True),
    ("GET", "/api/v1/models/{model}/monitor-defaults"): ("viewer", False),
    ("GET", "/api/v1/runs"): ("viewer", False),
    ("GET", "/api/v1/results"): ("viewer", False),
    # alerting (issue 6): alerts are per tenant; rules, channels, silences and deliveries are
    # shared by all tenants (scoped keys refused)
    ("GET", "/api/v1/alerts"): ("viewer", False),
    ("GET", "/api/v1/alerts/{alert_id}"): ("viewer", False),
    ("POST", "/api/v1/alerts/{alert_id}/ack"): ("engineer", False),
    ("GET", "/api/v1/silences"): ("viewer", True),
    ("POST", "/api/v1/silences"): ("engineer", True),
    ("DELETE", "/api/v1/silences/{silence_id}"): ("engineer", True),
    ("GET", "/api/v1/channels"): ("viewer", True),
    ("POST", "/api/v1/channels"): ("admin", True),
    ("GET", "/api/v1/channels/{channel}"): ("viewer", True),
    ("PATCH", "/api/v1/channels/{channel}"): ("admin", True),
    ("DELETE", "/api/v1/channels/{channel}"): ("admin", True),
    ("POST", "/api/v1/channels/{channel}/rotate-secret"): ("admin", True),
    ("POST", "/api/v1/channels/{channel}/test"): ("engineer", True),
    ("GET", "/api/v1/deliveries"): ("viewer", True),
    ("GET", "/api/v1/dead-letters"): ("viewer", True),
    ("GET", "/api/v1/deliveries/{delivery_id}"): ("viewer", True),
    ("POST", "/api/v1/deliveries/{delivery_id}/retry"): ("engineer", True),
    ("GET", "/api/v1/rules"): ("viewer", True),
    ("POST", "/api/v1/rules"): ("engineer", True),
    ("GET", "/api/v1/rules/{rule}"): ("viewer", True),
    ("PUT", "/api/v1/rules/{rule}"): ("engineer", True),
    ("DELETE", "/api/v1/rules/{rule}"): ("engineer", True),
    ("POST", "/api/v1/rules/{rule}/backtest"): ("viewer", True),
    ("GET", "/api/v1/metrics"): ("public", False),
    # background jobs (backfills, KPI computes): shared objects, scoped keys refused
    ("GET", "/api/v1/jobs"): ("viewer", True),
    ("GET", "/api/v1/jobs/{job_id}"): ("viewer", True),
    ("DELETE", "/api/v1/jobs/{job_id}"): ("engineer", True),
    # profiles of a lake-fed model (issue 16): every tenant's rows, scoped keys refused
    ("GET", "/api/v1/models/{model}/profile-spec"): ("engineer", True),
    ("PUT", "/api/v1/models/{model}/profiles/{day}"): ("engineer", True),
}
RANK = {"viewer": 0, "engineer": 1, "admin": 2}
PARAMS = {
    "model": "churn",
    "day": "2026-03-01",
    "name": "base",
    "tenant_id": "acme",
    "key": "1",
    "kpi": "conversion",
    "alert_id": "1",
    "silence_id": "1",
    "channel": "hook",
    "delivery_id": "1",
    "rule": "r1",
    "job_id": "1",
}
KPI = {"name": "conversion", "formula": "rate(conversion, session)"}


def api_routes(live: Live) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, read from its OpenAPI document."""
    app = create_app(live.settings, live.services)
    paths = app.openapi()["paths"]
    return sorted((m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith("/api/"))


def test_route_table_covers_every_route(live: Live) -> None:
    assert sorted(api_routes(live)) == sorted(ROUTES)


def call(c: httpx.Client, method: str, path: str) -> httpx.Response:
    url = path.removeprefix("/api/v1").format(**PARAMS)
    return c.request(method, url, content=b"[]", headers={"Content-Type": "application/json"})


@pytest.fixture(scope="module", params=BACKENDS)
def walk(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    metadata_templates: Templates,
) -> Iterator[tuple[Live, Keys]]:
    tmp = tmp_path_factory.mktemp("walk")
    with (
        migrated_copy(request.param, tmp, metadata_templates) as url,
        in_process(make_settings(tmp, url)) as live,
    ):
        keys = make_keys(live)
        with client(live, keys.admin) as admin:
            assert admin.post("/models", json=CHURN).status_code == 201
            assert admin.post("/kpis", json=KPI).status_code == 201
            # a monitor named like PARAMS["name"], so scoped viewers of /monitors/{name} get 200
            monitor = {"name": "base", "model": "churn", "kind": "performance"}
            assert admin.post("/monitors", json=monitor).status_code == 201
        yield live, keys


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_each_route_refuses_the_wrong_callers(
    walk: tuple[Live, Keys], route: tuple[str, str]
) -> None:
    live, keys = walk
    method, path = route
    role, unscoped = ROUTES[route]
    with client(live, None) as anon, client(live, keys.revoked) as revoked:
        if role == "public":
            assert call(anon, method, path).status_code == 200
            return
        r = call(anon, method, path)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert call(revoked, method, path).status_code == 401
    with client(live, "dw_" + "x" * 43) as forged:
        assert call(forged, method, path).status_code == 401
    if RANK[role] > RANK["viewer"]:
        with client(live, keys.viewer) as viewer:
            assert call(viewer, method, path).status_code == 403
    if role == "admin":
        with client(live, keys.engineer) as eng:
            assert call(eng, method, path).status_code == 403
    with client(live, keys.globex) as other:
        answer = call(other, method, path).status_code
        if unscoped or role == "admin":
            assert answer == 403
        elif "{tenant_id}" in path or "{alert_id}" in path:
            assert answer == 404  # another tenant's object does not exist for this key
        else:
            assert answer in (200, 201)  # its own (empty) view


@pytest.mark.parametrize("path", ["/models/churn/inferences", "/models/churn/labels", "/events"])
def test_scoped_key_cannot_write_another_tenants_rows(live: Live, keys: Keys, path: str) -> None:
    with client(live, keys.admin) as admin:
        admin.post("/models", json=CHURN)
    row = {
        "request_id": "r1",
        "ts": "2026-01-01T00:00:00Z",
        "tenant_id": "acme",
        "name": "x",
        "prediction": 1,
        "label": 1,
    }
    if path == "/events":
        row = {k: row[k] for k in ("ts", "tenant_id", "name")}
    elif path.endswith("labels"):
        row = {k: row[k] for k in ("request_id", "label", "tenant_id")}
    else:
        row = {k: row[k] for k in ("request_id", "ts", "tenant_id", "prediction")}
    with client(live, keys.globex) as other:
        r = other.post(path, json=[row])
        assert r.status_code == 403, r.text
