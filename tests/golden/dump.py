"""Golden dump of the demo: metric results, alert states and notifications as canonical JSON.

What "same behaviour" means for a refactoring (issue 15): build the 14-day demo at a fixed
clock, then compare every stored metric result (without ids and computation times), every
alert's state and times, the notifications and the deliveries queued, before and after.

    python -m tests.golden.dump dump OUT.json [--days 14 --scale 0.8]
    python -m tests.golden.dump diff A.json B.json      # exit 1 on a difference
    python -m tests.golden.dump refresh                 # rewrite the committed digest

The suite checks a smaller build on every run without building it again: the Wednesday build
of ``tests/monitor/test_demo_weekdays.py`` (8 days, scale 0.4, no webhook, at the same clock)
compares the per-section digests of its dump with :data:`DIGEST_FILE`. On a deliberate change
of results, refresh that file and say why in the commit.

It reads the metadata database with the standard library's ``sqlite3``: table names and
columns are part of the contract, so the reader does not depend on the Python API being
refactored (only ``_build`` does). Floats keep 12 significant digits (DuckDB's parallel sums
may differ in the last bits between runs).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import re
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 18, 14, 0, tzinfo=UTC)  # the browser tests' DEMO_NOW
DIGITS = 12


# The committed digest of the suite's build (see the module docstring) and its parameters.
DIGEST_FILE = Path(__file__).with_name("demo_wed_8d.json")
# ... and the full dump of its gating sections: the digests are exact, but a different CPU
# (numpy's and OpenBLAS's SIMD kernels, DuckDB's parallel sums) moves the last bits of a
# float, which can flip its 12th digit; the dump lets the check tell that from a change.
DUMP_FILE = Path(__file__).with_name("demo_wed_8d.dump.json.gz")
# floats agree to this relative difference; a number printed in a text (an alert's
# summary) to one unit of its last printed digit
REL_TOL = 1e-9
DIGEST_BUILD = {"days": 8, "scale": 0.4, "webhook": False}
GATING = ("metric_results", "alerts", "notifications", "deliveries")


def _build(data_dir: Path, days: int, scale: float, webhook: bool = True) -> Path:
    from monitor import demo_scenario
    from monitor.service import Services
    from monitor.settings import Settings

    settings = Settings(data_dir=data_dir, database_url="", alert_allowed_hosts="127.0.0.1")
    services = Services.open(settings, clock=lambda: NOW)  # no wall time anywhere
    try:
        demo_scenario.build(
            services,
            now=NOW,
            days=days,
            scale=scale,
            # outbox rows are written, never sent
            webhook_url="http://127.0.0.1:9/hook" if webhook else None,
        )
        finish(services, NOW)
    finally:
        services.close()
    return data_dir / "metadata.sqlite"


def finish(services: Any, now: datetime) -> None:
    """What follows the demo build before a dump: the missing-data check at ``now``, then
    every alert group flushed (a day on, every group's group_wait has passed)."""
    from monitor.composition import of

    engine = of(services).alerting.engine
    engine.check_missing(now)
    engine.flush_due(now + timedelta(days=1))


def check_digest(db: Path) -> None:
    """Compare the gating sections of ``db``'s dump with the committed build: equal digests
    (:data:`DIGEST_FILE`), or else every row equal to :data:`DUMP_FILE`'s but for float
    noise (:func:`same`). An AssertionError names what differs and how to refresh."""
    doc = dump(db)
    got = digests(doc)
    want = json.loads(DIGEST_FILE.read_text())["sections"]
    changed = [k for k in GATING if got[k] != want.get(k)]
    if not changed:
        return
    ref = json.loads(gzip.decompress(DUMP_FILE.read_bytes()))
    problems = [p for k in changed for p in _section_differences(k, ref[k], doc[k])]
    assert not problems, (
        f"the demo's stored {', '.join(changed)} differ from {DUMP_FILE.name} (the 8-day "
        "demo at the fixed clock, committed). A refactoring must not change them: compare "
        "`python -m tests.golden.dump dump` before and after with `... diff`. If the change "
        "is deliberate, run `python -m tests.golden.dump refresh` and say why in the "
        f"commit. Now: {json.dumps({k: got[k] for k in GATING})}\n" + "\n".join(problems[:8])
    )


def _section_differences(name: str, want: list[Any], got: list[Any]) -> list[str]:
    if len(want) != len(got):
        return [f"{name}: {len(got)} rows, the committed build has {len(want)}"]
    return [
        f"{name} row {i}: committed {canonical(w)[:400]}\n    now {canonical(g)[:400]}"
        for i, (w, g) in enumerate(zip(want, got, strict=True))
        if not same(w, g)
    ]


_NUMBER = re.compile(r"-?\d+(?:\.(\d+))?(?:e[-+]?\d+)?")


def same(a: Any, b: Any) -> bool:
    """Equal but for float noise: floats within :data:`REL_TOL` (relative), and numbers
    printed in texts within one unit of their last printed digit; all else exactly."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, int | float) and isinstance(b, int | float):
            return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str) and a != b:
        return _same_text(a, b)
    return bool(a == b)


def _same_text(a: str, b: str) -> bool:
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    for x, y in zip(_NUMBER.finditer(a), _NUMBER.finditer(b), strict=True):
        if x.group() == y.group():
            continue
        if "e" in x.group() or "e" in y.group():
            unit = abs(float(x.group())) * 1e-3  # an exponent form: its printed mantissa
        else:
            unit = 10.0 ** -max(len(x.group(1) or ""), len(y.group(1) or ""))
        if abs(float(x.group()) - float(y.group())) > unit * 1.01:
            return False
    return True


def refresh() -> dict[str, Any]:
    """Build the suite's demo (:data:`DIGEST_BUILD`) and rewrite :data:`DIGEST_FILE` and
    :data:`DUMP_FILE`."""
    with tempfile.TemporaryDirectory() as tmp:
        doc = dump(_build(Path(tmp) / "data", **DIGEST_BUILD))  # type: ignore[arg-type]
    out = {
        "build": {**DIGEST_BUILD, "now": NOW.isoformat()},
        "rows": {k: len(doc[k]) for k in GATING},
        "sections": {k: v for k, v in digests(doc).items() if k in GATING},
    }
    DIGEST_FILE.write_text(json.dumps(out, indent=2) + "\n")
    gating = {k: doc[k] for k in GATING}
    DUMP_FILE.write_bytes(gzip.compress(canonical(gating).encode(), 9, mtime=0))
    return out


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v) if math.isnan(v) or math.isinf(v) else float(f"{v:.{DIGITS}g}")
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_num(x) for x in v]
    return v


def _rows(con: sqlite3.Connection, sql: str, json_cols: tuple[str, ...] = ()) -> list[Any]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        d = dict(zip(names, r, strict=True))
        for c in json_cols:
            if d.get(c) is not None:
                d[c] = json.loads(d[c])
        out.append(_num(d))
    return out


def dump(db: Path) -> dict[str, list[Any]]:
    """The canonical content of a metadata database built by :func:`_build`."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        results = _rows(
            con,
            "SELECT source, source_name, kind, model, window_start, window_end, tenant_id, "
            "model_version, column_name, metric, value, threshold, status, details, "
            "definition_version FROM metric_results",
            ("details",),
        )
        results.sort(
            key=lambda r: (
                r["source"],
                r["source_name"],
                r["window_start"],
                r["tenant_id"],
                r["model_version"],
                r["column_name"],
                r["metric"],
            )
        )
        alerts = _rows(
            con,
            "SELECT fingerprint, rule, state, severity, tenant_id, model, labels, annotations, "
            "value, threshold, breach_streak, clear_streak, last_window_end, active_at, "
            "starts_at, ends_at, fired_at, resolved_at, context, acknowledged_by, group_key "
            "FROM alerts",
            ("labels", "annotations", "context"),
        )
        alerts.sort(key=lambda a: (a["fingerprint"], a["active_at"]))
        notes = _rows(
            con,
            "SELECT g.group_key, g.rule, n.status, n.fingerprints FROM alert_notifications n "
            "LEFT JOIN alert_groups g ON g.id = n.group_id",
            ("fingerprints",),
        )
        for n in notes:
            n["fingerprints"] = sorted(n["fingerprints"] or [])
        notes.sort(key=lambda n: json.dumps(n, sort_keys=True))
        deliveries = _rows(
            con,
            "SELECT c.name AS channel, d.event, d.status, count(*) AS n FROM alert_deliveries d "
            "JOIN alert_channels c ON c.id = d.channel_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        runs = _rows(
            con,
            "SELECT monitor, window_start, trigger, status, rows_scanned, results "
            "FROM monitor_runs ORDER BY monitor, window_start, trigger, id",
        )
    finally:
        con.close()
    return {
        "metric_results": results,
        "alerts": alerts,
        "notifications": notes,
        "deliveries": deliveries,
        # not gating: a refactoring may profile a range in fewer scans
        "runs (informational)": runs,
    }


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def digests(doc: dict[str, list[Any]]) -> dict[str, str]:
    """Per-section SHA-256 (16 hex digits) of the canonical JSON."""
    return {k: hashlib.sha256(canonical(v).encode()).hexdigest()[:16] for k, v in doc.items()}


