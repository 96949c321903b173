"""Idempotency keys are per tenant, through the real HTTP API.

Two tenant-scoped keys send rows, labels and events whose ids collide; each must keep every one
of its own rows, labels and events, and its answers (``accepted``/``duplicates``) must be what
they would be if the other tenant did not exist, so neither can learn the other's ids nor
block them (issue 12, item 1).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import CHURN, Keys, client
from tests.support import Live

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TENANTS = ("acme", "globex")
_examples = itertools.count()


@pytest.fixture
def scoped(live: Live, keys: Keys) -> Iterator[dict[str, httpx.Client]]:
    with client(live, keys.engineer) as eng:
        assert eng.post("/models", json=CHURN).status_code == 201
    with client(live, keys.acme) as acme, client(live, keys.globex) as globex:
        yield {"acme": acme, "globex": globex}


def inference(tenant: str, rid: str, n: int) -> dict:
    # no tenant_id: a scoped key's tenant comes from the key; age tells whose send it was
    return {
        "request_id": rid,
        "ts": (T0 + timedelta(minutes=n)).isoformat(),
        "age": float(n) + (0.25 if tenant == "globex" else 0.0),
        "prediction": n % 2,
        "score": 0.5,
    }


ids = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6)
# one step: which tenant sends what kind of batch with which ids
step = st.tuples(st.sampled_from(TENANTS), st.sampled_from(["row", "label", "event"]), ids)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run (and machine)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=2, max_size=8))
def test_colliding_ids_of_two_tenants_keep_both(
    live: Live, scoped: dict[str, httpx.Client], steps: list[tuple[str, str, list[str]]]
) -> None:
    prefix = f"x{next(_examples)}-"  # examples share the server: each its own ids
    n = itertools.count()
    # what each tenant must end with: first row / label / event of each id wins, per tenant
    want: dict[tuple[str, str], dict[str, object]] = {}
    for tenant, kind, raw_ids in steps:
        keys = [prefix + i for i in raw_ids]
        if kind == "row":
            body = [inference(tenant, k, next(n)) for k in keys]
            path = "/models/churn/inferences"
            values = [r["age"] for r in body]
        elif kind == "label":
            body = [{"request_id": k, "label": next(n) % 2} for k in keys]
            path = "/models/churn/labels"
            values = [r["label"] for r in body]
        else:
            body = [
                {"event_id": k, "ts": T0.isoformat(), "name": "conversion", "value": next(n)}
                for k in keys
            ]
            path = "/events"
            values = [float(r["value"]) for r in body]
        mine = want.setdefault((tenant, kind), {})
        new = 0
        for k, v in zip(keys, values, strict=True):
            if k not in mine:
                mine[k] = v
                new += 1
        r = scoped[tenant].post(path, json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        # the answer depends only on this tenant's own history: nothing leaks
        assert (got["accepted"], got["duplicates"], got["rejected"]) == (
            new,
            len(keys) - new,
            0,
        ), (tenant, kind, keys)

    store = live.services.logstore
    for tenant in TENANTS:
        joined = store.read_joined("churn", tenant_id=tenant).to_pylist()
        mine = [r for r in joined if r["request_id"].startswith(prefix)]
        rows = {r["request_id"]: r for r in mine}
        assert len(rows) == len(mine)  # each id once per tenant, and one label per row
        assert {k: r["age"] for k, r in rows.items()} == want.get((tenant, "row"), {})
        labels = want.get((tenant, "label"), {})
        assert {k: r["label"] for k, r in rows.items() if r["label"] is not None} == {
            k: v for k, v in labels.items() if k in rows
        }
        events = store.read_events(tenant_id=tenant).to_pylist()
        assert {
            e["event_id"]: e["value"] for e in events if e["event_id"].startswith(prefix)
        } == want.get((tenant, "event"), {})


def test_unscoped_key_dedups_within_each_tenant(live: Live, keys: Keys) -> None:
    """An unscoped key keeps today's behaviour within each tenant: a retry is all duplicates,
    and the same id for two tenants is two rows."""
    with client(live, keys.engineer) as eng:
        assert eng.post("/models", json=CHURN).status_code == 201
        batch = [
            {**inference(t, rid, i), "tenant_id": t}
            for i, (t, rid) in enumerate([("acme", "r1"), ("globex", "r1"), ("acme", "r1")])
        ]
        first = eng.post("/models/churn/inferences", json=batch).json()
        assert (first["accepted"], first["duplicates"]) == (2, 1)
        again = eng.post("/models/churn/inferences", json=batch).json()
        assert (again["accepted"], again["duplicates"]) == (0, 3)
        # a label without tenant_id labels r1 of both tenants; one with a tenant only its own
        eng.post("/models/churn/labels", json=[{"request_id": "r1", "label": 1}])
        eng.post(
            "/models/churn/labels", json=[{"request_id": "r1", "label": 0, "tenant_id": "acme"}]
        )
        events = [
            {"event_id": "e1", "tenant_id": t, "ts": T0.isoformat(), "name": "conversion"}
            for t in ("acme", "globex", "acme")
        ]
        got = eng.post("/events", json=events).json()
        assert (got["accepted"], got["duplicates"]) == (2, 1)
    joined = live.services.logstore.read_joined("churn").to_pylist()
    assert sorted((r["tenant_id"], r["label"]) for r in joined) == [("acme", 0), ("globex", 1)]


def test_scoped_key_cannot_see_or_block_another_tenants_ids(live: Live, keys: Keys) -> None:
    """The probe of issue 12: acme stores globex's ids first; globex loses nothing."""
    with client(live, keys.engineer) as eng:
        assert eng.post("/models", json=CHURN).status_code == 201
    with client(live, keys.globex) as globex:
        r = globex.post("/models/churn/inferences", json=[inference("globex", "g-1", 1)])
        assert r.json()["accepted"] == 1
    with client(live, keys.acme) as acme:
        # acme probes globex's id and pre-empts its next ones: each is simply a new acme row
        probe = acme.post(
            "/models/churn/inferences",
            json=[inference("acme", "g-1", 2), inference("acme", "g-2", 3)],
        ).json()
        assert (probe["accepted"], probe["duplicates"]) == (2, 0)
        acme.post("/models/churn/labels", json=[{"request_id": "g-2", "label": 1}])
        acme.post("/events", json=[{"event_id": "ev-2", "ts": T0.isoformat(), "name": "x"}])
    with client(live, keys.globex) as globex:
        r = globex.post("/models/churn/inferences", json=[inference("globex", "g-2", 4)]).json()
        assert (r["accepted"], r["duplicates"]) == (1, 0)
        r = globex.post("/models/churn/labels", json=[{"request_id": "g-2", "label": 0}]).json()
        assert (r["accepted"], r["duplicates"]) == (1, 0)
        ev = [{"event_id": "ev-2", "ts": T0.isoformat(), "name": "x"}]
        assert globex.post("/events", json=ev).json()["accepted"] == 1
        assert globex.get("/models/churn").json()["rows"] == 2
    joined = live.services.logstore.read_joined("churn", tenant_id="globex").to_pylist()
    assert {r["request_id"]: r["label"] for r in joined} == {"g-1": None, "g-2": 0}
