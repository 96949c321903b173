"""Server time per dashboard page on the demo data: p50 and p95 over repeated loads.

A page load is what the browser asks the server for: the page router's callback (the layout
for the URL) plus the page's data callback; both are timed over loopback HTTP against a real
server (uvicorn + the mounted Dash app), so the numbers are an upper bound of server time.
"cold" is the first load, before the model and feature read models are cached (they are
memoised by the results' version, see ``monitor.queries``).

    python benchmarks/dashboard.py                    # builds a 90-day demo in a temp dir
    python benchmarks/dashboard.py --data-dir data    # reuses an existing demo build
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import demo_scenario  # noqa: E402
from monitor.queries import alert_store  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from tests.support import free_port, live_server  # noqa: E402


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


def pages(alert_id: int) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(label, path, search, data-callback page prefix, params)."""
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
        ("alerts", "/alerts", "", "alerts", {}),
        ("alert", f"/alerts/{alert_id}", "", "alert", {"alert_id": str(alert_id)}),
        ("kpis", "/kpis", "", "kpis", {}),
        ("kpis/globex", "/kpis/globex", "", "kpis-t", {"tenant": "globex"}),
        ("monitors", "/monitors", "", "monitors", {}),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="reuse a built demo (else build one)")
    ap.add_argument("--days", type=int, default=90, help="days of demo traffic to build")
    ap.add_argument("--runs", type=int, default=30, help="loads per page")
    args = ap.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="dw-bench-")) / "data"
    settings = Settings(data_dir=data, port=free_port(), alert_worker=False)
    with live_server(settings) as live:
        if live.services.metadata.get_model(demo_scenario.BASKET_MODEL.name) is None:
            print(f"building a {args.days}-day demo in {data} ...", flush=True)
            t0 = time.perf_counter()
            demo_scenario.build(live.services, days=args.days, webhook_url=None)
            print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)
        firing = alert_store(live.services).list_alerts(state="firing", limit=1)
        alert_id = int(firing[0].id or 0) if firing else 1
        client = httpx.Client(base_url=live.url, timeout=60)
        r = client.post(
            "/login",
            data={"username": "engineer", "password": demo_scenario.DEMO_PASSWORD, "next": "/"},
        )
        assert r.status_code == 302, "log-in failed"
        rows = []
        for label, path, search, prefix, params in pages(alert_id):
            times = []
            for i in range(args.runs + 2):
                t0 = time.perf_counter()
                a = client.post("/_dash-update-component", json=_router(path, search))
                b = client.post("/_dash-update-component", json=_data(prefix, params))
                dt = (time.perf_counter() - t0) * 1000
                assert a.status_code == 200 and b.status_code == 200, (label, a.text, b.text)
                assert '"error"' not in b.text or "-error" not in b.text, (label, b.text[:500])
                if i == 0:
                    cold = dt  # first load: read models not cached yet
                if i >= 2:  # two warm-up loads
                    times.append(dt)
            times.sort()
            p50 = statistics.median(times)
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            rows.append((label, cold, p50, p95, len(b.content)))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'page':<{width}}  {'cold ms':>7}  {'p50 ms':>7}  {'p95 ms':>7}  {'KiB':>6}")
    for label, cold, p50, p95, size in rows:
        flag = "" if p95 <= 300 else "  (over 300 ms)"
        print(f"{label:<{width}}  {cold:7.1f}  {p50:7.1f}  {p95:7.1f}  {size / 1024:6.1f}{flag}")


if __name__ == "__main__":
    main()
