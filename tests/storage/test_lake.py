"""The Parquet lake layout (storage.lake) and ``driftwatch lake export``: what is written is
read back equal to the store, partitioned as documented, with the table's column types;
re-running is idempotent; late rows reach their date's file; schema growth reads as NULL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from storage.lake import (
    EXPORT_FILE,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    LakeError,
    export,
    read_lake,
)
from storage.logstore import LogStore
from storage.types import FeatureSpec, ModelSchema

T0 = datetime(2026, 3, 1, 22, tzinfo=UTC)  # two hours before midnight: rows span dates
TS = pa.timestamp("us", tz="UTC")
SCHEMA = ModelSchema(
    "binary",
    (
        FeatureSpec("x", "numeric"),
        FeatureSpec("plan", "categorical"),
        FeatureSpec("mobile", "boolean"),
    ),
    scores=("score",),
)


def rows(n: int, seed: int, start: datetime = T0, hours: float = 60, prefix: str = "r") -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    x[:2] = [np.inf, -np.inf]
    secs = rng.uniform(0, hours * 3600, n)
    return pa.table(
        {
            "request_id": [f"{prefix}{seed}-{i}" for i in range(n)],
            "ts": pa.array([start + timedelta(seconds=float(s)) for s in secs], TS),
            "tenant_id": rng.choice(["acme", "globex"], n),
            "model_version": pa.array(rng.choice(["v1", "v2", None], n), pa.string()),
            "x": pa.array(x, pa.float64(), from_pandas=False),
            "plan": pa.array(rng.choice(np.array(["free", "pro", None], dtype=object), n)),
            "mobile": pa.array(rng.random(n) < 0.3),
            "prediction": pa.array(rng.integers(0, 2, n), pa.int32()),
            "score": rng.random(n),
        }
    )


@pytest.fixture
def ls() -> LogStore:
    store = LogStore(":memory:", clock=lambda: datetime(2026, 3, 5, tzinfo=UTC))
    store.ensure_model("churn", SCHEMA)
    yield store
    store.close()


def _sorted(t: pa.Table, keys: list[str]) -> pa.Table:
    return t.sort_by([(k, "ascending") for k in keys])


def _assert_lake_equals_store(ls: LogStore, lake: Path) -> None:
    stored = ls.read_inferences("churn")
    back = read_lake(lake, "inferences", "churn")
    # partition value = the UTC date of ts
    want_dates = pc.cast(pc.cast(stored.column("ts"), pa.timestamp("us")), pa.date32())
    assert (
        _sorted(back, ["request_id"])
        .column("date")
        .equals(_sorted(stored.append_column("date", want_dates), ["request_id"]).column("date"))
    )
    back = back.drop_columns(["date"]).select(stored.column_names)
    assert back.schema.equals(stored.schema)  # same columns, same types
    # NaN-aware (Arrow's equals counts NaN != NaN); ±inf and NULL kept apart
    assert_frame_equal(
        _sorted(back, ["request_id"]).to_pandas(), _sorted(stored, ["request_id"]).to_pandas()
    )
    assert back.column("x").null_count == stored.column("x").null_count


def test_export_reads_back_equal_to_the_store_partitioned_by_model_and_date(
    ls: LogStore, tmp_path: Path
) -> None:
    ls.append_inferences("churn", rows(3000, 1))
    data = rows(3000, 1)
    labels = pa.table(
        {
            "request_id": data.column("request_id").slice(0, 500),
            "label": pa.array([1, 0] * 250, pa.int32()),
            "ts": data.column("ts").slice(0, 500),
            "tenant_id": data.column("tenant_id").slice(0, 500),
        }
    )
    ls.append_labels("churn", labels)
    events = pa.table(
        {
            "event_id": ["e1", "e2", "e3"],
            "tenant_id": ["acme", "acme", "globex"],
            "ts": pa.array([T0, T0 + timedelta(hours=3), T0 + timedelta(days=1)], TS),
            "name": ["conversion", "revenue", "conversion"],
            "value": [1.0, 12.5, 1.0],
        }
    )
    ls.append_events(events)
    lake = tmp_path / "lake"
    seen: list[int] = []
    summary = export(ls, lake, ["churn"], events=True, on_rows=lambda part, n: seen.append(n))
    assert summary.rows == {"inferences": 3000, "labels": 500, "events": 3}
    assert sum(seen) == 3503

    layout = json.loads((lake / LAYOUT_FILE).read_text())
    assert layout["layout_version"] == LAYOUT_VERSION
    days = sorted(p.name for p in (lake / "model=churn").iterdir())
    assert days == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03", "date=2026-03-04"]
    for d in days:
        files = sorted(f.name for f in (lake / "model=churn" / d).iterdir())
        assert files == [EXPORT_FILE]
        # the file holds the table's columns only: model and date live in the path
        assert "model" not in pq.read_schema(lake / "model=churn" / d / files[0]).names
    _assert_lake_equals_store(ls, lake)

    back_labels = read_lake(lake, "labels", "churn").drop_columns(["date"])
    stored_labels = ls.read_labels("churn")
    assert _sorted(back_labels.select(stored_labels.column_names), ["request_id"]).equals(
        _sorted(stored_labels, ["request_id"])
    )
    # labels by the date they arrived (the store's clock: 2026-03-05)
    assert [p.name for p in (lake / "labels" / "model=churn").iterdir()] == ["date=2026-03-05"]
    back_events = read_lake(lake, "events")
    assert sorted(back_events.column("date").to_pylist()) == [
        date(2026, 3, 1),
        date(2026, 3, 2),
        date(2026, 3, 2),
    ]
    assert sorted(back_events.column("event_id").to_pylist()) == ["e1", "e2", "e3"]


def test_re_export_is_idempotent_and_late_rows_reach_their_dates_file(
    ls: LogStore, tmp_path: Path
) -> None:
    ls.append_inferences("churn", rows(2000, 2))
    lake = tmp_path / "lake"
    export(ls, lake, ["churn"])
    first = {p: p.read_bytes() for p in lake.rglob("*.parquet")}
    export(ls, lake, ["churn"])  # same rows: same files, nothing doubled
    assert {p: p.read_bytes() for p in lake.rglob("*.parquet")} == first
    late = rows(40, 3, start=datetime(2026, 3, 2, 5, tzinfo=UTC), hours=1, prefix="late")
    ls.append_inferences("churn", late)
    export(ls, lake, ["churn"])
    _assert_lake_equals_store(ls, lake)
    assert read_lake(lake, "inferences", "churn").num_rows == 2040
    assert not list(lake.rglob("*.tmp"))


def test_a_grown_schema_reads_older_files_with_null(ls: LogStore, tmp_path: Path) -> None:
    ls.append_inferences("churn", rows(300, 4, hours=20))
    lake = tmp_path / "lake"
    export(ls, lake, ["churn"])
    grown = ModelSchema(
        "binary", (*SCHEMA.features, FeatureSpec("age", "numeric")), scores=("score",)
    )
    ls.ensure_model("churn", grown)
    new = rows(100, 5, start=T0 + timedelta(days=3), hours=5, prefix="new")
    ls.append_inferences("churn", new.append_column("age", pa.array([30.0] * 100)))
    export(ls, lake, ["churn"])
    back = read_lake(lake, "inferences", "churn")
    assert back.num_rows == 400
    ages = dict(
        zip(back.column("request_id").to_pylist(), back.column("age").to_pylist(), strict=True)
    )
    assert {ages[f"new5-{i}"] for i in range(100)} == {30.0}
    assert {ages[f"r4-{i}"] for i in range(300)} == {None}


def test_another_layout_version_is_refused(ls: LogStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / LAYOUT_FILE).write_text(json.dumps({"layout_version": LAYOUT_VERSION + 1}))
    with pytest.raises(LakeError, match="layout_version 2"):
        export(ls, lake, ["churn"])


def test_cli_lake_export(tmp_path: Path) -> None:
    from monitor.cli import app
    from monitor.settings import load_settings

    data_dir = tmp_path / "data"
    settings = load_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = LogStore(settings.duckdb_path)
    store.ensure_model("churn", SCHEMA)
    store.append_inferences("churn", rows(500, 6))
    store.close()
    lake = tmp_path / "lake"
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["lake", "export", "--model", "churn", "--lake", str(lake), "--data-dir", str(data_dir)],
    )
    assert r.exit_code == 0, r.output
    assert "inferences: 500 rows in" in r.output
    assert read_lake(lake, "inferences", "churn").num_rows == 500
    r = runner.invoke(
        app, ["lake", "export", "--model", "nope", "--lake", str(lake), "--data-dir", str(data_dir)]
    )
    assert r.exit_code == 2 and "no logs for model(s) ['nope']" in r.output
    r = runner.invoke(app, ["lake", "export", "--lake", str(lake), "--data-dir", str(data_dir)])
    assert r.exit_code == 2 and "nothing to export" in r.output


def test_all_models_inferences_leave_labels_and_events_out(ls: LogStore, tmp_path: Path) -> None:
    ls.ensure_model("fraud", SCHEMA)
    ls.append_inferences("churn", rows(200, 7, hours=10))
    ls.append_inferences("fraud", rows(100, 8, hours=10, prefix="f"))
    data = rows(200, 7, hours=10)
    ls.append_labels(
        "churn",
        pa.table(
            {
                "request_id": data.column("request_id").slice(0, 10),
                "label": pa.array([1] * 10, pa.int32()),
                "ts": data.column("ts").slice(0, 10),
            }
        ),
    )
    lake = tmp_path / "lake"
    export(ls, lake, ["churn", "fraud"])
    both = read_lake(lake, "inferences")
    assert both.num_rows == 300
    assert sorted(set(both.column("model").to_pylist())) == ["churn", "fraud"]
    assert read_lake(lake, "labels").num_rows == 10
