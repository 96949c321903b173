"""Monitors end to end through the API (in process; a real server on 127.0.0.1 where the
scheduler is the point): drift injected for one tenant on one day, no drift (false-alarm rate), late data re-running a past window, a restart catching up
missed windows exactly once, config errors naming the field, apply with --dry-run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from monitor.api import create_app
from monitor.monitoring import MonitorService
from monitor.runner import RunSummary
from monitor.service import Services
from monitor.settings import Settings
from tests.api.conftest import Keys, client, make_keys, make_settings
from tests.storage import conftest as _db
from tests.support import PATIENCE_S, Live, in_process, wait_job

metadata_url = _db.migrated_url  # a copy of a database migrated once per session

SHOP = {
    "name": "shop",
    "task": "binary",
    "features": [
        {"name": "x", "kind": "numeric"},
        {"name": "y", "kind": "numeric"},
        {"name": "plan", "kind": "categorical", "segment": True},
    ],
    "prediction": "prediction",
    "scores": ["score"],
}
TENANTS = ("acme", "globex", "initech")
DAY = timedelta(days=1)


def _rows(
    rng: np.random.Generator,
    start: datetime,
    days: int,
    per_day: int,
    shift: Callable[[str, int], float] = lambda t, d: 0.0,
    prefix: str = "r",
) -> list[dict[str, Any]]:
    out = []
    for d in range(days):
        for tenant in TENANTS:
            x = rng.normal(0, 1, per_day) + shift(tenant, d)
            y = rng.normal(5, 2, per_day)
            plan = rng.choice(["free", "pro", "team"], per_day, p=[0.5, 0.3, 0.2])
            secs = rng.uniform(0, 86400 - 1, per_day)
            for i in range(per_day):
                s = float(1 / (1 + np.exp(-x[i])))
                out.append(
                    {
                        "request_id": f"{prefix}-{d}-{tenant}-{i}",
                        "ts": (start + d * DAY + timedelta(seconds=float(secs[i]))).isoformat(),
                        "tenant_id": tenant,
                        "model_version": "v1",
                        "x": float(x[i]),
                        "y": float(y[i]),
                        "plan": str(plan[i]),
                        "prediction": int(s > 0.5),
                        "score": s,
                    }
                )
    return out


def _reference(rng: np.random.Generator, n: int = 6000) -> list[dict[str, Any]]:
    x = rng.normal(0, 1, n)
    return [
        {
            "x": float(x[i]),
            "y": float(v),
            "plan": str(p),
            "prediction": int(x[i] > 0),
            "score": float(1 / (1 + np.exp(-x[i]))),
        }
        for i, (v, p) in enumerate(
            zip(
                rng.normal(5, 2, n),
                rng.choice(["free", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
                strict=True,
            )
        )
    ]


def _send(c: httpx.Client, path: str, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 20_000):
        r = c.post(path, json=rows[i : i + 20_000])
        assert r.status_code in (200, 201), r.text
        assert r.json().get("rejected", 0) == 0, r.text


def _setup(c: httpx.Client, seed: int) -> None:
    assert c.post("/models", json=SHOP).status_code == 201
    r = c.put("/models/shop/references/base", json=_reference(np.random.default_rng(seed)))
    assert r.status_code in (200, 201), r.text


def _all_results(c: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        r = c.get("/results", params={**params, "limit": 1000, "offset": len(items)})
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if len(items) >= page["total"]:
            return items


@contextmanager
def serve(
    settings: Settings,
    prepare: Callable[[Services], None] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[Live]:
    """Like tests.support.live_server, with a hook that runs before the app starts."""
    services = Services.open(settings, clock=clock)
    if prepare is not None:
        prepare(services)
    app = create_app(settings, services)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE_S
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield Live(f"http://127.0.0.1:{settings.port}", services, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE_S)
        services.close()


@pytest.fixture
def server(tmp_path: Path, metadata_url: str) -> Iterator[tuple[Live, Keys]]:
    """The API in process (no scheduler: these tests run windows through the API)."""
    with in_process(make_settings(tmp_path, metadata_url)) as live:
        yield live, make_keys(live)


@pytest.fixture
def scheduled(tmp_path: Path, metadata_url: str) -> Iterator[tuple[Live, Keys]]:
    """A real server whose scheduler ticks every second."""
    settings = make_settings(tmp_path, metadata_url, scheduler_tick_seconds=1)
    with serve(settings) as live:
        yield live, make_keys(live)


def test_drift_in_one_feature_of_one_tenant_alerts_only_there(server: tuple[Live, Keys]) -> None:
    live, keys = server
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rng = np.random.default_rng(42)
    with client(live, keys.engineer) as c:
        _setup(c, 1)
        # day 3, tenant acme, feature x: +1.5 standard deviations
        _send(
            c,
            "/models/shop/inferences",
            _rows(rng, start, 6, 400, lambda t, d: 1.5 if (t, d) == ("acme", 3) else 0.0),
        )
        monitor = {
            "name": "shop-drift",
            "model": "shop",
            "kind": "feature_drift",
            "reference": "base",
            "alpha": 0.01,
        }
        assert c.post("/monitors", json=monitor).status_code == 201
        r = c.post(
            "/monitors/shop-drift/backfill",
            json={"start": start.isoformat(), "end": (start + 6 * DAY).isoformat()},
        )
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json())
        assert job["state"] == "done" and job["done"] == job["total"] == 6
        assert job["result"] == {"windows": 6, "failed": 0}
        alerts = _all_results(c, monitor="shop-drift", status="alert")
        day3 = (start + 3 * DAY).isoformat().replace("+00:00", "Z")
        where = {
            (a["window_start"].replace("+00:00", "Z"), a["tenant_id"], a["column"]) for a in alerts
        }
        assert where == {(day3, "acme", "x"), (day3, "*", "x")}
        overall = next(a for a in alerts if a["tenant_id"] == "*")
        assert overall["details"]["drivers"][0]["tenant_id"] == "acme"  # attribution
        judged = _all_results(c, monitor="shop-drift", column="x", tenant_id="acme")
        assert len(judged) == 6 and all(j["metric"] == "wasserstein" for j in judged)
        runs = c.get("/runs", params={"monitor": "shop-drift"}).json()
        assert runs["total"] == 6 and {x["trigger"] for x in runs["items"]} == {"backfill"}
    # a tenant-scoped key sees its own tenant's results only
    with client(live, keys.acme) as scoped:
        mine = _all_results(scoped, monitor="shop-drift")
        assert mine and {m["tenant_id"] for m in mine} == {"acme"}


def test_no_drift_stays_within_the_nominal_false_alarm_rate(server: tuple[Live, Keys]) -> None:
    live, keys = server
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with client(live, keys.engineer) as c:
        _setup(c, 2)
        _send(c, "/models/shop/inferences", _rows(np.random.default_rng(7), start, 8, 300))
        monitor = {"name": "calm", "model": "shop", "kind": "feature_drift", "reference": "base"}
        assert c.post("/monitors", json=monitor).status_code == 201
        r = c.post(
            "/monitors/calm/backfill",
            json={"start": start.isoformat(), "end": (start + 8 * DAY).isoformat()},
        )
        assert r.status_code == 202
        assert wait_job(c, r.json())["state"] == "done"
        results = [x for x in _all_results(c, monitor="calm") if x["column"]]
        judged = [x for x in results if x["status"] in ("ok", "alert")]
        alerts = [x for x in judged if x["status"] == "alert"]
        n, alpha = len(judged), 0.05
        assert n == 8 * 4 * 3  # days x segments (all + 3 tenants) x columns
        # binomial(n, alpha): mean 4.8, sd 2.1 -> allow mean + 3 sd
        assert len(alerts) <= n * alpha + 3 * (n * alpha * (1 - alpha)) ** 0.5, alerts


def test_late_rows_change_a_past_window_after_the_next_run(
    scheduled: tuple[Live, Keys],
) -> None:
    live, keys = scheduled
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - 4 * DAY  # inside the late-data lookback (7 days)
    with client(live, keys.engineer) as c:
        _setup(c, 3)
        _send(c, "/models/shop/inferences", _rows(np.random.default_rng(5), start, 3, 300))
        monitor = {
            "name": "late",
            "model": "shop",
            "kind": "feature_drift",
            "reference": "base",
            "alpha": 0.01,
            "columns": ["x"],
        }
        assert c.post("/monitors", json=monitor).status_code == 201
        window = start + DAY
        r = c.post("/monitors/late/run", json={"window_start": window.isoformat()})
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        before = _all_results(c, monitor="late", tenant_id="globex", column="x")
        assert [b["status"] for b in before] == ["ok"]
        # rows of that (already evaluated) day arrive late, shifted for globex
        late = [
            row
            for row in _rows(
                np.random.default_rng(6),
                window,
                1,
                600,
                lambda t, d: 2.0 if t == "globex" else 0.0,
                prefix="late",
            )
            if row["tenant_id"] == "globex"
        ]
        _send(c, "/models/shop/inferences", late)
        deadline = time.monotonic() + 300  # a tick comes each second; a loaded machine is slow
        while time.monotonic() < deadline:
            after = _all_results(c, monitor="late", tenant_id="globex", column="x")
            if after and after[0]["status"] == "alert":
                break
            time.sleep(0.5)
        assert [a["status"] for a in after] == ["alert"], [
            (a["window_start"], a["metric"], a["model_version"]) for a in after
        ]  # the scheduler re-ran the window
        assert after[0]["details"]["n_current"] > before[0]["details"]["n_current"]
        runs = c.get("/runs", params={"monitor": "late"}).json()["items"]
        assert Counter(
            r["trigger"] for r in runs if r["window_start"].startswith(window.date().isoformat())
        ) == {"manual": 1, "late": 1}


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class TickCounter:
    """Counts the scheduler's completed ticks per monitor (the real ``MonitorService.tick``
    runs; this only counts), so "a few ticks ran nothing" is a condition, not a sleep."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.done: Counter[str] = Counter()
        real = MonitorService.tick

        def counting(service: MonitorService, name: str) -> list[RunSummary]:
            try:
                return real(service, name)
            finally:
                self.done[name] += 1

        monkeypatch.setattr(MonitorService, "tick", counting)

    def wait(self, name: str, more: int) -> None:
        """Until ``more`` ticks of ``name`` have completed from now (a generous deadline)."""
        target = self.done[name] + more
        deadline = time.monotonic() + 300
        while self.done[name] < target:
            assert time.monotonic() < deadline, f"{name}: {self.done[name]} ticks, not {target}"
            time.sleep(0.1)


