"""Dashboard speed: server time per page on the demo, and the alert list in Chromium.

1. ``pages``: a page load as the browser asks the server for it: the page router's callback
   (the layout for the URL) plus the page's data callback (the alert list has none: it renders
   in its layout); both timed over loopback HTTP against a real server (uvicorn + the mounted
   Dash app), p50 and p95 over repeated loads. "cold" is the first load, before the model and
   feature read models are cached (memoised by the results' version, see ``monitor.queries``).
2. ``alert-list``: 10,000 alerts in a store, ``/alerts?state=all`` loaded in headless
   Chromium until its 50th row shows: p50 and p95 of 10 loads (after 2 warm-up loads), target
   ≤ 1 s; then the same store served by the previous list (``--previous``, the commit before
   the paginated list, run from ``git archive`` in a temp folder), one load, given up after
   ``--previous-timeout`` seconds.

    python benchmarks/dashboard.py                    # both; builds a 90-day demo in a temp dir
    python benchmarks/dashboard.py --data-dir data    # reuses an existing demo build
    python benchmarks/dashboard.py --only alert-list  # the list only (no demo build)

The last line is one JSON object of the figures, with the machine's load average.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_figures, repeated  # noqa: E402
from monitor import demo_scenario  # noqa: E402
from monitor.accounts import Accounts  # noqa: E402
from monitor.queries import alert_store  # noqa: E402
from monitor.service import Services  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from tests.dashboard.many_alerts import add_alerts  # noqa: E402
from tests.support import free_port, live_server  # noqa: E402

# the last commit whose alert list rendered every row (up to 500) as Dash components
PREVIOUS_LIST = "a2b80e2"
LIST_READY = "#alerts-table tbody tr:nth-child(50)"
PASSWORD = demo_scenario.DEMO_PASSWORD


def _router(path: str, search: str = "") -> dict[str, Any]:
    return {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }


def _data(page: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": f"{page}-content.children",
        "outputs": {"id": f"{page}-content", "property": "children"},
        "inputs": [{"id": f"{page}-params", "property": "data", "value": params}]
        + ([{"id": "alert-version", "property": "data", "value": 0}] if page == "alert" else []),
        "changedPropIds": [f"{page}-params.data"],
        "state": [],
    }


def pages(alert_id: int) -> list[tuple[str, str, str, str | None, dict[str, Any]]]:
    """(label, path, search, data-callback page prefix or None, params)."""
    return [
        ("overview", "/", "", "overview", {}),
        ("model (all tenants, 30d)", "/models/churn", "", "model", {"model": "churn"}),
        (
            "model (globex, 90d)",
            "/models/churn",
            "?tenant=globex&range=90d",
            "model",
            {"model": "churn", "tenant": "globex", "range": "90d"},
        ),
        ("model basket_value", "/models/basket_value", "", "model", {"model": "basket_value"}),
        (
            "feature (globex)",
            "/models/churn/features/discount_rate",
            "?tenant=globex",
            "feature",
            {"model": "churn", "feature": "discount_rate", "tenant": "globex"},
        ),
        ("alerts", "/alerts", "", None, {}),
        ("alerts (all, page 2)", "/alerts", "?state=all&page=2", None, {}),
        ("alert", f"/alerts/{alert_id}", "", "alert", {"alert_id": str(alert_id)}),
        ("kpis", "/kpis", "", "kpis", {}),
        ("kpis/globex", "/kpis/globex", "", "kpis-t", {"tenant": "globex"}),
        ("monitors", "/monitors", "", "monitors", {}),
    ]


def page_times(
    data: Path | None, days: int, runs: int
) -> list[tuple[str, float, float, float, int]]:
    """(label, cold ms, p50 ms, p95 ms, bytes) per page of the demo."""
    data = data or Path(tempfile.mkdtemp(prefix="dw-bench-")) / "data"
    settings = Settings(data_dir=data, port=free_port(), alert_worker=False)
    with live_server(settings) as live:
        if live.services.metadata.get_model(demo_scenario.BASKET_MODEL.name) is None:
            print(f"building a {days}-day demo in {data} ...", flush=True)
            t0 = time.perf_counter()
            demo_scenario.build(live.services, days=days, webhook_url=None)
            print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)
        firing = alert_store(live.services).list_alerts(state="firing", limit=1)
        alert_id = int(firing[0].id or 0) if firing else 1
        client = httpx.Client(base_url=live.url, timeout=60)
        token = re.search(r"name=.csrf_token. value=.([A-Za-z0-9_-]+).", client.get("/login").text)
        assert token, "no CSRF token on the log-in page"
        r = client.post(
            "/login",
            data={
                "username": "engineer",
                "password": PASSWORD,
                "next": "/",
                "csrf_token": token[1],
            },
        )
        assert r.status_code == 302, "log-in failed"
        rows = []
        for label, path, search, prefix, params in pages(alert_id):
            times = []
            for i in range(runs + 2):
                t0 = time.perf_counter()
                a = client.post("/_dash-update-component", json=_router(path, search))
                b = a
                if prefix is not None:
                    b = client.post("/_dash-update-component", json=_data(prefix, params))
                dt = (time.perf_counter() - t0) * 1000
                assert a.status_code == 200 and b.status_code == 200, (label, a.text, b.text)
                assert "-error" not in b.text, (label, b.text[:500])
                if i == 0:
                    cold = dt  # first load: read models not cached yet
                if i >= 2:  # two warm-up loads
                    times.append(dt)
            times.sort()
            p50 = statistics.median(times)
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            rows.append((label, cold, p50, p95, len(a.content) + len(b.content)))
    return rows


def _browser_loads(url: str, loads: int, warmup: int, timeout_s: float) -> list[float | None]:
    """Seconds from navigation to the 50th row of the alert list, per load (None: gave up)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    out: list[float | None] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(f"{url}/login")
        page.fill("#login-username", "engineer")
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{url}/")
        for i in range(warmup + loads):
            t0 = time.perf_counter()
            try:
                page.goto(f"{url}/alerts?state=all", timeout=timeout_s * 1000)
                page.wait_for_selector(LIST_READY, timeout=timeout_s * 1000)
                dt: float | None = time.perf_counter() - t0
            except PlaywrightTimeout:
                dt = None
            if i >= warmup:
                out.append(dt)
            if dt is None:
                break
        browser.close()
    return out


