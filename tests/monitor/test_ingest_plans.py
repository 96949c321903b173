"""Each kind of ingest batch (inferences, labels, events) validates against field rules and a
target schema built once per kind and model schema (``Services._plan``), and built again when
the model's schema changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import orjson

from monitor import ingest
from monitor.schemas import FeatureIn, ModelIn
from monitor.service import Caller, Services
from monitor.settings import Settings

MODEL = ModelIn(name="small", task="binary", features=[FeatureIn(name="x0", kind="numeric")])


def _parsed(rows: list[dict[str, object]]) -> ingest.ParsedBody:
    return ingest.parse_body(orjson.dumps(rows), "application/json")


def test_plans_are_built_once_per_kind_and_schema(tmp_path: Path) -> None:
    services = Services.open(Settings(data_dir=tmp_path))
    try:
        services.register_model(MODEL, Caller.local())
        info = services.get_model("small")
        now = datetime.now(UTC).isoformat()
        bodies = {
            "inferences": [
                {"request_id": "r1", "ts": now, "tenant_id": "acme", "x0": 1.0, "prediction": 1}
            ],
            "labels": [{"request_id": "r1", "label": 1, "tenant_id": "acme"}],
            "events": [{"tenant_id": "acme", "ts": now, "name": "conversion", "value": 1.0}],
        }
        for kind, rows in bodies.items():
            model = None if kind == "events" else info
            first = services._plan(kind, model)  # type: ignore[arg-type]
            for _ in range(2):
                prepared = services.prepare_ingest(kind, model, _parsed(rows), None)  # type: ignore[arg-type]
                assert prepared.v.table.num_rows == 1 and not prepared.v.rejected
            again = services._plan(kind, model)  # type: ignore[arg-type]
            assert again[0] is first[0] and again[1] is first[1]
        # a new schema (here the task) builds new rules: a label is then a number
        regression = replace(info, schema=replace(info.schema, task="regression"))
        rules, _ = services._plan("labels", regression)
        assert [r.kind for r in rules if r.name == "label"] == ["float"]
        assert services._plan("labels", info)[0][1].kind == "binary"
    finally:
        services.close()
