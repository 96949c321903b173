"""The ingest API's lake copy (storage.lake_mirror, the ``lake_dir`` setting): the lake holds
exactly the rows the store accepted, once each, across retries, group commits, a process
killed between COMMIT and the lake write, a failed lake write and ``lake export`` of the same
lake; profiles computed from the lake equal the embedded ones."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from storage import lake_mirror
from storage.lake import LakeError, export, pending_batches, read_lake
from storage.lake_mirror import LakeMirror
from storage.lake_profiles import duckdb_profile_dates, list_partitions
from storage.logstore import LogStore
from storage.profile_kernel import ProfileSpec
from storage.profiles import ProfileStore
from storage.types import FeatureSpec, ModelSchema
from tests.storage.test_profile_engines import assert_same_profiles

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 21, tzinfo=UTC)  # rows span three dates
TS = pa.timestamp("us", tz="UTC")
SCHEMA = ModelSchema(
    "binary",
    (FeatureSpec("x", "numeric"), FeatureSpec("plan", "categorical")),
    scores=("score",),
)
SPEC = ProfileSpec({"x": ((-1.0, 0.0, 1.0),), "score": ((0.25, 0.5, 0.75),)}, ("plan",))
KEYS = {"inferences": "request_id", "labels": "request_id", "events": "event_id"}


def rows(tag: str, n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "request_id": [f"{tag}-{i}" for i in range(n)],
            "ts": pa.array([T0 + timedelta(minutes=float(m)) for m in rng.uniform(0, 3000, n)], TS),
            "tenant_id": rng.choice(["acme", "globex"], n),
            "model_version": rng.choice(["v1", "v2"], n),
            "x": rng.normal(0, 1, n),
            "plan": rng.choice(["free", "pro", "team"], n),
            "prediction": pa.array(rng.integers(0, 2, n), pa.int32()),
            "score": rng.random(n),
        }
    )


def labels(tag: str, n: int) -> pa.Table:
    return pa.table(
        {
            "request_id": [f"{tag}-{i}" for i in range(n)],
            "label": pa.array([i % 2 for i in range(n)], pa.int32()),
            "tenant_id": pa.array([None if i % 3 == 0 else "acme" for i in range(n)], pa.string()),
        }
    )


def events(tag: str, n: int) -> pa.Table:
    return pa.table(
        {
            "event_id": [f"{tag}-{i}" for i in range(n)],
            "tenant_id": ["acme"] * n,
            "ts": pa.array([T0 + timedelta(hours=i) for i in range(n)], TS),
            "name": ["conversion"] * n,
            "value": [1.0] * n,
        }
    )


def _sorted(t: pa.Table, kind: str) -> list[dict]:
    t = t.drop_columns([c for c in ("model", "date") if c in t.column_names])
    return sorted(t.to_pylist(), key=lambda r: (r["tenant_id"] or "", r[KEYS[kind]]))


def assert_lake_equals_store(store: LogStore, lake: Path, model: str = "churn") -> int:
    """Every row of the store's tables is in the lake exactly once, column for column."""
    total = 0
    for kind, table in (
        ("inferences", f"inferences__{model}"),
        ("labels", f"labels__{model}"),
        ("events", "events"),
    ):
        want = _sorted(store.query_arrow(f'SELECT * FROM "{table}"'), kind)
        got_t = read_lake(lake, kind, None if kind == "events" else model)
        got = _sorted(got_t, kind) if got_t.num_columns else []
        assert len(got) == len(want), (kind, len(got), len(want))
        assert got == want, kind
        total += len(want)
    return total


def open_store(path: Path, lake: Path | None = None, **kw: object) -> LogStore:
    store = LogStore(path, **kw)  # type: ignore[arg-type]
    store.ensure_model("churn", SCHEMA)
    if lake is not None:
        LakeMirror.open(store, lake)
    return store