PREVIOUS_SERVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from monitor.settings import Settings
    from tests.support import live_server
    settings = Settings(data_dir=Path(sys.argv[1]), port=int(sys.argv[2]), alert_worker=False,
                        scheduler_enabled=False)
    with live_server(settings):
        print("ready", flush=True)
        time.sleep(24 * 3600)
    """
)


def _previous_list(rev: str, data: Path, timeout_s: float) -> float | None:
    """One load of the alert list as commit ``rev`` served it (None: over ``timeout_s``)."""
    tree = Path(tempfile.mkdtemp(prefix="dw-previous-"))
    archive = subprocess.run(
        ["git", "archive", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.Popen(
        [sys.executable, "-c", PREVIOUS_SERVER, str(data), str(port)],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        (dt,) = _browser_loads(f"http://127.0.0.1:{port}", 1, 0, timeout_s)
        return dt
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tree, ignore_errors=True)


def alert_list_times(
    n: int, loads: int, previous: str | None, previous_timeout: float
) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="dw-alerts-")) / "data"
    settings = Settings(
        data_dir=data, port=free_port(), alert_worker=False, scheduler_enabled=False
    )
    services = Services.open(settings)
    try:
        add_alerts(services, n, datetime(2026, 11, 18, 14, tzinfo=UTC))
        Accounts(services.metadata).create("engineer", PASSWORD, "engineer", None, actor="bench")
    finally:
        services.close()
    with live_server(settings) as live:
        times = [t for t in _browser_loads(live.url, loads, 2, 120) if t is not None]
    times.sort()
    out: dict[str, Any] = {
        "alerts": n,
        "loads": len(times),
        "p50_s": round(statistics.median(times), 3),
        "p95_s": round(times[max(0, round(0.95 * len(times)) - 1)], 3),
    }
    if previous:
        print(f"the previous list ({previous}), one load, up to {previous_timeout:.0f} s ...")
        prev = _previous_list(previous, data, previous_timeout)
        out["previous_rev"] = previous
        out["previous_s"] = None if prev is None else round(prev, 1)
    shutil.rmtree(data.parent, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="reuse a built demo (else build one)")
    ap.add_argument("--days", type=int, default=90, help="days of demo traffic to build")
    ap.add_argument("--runs", type=int, default=30, help="loads per page")
    ap.add_argument("--only", choices=["pages", "alert-list"], help="run one part only")
    ap.add_argument("--alerts", type=int, default=10_000, help="alerts in the list's store")
    ap.add_argument("--loads", type=int, default=10, help="timed browser loads of the list")
    ap.add_argument(
        "--previous", default=PREVIOUS_LIST, help="commit of the previous list ('' to skip)"
    )
    ap.add_argument("--previous-timeout", type=float, default=240, help="seconds")
    ap.add_argument("--repeat", type=int, default=1, help="run N times, print the medians")
    args = ap.parse_args()
    print_figures(repeated(lambda: _run(args), args.repeat), args.repeat)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if args.only in (None, "pages"):
        rows = page_times(args.data_dir, args.days, args.runs)
        width = max(len(r[0]) for r in rows)
        print(f"\n{'page':<{width}}  {'cold ms':>7}  {'p50 ms':>7}  {'p95 ms':>7}  {'KiB':>6}")
        for label, cold, p50, p95, size in rows:
            flag = "" if p95 <= 300 else "  (over 300 ms)"
            print(
                f"{label:<{width}}  {cold:7.1f}  {p50:7.1f}  {p95:7.1f}  {size / 1024:6.1f}{flag}"
            )
        figures["pages_p95_ms"] = {r[0]: round(r[3], 1) for r in rows}
    if args.only in (None, "alert-list"):
        lst = alert_list_times(
            args.alerts, args.loads, args.previous or None, args.previous_timeout
        )
        prev = lst.get("previous_s", "skipped")
        prev_text = (
            f"> {args.previous_timeout:.0f} s (gave up)"
            if "previous_s" in lst and prev is None
            else f"{prev} s"
            if isinstance(prev, float)
            else str(prev)
        )
        print(
            f"\nalert list in Chromium, {lst['alerts']:,} alerts, /alerts?state=all to its 50th row"
        )
        print(f"{'code':<28}  {'loads':>5}  {'p50 s':>6}  {'p95 s':>6}")
        print(
            f"{'this (50 per page)':<28}  {lst['loads']:>5}  {lst['p50_s']:6.2f}  {lst['p95_s']:6.2f}"
        )
        if "previous_rev" in lst:
            print(
                f"{'previous ' + lst['previous_rev'] + ' (500 rows)':<28}  {1:>5}  {prev_text:>14}"
            )
        flag = "meets" if lst["p95_s"] <= 1.0 else "misses"
        print(f"p95 {lst['p95_s']:.2f} s {flag} the 1 s target")
        figures["alert_list"] = lst
    figures["cpus"] = os.cpu_count()
    return figures


if __name__ == "__main__":
    main()
