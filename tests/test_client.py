"""The Python client: batching, formats, retries and idempotency, against a real server over
the network (one test) and against the app in process (``transport=``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from monitor.client import Client, ClientError
from tests.api.conftest import CHURN, make_keys, make_settings
from tests.support import in_process, live_server

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"p{i}" for i in range(start, start + n)],
            "ts": [T0 + timedelta(minutes=i) for i in range(start, start + n)],
            "tenant_id": "acme",
            "age": [float(i % 40) for i in range(n)],
            "plan": "pro",
            "prediction": [i % 2 for i in range(n)],
            "score": 0.4,
        }
    )


def test_client_logs_every_kind_in_batches_and_retries_safely(tmp_path: Path) -> None:
    with live_server(make_settings(tmp_path)) as live:
        keys = make_keys(live)
        with Client(live.url, keys.engineer, batch_rows=70) as dw:
            dw.register_model(CHURN)
            totals = dw.log_inferences("churn", frame(250))  # 4 requests of <= 70 rows
            assert (totals.received, totals.accepted, totals.duplicates) == (250, 250, 0)
            again = dw.log_inferences("churn", pa.Table.from_pandas(frame(250)))
            assert (again.accepted, again.duplicates) == (0, 250)
            dicts = frame(10, start=1000).assign(ts=lambda d: d.ts.map(datetime.isoformat))
            rows = dicts.to_dict("records")
            rows[3]["age"] = "n/a"
            mixed = dw.log_inferences("churn", rows)
            assert (mixed.accepted, mixed.rejected) == (9, 1)
            assert mixed.errors == [
                {"row": 3, "field": "age", "reason": "expected a number, got 'n/a'"}
            ]
            labels = dw.log_labels(
                "churn", [{"request_id": f"p{i}", "label": i % 2} for i in range(100)]
            )
            assert labels.accepted == 100
            events = [{"tenant_id": "acme", "ts": T0, "name": "conversion", "value": 1.0}] * 1
            assert dw.log_events(events).accepted == 1
            assert dw.log_events(events).duplicates == 1  # same content, same id: a safe retry
            ref = frame(300).drop(columns=["request_id", "ts", "tenant_id"])
            assert dw.upload_reference("churn", "training", ref)["version"] == 1
            path = tmp_path / "ref.parquet"
            ref.to_parquet(path)
            assert dw.upload_reference("churn", "training", path)["version"] == 2
            assert dw.get_model("churn")["rows"] == 259
            # column_map renames your columns (a table and dicts); request() takes params
            renamed = frame(5, start=2000).rename(columns={"request_id": "id", "ts": "when"})
            mapped = dw.log_inferences(
                "churn", renamed, column_map={"id": "request_id", "when": "ts"}
            )
            assert mapped.accepted == 5
            as_dicts = [{"id": f"p{i}", "target": 1} for i in range(2000, 2005)]
            assert (
                dw.log_labels(
                    "churn", as_dicts, column_map={"id": "request_id", "target": "label"}
                ).accepted
                == 5
            )
            page = dw.request("GET", "/models/churn/quarantine", params={"limit": 1})
            assert len(page) == 1 and page[0]["field"] == "age"  # two rows without the limit
            assert dw.log_inferences("churn", [{"request_id": "q1"}]).rejected == 1
            assert len(dw.request("GET", "/models/churn/quarantine")) == 2
        with Client(live.url, keys.viewer) as viewer, pytest.raises(ClientError) as err:
            viewer.log_inferences("churn", frame(1))
        assert err.value.status == 403  # not retried: a 4xx is final


def test_client_waits_out_429_and_succeeds(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rate_limit_per_minute=120, rate_limit_burst=2)
    with in_process(settings) as live:
        keys = make_keys(live)
        with Client(live.url, keys.engineer, batch_rows=10, transport=live.transport) as dw:
            dw.register_model(CHURN)
            # 5 requests against a burst of 2 at 2/s: some answers are 429 with Retry-After: 1,
            # and the client waits at least that long before sending again
            started = time.monotonic()
            totals = dw.log_inferences("churn", frame(50))
            assert time.monotonic() - started >= 1.0
        assert totals.accepted == 50
        assert live.services.logstore.count_inferences("churn") == 50


def test_tables_go_as_row_group_sized_bodies_with_repeated_text_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow.ipc as ipc

    from monitor import client as client_module

    data = pa.Table.from_pandas(frame(1000), preserve_index=False)
    compact = client_module.dictionary_encoded(data)
    assert pa.types.is_dictionary(compact.schema.field("plan").type)  # one value, repeated
    assert compact.schema.field("request_id").type == pa.string()  # all distinct: kept
    monkeypatch.setattr(client_module, "MAX_BODY_BYTES", 8_000)
    bodies = list(client_module._table_bodies(data))
    assert len(bodies) > 1 and all(len(b) <= 8_000 for b, _, _ in bodies)
    assert sum(n for _, _, n in bodies) == 1000
    back = pa.concat_tables([ipc.open_stream(b).read_all().cast(data.schema) for b, _, _ in bodies])
    assert back.equals(data)


def test_a_large_tables_distinct_text_is_judged_on_its_first_rows() -> None:
    """Beyond 8,192 rows a text column is encoded only if its first 4,096 rows repeat: a column
    of ids is not hashed whole only for the encoding to be dropped (the CLI's largest cost)."""
    from monitor import client as client_module

    n = 10_000
    data = pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],  # distinct: sent as it is
            "plan": ["basic", "pro"] * (n // 2),  # repeated: encoded
            # distinct in the first rows, then one value: judged on the first rows, kept
            "late": [f"x{i}" if i < 4096 else "same" for i in range(n)],
        }
    )
    compact = client_module.dictionary_encoded(data)
    assert compact.schema.field("request_id").type == pa.string()
    assert pa.types.is_dictionary(compact.schema.field("plan").type)
    assert compact.schema.field("late").type == pa.string()
    assert compact.cast(data.schema).equals(data)
