"""``quarantine list`` is written once against ``monitor.quarantine_backend``: the local backend
(the data dir's log store) and the HTTP backend (a server's API) must give the same printed
lines, for a model's rows and for business events, filtered by tenant and bounded by
``--limit``; an unknown model is an error on both sides. Runs the API in process
(tests.support.in_process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from monitor.cli_common import check_response
from monitor.cli_quarantine import line
from monitor.core_backend import LocalCore
from monitor.errors import DriftwatchError
from monitor.quarantine_backend import HttpQuarantine, LocalQuarantine
from tests.api.conftest import make_keys, make_settings
from tests.monitor.test_core_backend import ROW, _model
from tests.support import in_process


def test_local_and_http_backends_print_the_same_lines(tmp_path: Path) -> None:
    with in_process(make_settings(tmp_path)) as live:
        keys = make_keys(live)
        core = LocalCore(live.services)
        core.register_model(_model("churn"))
        rows = [
            {"request_id": f"r{i}", "ts": "2026-02-01T00:00:00Z", "age": 30, "score": 0.5, **ROW}
            for i in range(3)
        ]
        rows += [
            {"request_id": "bad1", "ts": "not a time", "age": 1, "score": 0.5, **ROW},
            {**ROW, "request_id": "bad2", "ts": "2026-02-01T00:00:00Z", "age": "old"},
            {**ROW, "tenant_id": "globex", "request_id": "bad3", "ts": "x", "age": 1},
        ]
        assert core.ingest("churn", "inferences", rows, None)["rejected"] == 3
        events = [{"tenant_id": "acme", "ts": "2026-03-01T00:00:00Z", "name": "x", "value": "a"}]
        assert core.ingest("", "events", events, None)["rejected"] == 1
        local = LocalQuarantine(live.services)
        with live.http(keys.admin) as client:
            http = HttpQuarantine(client, check_response)
            for model, tenant, limit, expected in [
                ("churn", None, 100, 3),
                ("churn", "globex", 100, 1),
                ("churn", None, 2, 2),
                (None, None, 100, 1),
                (None, "globex", 100, 0),
            ]:
                here = [line(r) for r in local.rows(model, tenant, limit)]
                over_http = [line(r) for r in http.rows(model, tenant, limit)]
                assert here == over_http, (model, tenant, limit)
                assert len(here) == expected, (model, tenant, limit, here)
            first = next(line(r) for r in local.rows("churn", None, 100))
            assert "tenant acme" in first and "inference row 3: ts:" in first, first
            # an unknown model: the service's error locally, the API's 404 over HTTP
            with pytest.raises(DriftwatchError, match="nope"):
                local.rows("nope", None, 10)
            with pytest.raises(typer.Exit):
                http.rows("nope", None, 10)


def test_a_line_names_the_field_once() -> None:
    """Row rules store reasons that start with their field; a CSV line with the wrong number
    of fields is stored with the field ``<row>`` and a reason that does not name it."""
    base = {"received_at": "2026-02-01T00:00:00+00:00", "tenant_id": "acme", "kind": "inference"}
    rule = line({**base, "row_index": 2, "field": "age", "reason": "age: expected a number"})
    assert rule.endswith("inference row 2: age: expected a number"), rule
    csv = line({**base, "row_index": 5, "field": "<row>", "reason": "the line has 9 fields"})
    assert csv.endswith("inference row 5: <row>: the line has 9 fields"), csv
