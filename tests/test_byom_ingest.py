"""Bring your own data with no code: ``models infer``, column maps and schema aliases on every
ingest path, compressed files, ``references upload``, dates and years as times, ``backfill``
needing ``--monitor`` or ``--all`` (CLI in process, local data dir)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.errors import ValidationFailed
from monitor.ingest import ParsedBody
from monitor.schemas import ModelIn
from monitor.service import Caller, Services
from monitor.settings import Settings

runner = CliRunner()
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def user_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A user's file: their own column names, a date-only time column, spaces in names."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"u{i}" for i in range(n)],
            "day": [(T0 + timedelta(days=i % 10)).date().isoformat() for i in range(n)],
            "mean radius": rng.normal(14, 3, n).round(3),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "smoker": rng.integers(0, 2, n),
            "proba": rng.random(n).round(4),
            "pred": rng.integers(0, 2, n),
            "target": rng.integers(0, 2, n),
        }
    )


def test_infer_register_ingest_gz_and_upload_reference(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    frame = user_frame(400)
    path = tmp_path / "Cancer-Scores.csv.gz"
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh, index=False)

    proposal_path = tmp_path / "model.yaml"
    invoke("models", "infer", str(path), "-o", str(proposal_path))
    text = proposal_path.read_text()
    assert "no tenant column" in text  # the notes say what is missing
    spec = yaml.safe_load(text)
    assert spec["name"] == "cancer_scores" and spec["task"] == "binary"
    assert spec["features"] == [
        {"name": "mean_radius", "kind": "numeric"},
        {"name": "city", "kind": "categorical"},
        {"name": "smoker", "kind": "boolean"},
    ]
    assert spec["scores"] == ["score"]
    assert spec["aliases"] == {
        "mean radius": "mean_radius",
        "pred": "prediction",
        "proba": "score",
        "id": "request_id",
        "day": "ts",
        "target": "label",
    }
    invoke("models", "register", str(proposal_path), "--data-dir", data)

    # no --map needed: the schema's aliases apply; dates are their midnight UTC
    out = invoke("ingest", "cancer_scores", str(path), "--tenant", "acme", "-q", "--data-dir", data)
    assert "400 rows read: 400 stored" in out
    ref = tmp_path / "train.jsonl.zst"
    with pa.CompressedOutputStream(str(ref), "zstd") as out_stream:
        out_stream.write(
            frame.drop(columns=["id", "day"]).to_json(orient="records", lines=True).encode()
        )
    out = invoke("references", "upload", "cancer_scores", "training", str(ref), "--data-dir", data)
    assert "version 1, 400 rows" in out

    services = Services.open(Settings(data_dir=Path(data)))
    try:
        stored = services.logstore.read_inferences("cancer_scores").to_pandas()
        assert len(stored) == 400 and set(stored.tenant_id) == {"acme"}
        first = stored.sort_values("request_id").iloc[0]
        assert first.ts == pd.Timestamp(T0) and first.mean_radius == frame["mean radius"][0]
        assert services.logstore.list_references("cancer_scores")[0][:3] == ("training", 1, 400)
        # the file's target column became the rows' labels
        labels = services.logstore.read_labels("cancer_scores").to_pandas()
        assert len(labels) == 400 and labels.label.sum() == frame.target.sum()
    finally:
        services.close()


def test_cli_map_renames_columns_and_names_bad_entries(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    model = tmp_path / "m.yaml"
    model.write_text(
        yaml.safe_dump(
            {"name": "m", "task": "regression", "features": [{"name": "x", "kind": "numeric"}]}
        )
    )
    invoke("models", "register", str(model), "--data-dir", data)
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "rid,when,customer,x,yhat\nr1,2026-03-02T10:00:00Z,acme,1.5,2\nr2,2026,acme,2.5,3\n"
    )
    out = invoke(
        "ingest",
        "m",
        str(rows),
        "--map",
        "rid=request_id,when=ts,customer=tenant_id,yhat=prediction",
        "-q",
        "--data-dir",
        data,
    )
    assert "2 rows read: 2 stored" in out  # "2026" alone: 1 January 2026
    out = runner.invoke(app, ["ingest", "m", str(rows), "--map", "rid", "--data-dir", data])
    assert out.exit_code == 2 and "'rid' is not COLUMN=FIELD" in out.output
    unmapped = runner.invoke(app, ["ingest", "m", str(rows), "-q", "--data-dir", data])
    assert unmapped.exit_code == 1 and "unknown column(s) ['customer', 'rid'" in unmapped.output


def test_backfill_needs_monitor_or_all(tmp_path: Path) -> None:
    args = ["backfill", "--from", "2026-01-01", "--to", "2026-01-02"]
    r = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "--monitor NAME" in r.output and "--all" in r.output
    r = runner.invoke(app, [*args, "--all", "-m", "x", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "exclude each other" in r.output


@pytest.fixture
def services(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Services.open(Settings(data_dir=tmp_path), clock=lambda: T0 + timedelta(days=30))
    s.register_model(
        ModelIn.model_validate(
            {
                "name": "m",
                "task": "binary",
                "features": [{"name": "x", "kind": "numeric"}],
                "aliases": {"id": "request_id", "when": "ts", "target": "label", "x raw": "x"},
            }
        ),
        Caller.local(),
    )
    yield s
    s.close()


def test_schema_aliases_apply_on_every_path(services: Services) -> None:
    caller = Caller.local()
    rows = [
        {"id": f"j{i}", "when": "2026-03-02", "tenant_id": "t", "x raw": 1.0, "prediction": 1}
        for i in range(3)
    ]
    # JSON (read by the fast path), JSON rows with a bad value (the row-by-row path)
    s = services.ingest_inferences("m", ParsedBody(json=json.dumps(rows).encode()), caller)
    assert (s.accepted, s.rejected) == (3, 0)
    bad = [dict(r, id=f"k{i}") for i, r in enumerate(rows)]
    bad[1]["x raw"] = "n/a"
    s = services.ingest_inferences("m", ParsedBody(json=json.dumps(bad).encode()), caller)
    assert (s.accepted, s.rejected) == (2, 1) and s.errors[0].field == "x"
    # Arrow: years as whole numbers and Parquet dates are times too
    table = pa.table(
        {
            "id": ["a1", "a2"],
            "when": pa.array([date(2026, 3, 1), date(2026, 3, 2)], pa.date32()),
            "tenant_id": ["t", "t"],
            "x raw": [1.0, 2.0],
            "prediction": [0, 1],
        }
    )
    assert services.ingest_inferences("m", ParsedBody(table=table), caller).accepted == 2
    years = table.set_column(1, "when", pa.array([2025, 2026])).set_column(
        0, "id", pa.array(["y1", "y2"])
    )
    assert services.ingest_inferences("m", ParsedBody(table=years), caller).accepted == 2
    stored = services.logstore.read_inferences("m").to_pandas().set_index("request_id")
    assert stored.ts["a2"] == pd.Timestamp("2026-03-02", tz="UTC")
    assert stored.ts["y1"] == pd.Timestamp("2025-01-01", tz="UTC")
    labels = pa.table({"id": ["j0", "j1"], "target": [1, 0]})
    assert services.ingest_labels("m", ParsedBody(table=labels), caller).accepted == 2
    version, _ = services.put_reference(
        "m", "train", ParsedBody(table=pa.table({"x raw": [1.0, 2.0], "target": [0, 1]})), caller
    )
    assert version == 1
    both = table.append_column("request_id", pa.array(["z1", "z2"]))
    with pytest.raises(ValidationFailed, match=r"both column\(s\) \['id'\]"):
        services.ingest_inferences("m", ParsedBody(table=both), caller)


def test_ambiguous_dates_are_refused_with_the_field(services: Services) -> None:
    rows = [{"id": "d1", "when": "03/02/2026", "tenant_id": "t", "x raw": 1, "prediction": 1}]
    s = services.ingest_inferences("m", ParsedBody(rows=rows), Caller.local())
    assert s.rejected == 1 and s.errors[0].field == "ts"
    assert "a date (2024-05-01) or a year (2024)" in s.errors[0].reason


def test_alias_to_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="'lable' is not a field of this model"):
        ModelIn.model_validate(
            {
                "name": "m",
                "task": "binary",
                "features": [{"name": "x", "kind": "numeric"}],
                "aliases": {"target": "lable"},
            }
        )


def test_parquet_dates_write(tmp_path: Path) -> None:
    """A Parquet file's date column is a time column for ``models infer``."""
    path = tmp_path / "d.parquet"
    pq.write_table(
        pa.table(
            {
                "date": pa.array([date(2026, 1, d) for d in range(1, 11)], pa.date32()),
                "score": [0.1 * i for i in range(10)],
                "label": [i % 2 for i in range(10)],
                "f": [float(i) for i in range(10)],
            }
        ),
        path,
    )
    spec = yaml.safe_load(invoke("models", "infer", str(path), "--name", "d"))
    assert spec["aliases"] == {"date": "ts"} and spec["scores"] == ["score"]