def test_accepted_rows_reach_the_lake_once_across_retries_and_tenants(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_store(tmp_path / "s.duckdb", lake) as store:
        first = rows("r", 300, 1)
        assert store.append_inferences("churn", first).accepted == 300
        files = sorted(lake.rglob("ingest-*.parquet"))
        assert {f.parent.name for f in files} == {
            "date=2026-03-01",
            "date=2026-03-02",
            "date=2026-03-03",
        }
        # a retry, and the same ids for the other tenant: only the new (tenant, id) pairs
        other = first.set_column(2, "tenant_id", pa.array(["initech"] * 300))
        assert store.append_inferences("churn", first).accepted == 0
        assert sorted(lake.rglob("ingest-*.parquet")) == files  # control: no file for a retry
        assert store.append_inferences("churn", pa.concat_tables([first, other])).accepted == 300
        assert store.append_labels("churn", labels("r", 90)).accepted == 90
        assert store.append_labels("churn", labels("r", 90)).accepted == 0
        assert store.append_events(events("e", 30)).accepted == 30
        assert assert_lake_equals_store(store, lake) == 600 + 90 + 30


def test_group_commits_of_concurrent_writers_are_copied_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_store(tmp_path / "s.duckdb", lake, group_commit=True) as store:
        universe = rows("u", 2000, 2)
        assert store.tenant_counts("churn") == {}  # in memory from here on

        def worker(w: int) -> None:
            rng = np.random.default_rng(w)
            for _ in range(20):
                start = int(rng.integers(0, 1900))
                store.append_inferences("churn", universe.slice(start, int(rng.integers(5, 100))))
                if w == 0:
                    store.append_labels("churn", labels("u", int(rng.integers(1, 50))))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.commit_stats()["appends"] > store.commit_stats()["commits"]  # shared
        assert assert_lake_equals_store(store, lake) > 500
        # the row counts in memory (GET /models/{model}) follow the mirror's commits too
        t = store.query_arrow("SELECT tenant_id, count(*) AS n FROM inferences__churn GROUP BY 1")
        truth = dict(zip(t["tenant_id"].to_pylist(), t["n"].to_pylist(), strict=True))
        assert store.tenant_counts("churn") == truth


def test_the_store_without_the_setting_has_no_outbox(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.duckdb") as store:
        store.append_inferences("churn", rows("r", 10, 3))
        got = store.query_arrow(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'lake_outbox'"
        )
        assert got["n"][0].as_py() == 0


_CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from storage import lake_mirror
    from tests.storage.test_lake_mirror import open_store, rows

    data, lake, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    real = lake_mirror.write_table_atomic
    calls = 0

    def dying(path, table):
        global calls
        calls += 1
        if calls == kill_at:  # after the store's COMMIT, before this lake file exists
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, table)

    lake_mirror.write_table_atomic = dying
    store = open_store(data, lake)
    for b in range(20):
        store.append_inferences("churn", rows(f"b{b}", 50, b))
    """
)


def test_a_process_killed_between_commit_and_lake_write_is_repaired_at_start(
    tmp_path: Path,
) -> None:
    """A real SIGKILL after COMMIT and before the batch's lake file: the next start copies
    the batch (no loss), and a batch copied before the kill but still in the outbox is
    copied again over its own file (no duplicate)."""
    data, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, str(data), str(lake), "14"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    with LogStore(data) as store:  # control: the lake really lags behind the store
        stored = store.count_inferences("churn")
        assert 0 < read_lake(lake, "inferences", "churn").num_rows < stored
        assert pending_batches(store) >= 1
    with open_store(data, lake) as store:  # the server's start: recovery
        assert pending_batches(store) == 0
        assert assert_lake_equals_store(store, lake) == stored
        # and streaming goes on, copied as usual
        store.append_inferences("churn", rows("after", 40, 99))
        assert assert_lake_equals_store(store, lake) == stored + 40


def test_a_failed_lake_write_keeps_the_batch_and_retries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    real = lake_mirror.write_table_atomic
    fail = {"on": True}

    def flaky(path: Path, table: pa.Table) -> None:
        if fail["on"]:
            raise OSError(28, "No space left on device")
        real(path, table)

    monkeypatch.setattr(lake_mirror, "write_table_atomic", flaky)
    with open_store(tmp_path / "s.duckdb") as store:
        now = [0.0]
        LakeMirror.open(store, lake, retry_seconds=10, clock=lambda: now[0])
        assert store.append_inferences("churn", rows("a", 100, 5)).accepted == 100  # stored
        assert not list(lake.rglob("ingest-*.parquet"))
        assert pending_batches(store) == 1
        fail["on"] = False
        now[0] = 9.0  # not yet due: the next append leaves it waiting
        store.append_inferences("churn", rows("b", 10, 6))
        assert pending_batches(store) == 2  # "a" waiting, "b" copied (cleared lazily)
        assert read_lake(lake, "inferences", "churn").num_rows == 10
        now[0] = 10.0  # due: the next append retries it
        store.append_inferences("churn", rows("c", 10, 7))
        assert assert_lake_equals_store(store, lake) == 120


def test_export_into_the_mirrored_lake_holds_each_row_once(tmp_path: Path) -> None:
    """History from before the setting comes by ``lake export``; rows the copy already wrote
    (same dates) are left out of export.parquet, so the lake holds each row once."""
    data, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    with open_store(data) as store:
        store.append_inferences("churn", rows("old", 400, 7))
    with open_store(data, lake) as store:
        store.append_inferences("churn", rows("new", 400, 8))  # the same three dates
        assert read_lake(lake, "inferences", "churn").num_rows == 400
    with open_store(data) as store:
        assert pending_batches(store) == 1  # the last batch, cleared lazily
        with pytest.raises(LakeError, match=r"1 ingested batch.*DRIFTWATCH_LAKE_DIR"):
            export(store, lake, ["churn"])
    with open_store(data, lake) as store:
        export(store, lake, ["churn"])
        assert assert_lake_equals_store(store, lake) == 800
        export(store, lake, ["churn"])  # idempotent
        assert assert_lake_equals_store(store, lake) == 800


def test_profiles_from_the_mirrored_lake_equal_the_embedded_ones(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with open_store(tmp_path / "s.duckdb", lake) as store:
        for b in range(5):
            store.append_inferences("churn", rows(f"p{b}", 300, 10 + b))
        ps = ProfileStore(store)
        ps.register("churn", SPEC)
        ps.ensure("churn", T0 - timedelta(hours=21), T0 + timedelta(days=3))
        want = ps.profile_rows("churn", T0 - timedelta(hours=21), T0 + timedelta(days=3))
    parts = list_partitions(str(lake), "churn")
    got = pa.concat_tables([r for _, r in duckdb_profile_dates(parts, SPEC)])
    assert want.num_rows > 100
    assert_same_profiles(got, want)


def test_cli_lake_export_copies_waiting_batches_first_with_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``driftwatch lake export`` with the server's DRIFTWATCH_LAKE_DIR copies what waits in
    the outbox, then exports; without it, it refuses and says how."""
    from typer.testing import CliRunner

    from monitor.cli import app

    data_dir, lake = tmp_path / "data", tmp_path / "lake"
    data_dir.mkdir()
    with open_store(data_dir / "driftwatch.duckdb") as store:
        store.append_inferences("churn", rows("old", 200, 20))
    with open_store(data_dir / "driftwatch.duckdb", lake) as store:
        store.append_inferences("churn", rows("new", 200, 21))  # its outbox rows wait
    args = ["lake", "export", "--model", "churn", "--lake", str(lake), "--quiet"]
    args += ["--data-dir", str(data_dir)]
    monkeypatch.delenv("DRIFTWATCH_LAKE_DIR", raising=False)
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "DRIFTWATCH_LAKE_DIR" in refused.output
    monkeypatch.setenv("DRIFTWATCH_LAKE_DIR", str(lake))
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "inferences: 200 rows" in done.output  # the mirrored 200 are left out
    with open_store(data_dir / "driftwatch.duckdb") as store:
        assert pending_batches(store) == 0
        assert assert_lake_equals_store(store, lake) == 400
