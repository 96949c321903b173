"""``models register`` and ``references upload`` are written once against
``monitor.core_backend``: the local backend (the data dir's services) and the HTTP backend (the
Python client against a server's API) must answer the same values for what the commands print.
Runs the API in process (tests.support.in_process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from monitor.client import Client, ClientError
from monitor.core_backend import HttpCore, LocalCore
from monitor.errors import DriftwatchError
from monitor.schemas import ModelIn
from tests.api.conftest import make_keys, make_settings
from tests.support import in_process


def _model(name: str) -> ModelIn:
    spec = {
        "name": name,
        "task": "binary",
        "features": [{"name": "age", "kind": "numeric"}],
        "scores": ["score"],
    }
    return ModelIn.model_validate(spec)


def test_local_and_http_backends_answer_alike(tmp_path: Path) -> None:
    with in_process(make_settings(tmp_path)) as live:
        keys = make_keys(live)
        local = LocalCore(live.services)
        with Client(live.url, keys.admin, transport=live.transport) as client:
            http = HttpCore(client)
            http.register_model(_model("churn"))
            local.register_model(_model("upsell"))
            names = {m.name for m in live.services.metadata.list_models()}
            assert {"churn", "upsell"} <= names
            # registering a name twice is refused by both (the API's 409, the service's error)
            with pytest.raises(ClientError):
                http.register_model(_model("upsell"))
            with pytest.raises(DriftwatchError):
                local.register_model(_model("churn"))
            table = pa.table({"age": np.random.default_rng(0).normal(40, 10, 500)})
            over_http = http.put_reference("churn", "training", table)
            here = local.put_reference("upsell", "training", table)
            assert over_http == here == {"version": 1, "rows": 500, "rejected": 0, "errors": []}
            again = local.put_reference("churn", "training", table)
            assert (
                again["version"] == 2 == http.put_reference("upsell", "training", table)["version"]
            )


ROW = {"tenant_id": "acme", "prediction": 1}


def test_ingest_answers_alike(tmp_path: Path) -> None:
    with in_process(make_settings(tmp_path)) as live:
        keys = make_keys(live)
        local = LocalCore(live.services)
        with Client(live.url, keys.admin, transport=live.transport) as client:
            http = HttpCore(client)
            for name in ("churn", "upsell"):
                local.register_model(_model(name))
            rows = [
                {
                    "request_id": f"r{i}",
                    "ts": "2026-02-01T00:00:00Z",
                    "age": 30 + i,
                    "score": 0.5,
                    **ROW,
                }
                for i in range(5)
            ]
            rows.append({"request_id": "bad", "ts": "not a time", "age": 1, "score": 0.5, **ROW})
            over_http = http.ingest("churn", "inferences", rows, None)
            here = local.ingest("upsell", "inferences", rows, None)
            assert over_http == here and here["accepted"] == 5 and here["rejected"] == 1, (
                over_http,
                here,
            )
            again = http.ingest("churn", "inferences", rows, None)
            assert again == local.ingest("upsell", "inferences", rows, None)
            assert again["duplicates"] == 5
            local.check_model("churn")
            with pytest.raises(DriftwatchError):
                local.check_model("nope")