def test_restart_evaluates_each_missed_window_exactly_once(
    tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = TickCounter(monkeypatch)
    settings = make_settings(tmp_path, metadata_url, scheduler_tick_seconds=1)
    hour0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    clock = FakeClock(hour0 + timedelta(minutes=30))

    with serve(settings, clock=clock) as live:
        keys = make_keys(live)
        with client(live, keys.engineer) as c:
            _setup(c, 4)
            _send(c, "/models/shop/inferences", _rows(np.random.default_rng(8), hour0 - DAY, 1, 50))
            monitor = {
                "name": "hourly",
                "model": "shop",
                "kind": "feature_drift",
                "reference": "base",
                "window": "hour",
            }
            assert c.post("/monitors", json=monitor).status_code == 201
            ticks.wait("hourly", 3)  # a few ticks: the first window is still open
            assert c.get("/runs", params={"monitor": "hourly"}).json()["total"] == 0
    # down for five windows (plus the lateness grace), then up again
    clock.now = hour0 + timedelta(hours=5, minutes=15)
    with serve(settings, clock=clock) as live, client(live, keys.viewer) as c:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            runs = c.get("/runs", params={"monitor": "hourly", "limit": 100}).json()
            if runs["total"] >= 5:
                break
            time.sleep(0.3)
        ticks.wait("hourly", 3)  # more ticks must not run anything again
        runs = c.get("/runs", params={"monitor": "hourly", "limit": 100}).json()["items"]
    starts = sorted(r["window_start"] for r in runs)
    expected = [(hour0 + timedelta(hours=h)) for h in range(5)]
    assert [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in starts] == expected
    assert Counter(r["trigger"] for r in runs) == {"schedule": 1, "catchup": 4}
    assert all(r["status"] == "ok" for r in runs)
    by_start = sorted(runs, key=lambda r: r["id"])
    assert [r["window_start"] for r in by_start] == starts  # oldest first


def test_bad_config_is_refused_naming_the_field(server: tuple[Live, Keys]) -> None:
    live, keys = server
    with client(live, keys.engineer) as c:
        _setup(c, 5)
        r = c.post(
            "/monitors",
            json={
                "name": "bad",
                "model": "shop",
                "kind": "feature_drift",
                "reference": "base",
                "window": "fortnight",
            },
        )
        assert r.status_code == 422
        assert any(e["loc"] == ["window"] for e in r.json()["error"]["errors"])
        r = c.post(
            "/monitors",
            json={
                "name": "bad",
                "model": "shop",
                "kind": "feature_drift",
                "reference": "base",
                "columns": ["nope"],
                "methods": {"plan": "ks"},
            },
        )
        assert r.status_code == 422, r.text
        locs = [e["loc"] for e in r.json()["error"]["errors"]]
        assert ["columns", 0] in locs and ["methods", "plan"] in locs
        r = c.post(
            "/monitors",
            json={
                "name": "bad",
                "model": "shop",
                "kind": "feature_drift",
                "reference": "base",
                "methods": ["no_such_test"],
            },
        )
        assert r.status_code == 422 and "no_such_test" in r.text
        r = c.post("/monitors", json={"name": "bad", "model": "shop", "kind": "feature_drift"})
        assert r.status_code == 422 and "reference" in r.text


def test_apply_dry_run_then_apply_versions_and_defaults(server: tuple[Live, Keys]) -> None:
    live, keys = server
    with client(live, keys.engineer) as c:
        _setup(c, 6)
        proposal = c.get("/models/shop/monitor-defaults").json()
        names = [m["name"] for m in proposal["monitors"]]
        assert "shop-feature-drift" in names and "shop-performance" in names
        body = {"monitors": proposal["monitors"], "dry_run": True}
        r = c.post("/monitors/apply", json=body).json()
        assert {x["action"] for x in r["changes"]} == {"create"}
        assert c.get("/monitors").json() == []
        body["dry_run"] = False
        c.post("/monitors/apply", json=body)
        assert sorted(m["name"] for m in c.get("/monitors").json()) == sorted(names)
        changed = [dict(m) for m in proposal["monitors"]]
        changed[0]["alpha"] = 0.01
        r = c.post("/monitors/apply", json={"monitors": changed, "dry_run": True}).json()
        actions = {x["name"]: (x["action"], x["diff"]) for x in r["changes"]}
        assert actions[changed[0]["name"]] == ("update", {"alpha": [0.05, 0.01]})
        c.post("/monitors/apply", json={"monitors": changed})
        versions = c.get(f"/monitors/{changed[0]['name']}/versions").json()
        assert [v["version"] for v in versions] == [1, 2] and versions[1]["actor"].startswith(
            "key:"
        )