def build_dump(days: int = 14, scale: float = 0.8) -> dict[str, list[Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        return dump(_build(Path(tmp) / "data", days, scale))


def diff(a: dict[str, list[Any]], b: dict[str, list[Any]], out: Any = sys.stdout) -> int:
    """Print what differs per section; the number of gating sections that differ."""
    bad = 0
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k, []), b.get(k, [])
        if x == y:
            print(f"{k}: identical ({len(x)} rows)", file=out)
            continue
        bad += not k.endswith("(informational)")
        print(f"{k}: DIFFERENT ({len(x)} vs {len(y)} rows)", file=out)
        sx, sy = {canonical(r) for r in x}, {canonical(r) for r in y}
        for r in sorted(sx - sy)[:5]:
            print("  only in A:", r[:300], file=out)
        for r in sorted(sy - sx)[:5]:
            print("  only in B:", r[:300], file=out)
    return bad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="build the demo and write its canonical dump")
    d.add_argument("out")
    d.add_argument("--days", type=int, default=14)
    d.add_argument("--scale", type=float, default=0.8)
    c = sub.add_parser("diff", help="compare two dumps (exit 1 when they differ)")
    c.add_argument("a")
    c.add_argument("b")
    sub.add_parser("refresh", help=f"rewrite {DIGEST_FILE.name}, the suite's committed digests")
    args = p.parse_args()
    if args.cmd == "refresh":
        print(json.dumps(refresh()))
        return
    if args.cmd == "dump":
        doc = build_dump(args.days, args.scale)
        text = canonical(doc)
        Path(args.out).write_text(text)
        print(json.dumps({"rows": {k: len(v) for k, v in doc.items()}, "sections": digests(doc)}))
        return
    a, b = (json.loads(Path(x).read_text()) for x in (args.a, args.b))
    sys.exit(1 if diff(a, b) else 0)


if __name__ == "__main__":
    main()
