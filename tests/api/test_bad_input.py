"""The bad-input corpus: what a careless client (or a probe) sends, through the real HTTP API.

Every case goes to a live server on one kept-alive connection and must answer without a server
error; then the same connection must serve the next request. A case is either

* row-level: good and bad rows in one batch; every good row is stored, every bad row is
  rejected and quarantined with a reason that starts with the field it names (``<row>`` for an
  element that is not a readable object), nothing else; or
* whole-body: refused with the given 4xx and a message naming the problem, nothing stored.

Issue 12, items 4 and 6 (and the 133 careless-client requests of its probe).
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from monitor.settings import Settings
from tests.api.conftest import CHURN
from tests.support import Live, free_port, live_server

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
PRICE = {
    "name": "price",
    "task": "regression",
    "features": [
        {"name": "x", "kind": "numeric"},
        {"name": "cat", "kind": "categorical"},
    ],
    "prediction": "prediction",
}
MAX_BODY = 4 * 1024 * 1024
_ids = itertools.count()


@dataclass
class Case:
    name: str
    path: str
    body: bytes
    ctype: str = "application/json"
    # row-level: row index -> the field its reason must name; None: the body is refused whole
    bad: dict[int, str] | None = field(default_factory=dict)
    status: int = 200
    message: str = ""  # whole-body refusals: part of the error message
    ids: list[str] = field(default_factory=list)  # request_id / event_id of each row sent
    key: str = "engineer"


# ----------------------------------------------------------------------------- rows
def churn_row(**over: Any) -> dict[str, Any]:
    rid = f"c{next(_ids)}"
    row = {
        "request_id": rid,
        "ts": (T0 + timedelta(seconds=next(_ids))).isoformat(),
        "tenant_id": "acme",
        "model_version": "v1",
        "age": 31.5,
        "plan": "pro",
        "mobile": True,
        "note": "fine",
        "prediction": 1,
        "score": 0.75,
    }
    row.update(over)
    return row


def price_row(**over: Any) -> dict[str, Any]:
    row = {
        "request_id": f"p{next(_ids)}",
        "ts": T0.isoformat(),
        "tenant_id": "acme",
        "x": 2.5,
        "cat": "a",
        "prediction": 12.5,
    }
    row.update(over)
    return row


def label(**over: Any) -> dict[str, Any]:
    return {"request_id": f"l{next(_ids)}", "label": 1, "ts": T0.isoformat(), **over}


def event(**over: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{next(_ids)}",
        "tenant_id": "acme",
        "ts": T0.isoformat(),
        "name": "conversion",
        "value": 1.0,
        **over,
    }


INF = "/models/churn/inferences"


def rows_case(
    name: str,
    bad_rows: list[tuple[dict[str, Any], str]],
    *,
    path: str = INF,
    make: Callable[..., dict[str, Any]] = churn_row,
    encode: str = "json",
) -> Case:
    """Two good rows around each bad one (rows as dicts, sent as JSON/NDJSON)."""
    rows: list[dict[str, Any]] = []
    bad: dict[int, str] = {}
    for row, fld in bad_rows:
        rows.append(make())
        bad[len(rows)] = fld
        rows.append(row)
    rows.append(make())
    ids = [r.get("request_id", r.get("event_id", "")) for r in rows]
    # the json module, not orjson: it also writes integers beyond 64 bits, as clients do
    if encode == "ndjson":
        body = b"\n".join(json.dumps(r).encode() for r in rows)
        return Case(name, path, body, "application/x-ndjson", bad, ids=ids)
    return Case(name, path, json.dumps(rows).encode(), bad=bad, ids=ids)


def json_splice(name: str, raw_rows: list[bytes], bad: dict[int, str], path: str = INF) -> Case:
    """A JSON array written by hand (for what a JSON encoder would never write)."""
    ids = []
    for i, r in enumerate(raw_rows):
        if r.startswith(b"{") and i not in bad:
            ids.append(orjson.loads(r).get("request_id", ""))
        else:
            ids.append("")
    return Case(name, path, b"[" + b",".join(raw_rows) + b"]", bad=bad, ids=ids)


def good_json(make: Callable[..., dict[str, Any]] = churn_row) -> bytes:
    return orjson.dumps(make())


def deep(levels: int, leaf: bytes = b"1") -> bytes:
    return b"[" * levels + leaf + b"]" * levels


def table_of(rows: list[dict[str, Any]], ts_type: pa.DataType | None = None) -> pa.Table:
    t = pa.Table.from_pylist(rows)
    if ts_type is not None:
        i = t.schema.get_field_index("ts")
        vals = [datetime.fromisoformat(r["ts"]) for r in rows]
        t = t.set_column(i, "ts", pa.array(vals, pa.timestamp("us", tz="UTC")).cast(ts_type))
    return t


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def arrow_stream(table: pa.Table, batch_rows: int | None = None) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        for b in table.to_batches(max_chunksize=batch_rows):
            w.write_batch(b)
    return sink.getvalue().to_pybytes()


def csv_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


def table_case(name: str, table: pa.Table, bad: dict[int, str], fmt: str) -> Case:
    ids = table.column("request_id").to_pylist()
    if fmt == "parquet":
        return Case(name, INF, parquet(table), "application/vnd.apache.parquet", bad, ids=ids)
    if fmt == "arrow":
        return Case(
            name, INF, arrow_stream(table), "application/vnd.apache.arrow.stream", bad, ids=ids
        )
    return Case(name, INF, csv_bytes(table), "text/csv", bad, ids=ids)


def refused(name: str, body: bytes, ctype: str, status: int, message: str, path: str = INF) -> Case:
    return Case(name, path, body, ctype, None, status, message)


def cases() -> list[Case]:
    out: list[Case] = []
    # --- item 4: numeric timestamps of any size, in every kind of row ---------------------
    out.append(
        rows_case(
            "numeric ts out of range",
            [
                (churn_row(ts=1e17), "ts"),
                (churn_row(ts=-1e17), "ts"),
                (churn_row(ts=1.7e12), "ts"),  # milliseconds sent as seconds
                (churn_row(ts=2**64), "ts"),
                (churn_row(ts=1e300), "ts"),
            ],
        )
    )
    out.append(
        rows_case(
            "labels: numeric ts 1e17",
            [(label(ts=1e17), "ts")],
            path="/models/churn/labels",
            make=label,
        )
    )
    out.append(
        rows_case("events: numeric ts 1e17", [(event(ts=1e17), "ts")], path="/events", make=event)
    )
    out.append(rows_case("epoch seconds are fine", []))
    out[-1].body = orjson.dumps([churn_row(ts=T0.timestamp())])
    out[-1].ids = [orjson.loads(out[-1].body)[0]["request_id"]]
    # --- item 4: nesting deeper than the JSON libraries write or read ----------------------
    out.append(
        json_splice(
            "value nested 300 deep",
            [
                good_json(),
                good_json(),
                orjson.dumps(churn_row())[:-1] + b',"plan":' + deep(300) + b"}",
                good_json(),
            ],
            {2: "plan"},
        )
    )
    out.append(
        json_splice(
            "value nested 2000 deep (beyond the parser)",
            [
                good_json(),
                orjson.dumps(churn_row())[:-1] + b',"note":' + deep(2000) + b"}",
                good_json(),
            ],
            {1: "<row>"},
        )
    )
    out.append(
        json_splice(
            "value nested 100000 deep",
            [good_json(), orjson.dumps(churn_row())[:-1] + b',"age":' + deep(100_000) + b"}"],
            {1: "<row>"},
        )
    )
    nd = [
        orjson.dumps(churn_row()),
        orjson.dumps(churn_row())[:-1] + b',"age":' + deep(2000) + b"}",
        orjson.dumps(churn_row()),
    ]
    out.append(
        Case(
            "NDJSON line nested 2000 deep",
            INF,
            b"\n".join(nd),
            "application/x-ndjson",
            {1: "<row>"},
            ids=[orjson.loads(nd[0])["request_id"], "", orjson.loads(nd[2])["request_id"]],
        )
    )
    out.append(
        rows_case(
            "object and array values",
            [(churn_row(plan={"a": 1}), "plan"), (churn_row(age=[1]), "age")],
        )
    )
    # --- item 4: duplicate column names, CSV header bytes ---------------------------------
    dup = pa.table(
        [
            pa.array(["d1"]),
            pa.array([T0.isoformat()]),
            pa.array(["acme"]),
            pa.array([1.0]),
            pa.array([2.0]),
            pa.array([1]),
        ],
        names=["request_id", "ts", "tenant_id", "age", "age", "prediction"],
    )
    out.append(
        refused(
            "Parquet duplicate columns",
            parquet(dup),
            "application/vnd.apache.parquet",
            400,
            "duplicate column names: 'age'",
        )
    )
    out.append(
        refused(
            "Arrow duplicate columns",
            arrow_stream(dup),
            "application/vnd.apache.arrow.stream",
            400,
            "duplicate column names: 'age'",
        )
    )
    out.append(
        refused(
            "CSV duplicate header",
            b"request_id,ts,tenant_id,age,age,prediction\nd2,2026-05-01T00:00:00Z,acme,1,2,1\n",
            "text/csv",
            400,
            "duplicate column names: 'age'",
        )
    )
    out.append(
        refused(
            "CSV header not UTF-8",
            b"request_id,ts,tenant_id,a\xffge,prediction\nd3,2026-05-01T00:00:00Z,acme,1,1\n",
            "text/csv",
            400,
            "CSV header is not UTF-8: byte 0xff",
        )
    )
    good = [churn_row(), churn_row(), churn_row()]
    csv_body = (
        csv_bytes(table_of(good))
        .replace(b'"pro"', b'"pr\xffo"', 2)
        .replace(b'"pr\xffo"', b'"pro"', 1)
    )
    out.append(
        Case(
            "CSV value not UTF-8",
            INF,
            csv_body,
            "text/csv",
            {1: "plan"},
            ids=[r["request_id"] for r in good],
        )
    )
    ragged = [churn_row() for _ in range(4)]
    lines = csv_bytes(table_of(ragged)).split(b"\n")
    lines[2] = lines[2] + b',"extra"'  # row 1: a value with an unquoted comma, say
    lines[3] = lines[3].rsplit(b",", 2)[0]  # row 2: two fields short
    out.append(
        Case(
            "CSV lines with too many or too few fields",
            INF,
            b"\n".join(lines),
            "text/csv",
            {1: "<row>", 2: "<row>"},
            ids=[r["request_id"] for r in ragged],
        )
    )
    # --- item 6: non-finite numbers, as text and as numbers -------------------------------
    out.append(
        rows_case(
            "NaN and infinities as text",
            [(churn_row(age=v), "age") for v in ("NaN", "nan", "Infinity", "-inf", "+Inf", " NaN ")]
            + [(churn_row(score="NaN"), "score")],
        )
    )
    out.append(
        json_splice(
            "NaN and Infinity literals (not JSON)",
            [
                good_json(),
                orjson.dumps(churn_row())[:-1] + b',"age":NaN}',
                good_json(),
                orjson.dumps(churn_row())[:-1] + b',"age":-Infinity}',
                good_json(),
            ],
            {1: "<row>", 3: "<row>"},
        )
    )
    out.append(
        rows_case(
            "regression prediction NaN/inf",
            [(price_row(prediction=v), "prediction") for v in ("NaN", "inf", "-Infinity")]
            + [(price_row(x="nan"), "x")],
            path="/models/price/inferences",
            make=price_row,
        )
    )
    out.append(
        rows_case(
            "regression label inf",
            [(label(label=v), "label") for v in ("Infinity", "NaN")],
            path="/models/price/labels",
            make=lambda **o: label(label=3.5, **o),
        )
    )
    out.append(
        rows_case(
            "event value NaN",
            [(event(value=v), "value") for v in ("NaN", "-inf")],
            path="/events",
            make=event,
        )
    )

    def nan_rows() -> list[dict[str, Any]]:
        return [
            churn_row(),
            churn_row(age=float("nan")),
            churn_row(age=float("inf")),
            churn_row(score=float("-inf")),
            churn_row(),
        ]

    utc = pa.timestamp("us", tz="UTC")
    nan_bad = {1: "age", 2: "age", 3: "score"}
    out.append(table_case("parquet: real NaN/inf", table_of(nan_rows(), utc), nan_bad, "parquet"))
    out.append(table_case("arrow: real NaN/inf", table_of(nan_rows(), utc), nan_bad, "arrow"))
    out.append(table_case("csv: NaN/inf text", table_of(nan_rows()), nan_bad, "csv"))
    out.append(
        rows_case("huge numbers", [(churn_row(age=1e300), "age"), (churn_row(age=-1e101), "age")])
    )
    out.append(
        json_splice(
            "number beyond double (1e400)",
            [good_json(), orjson.dumps(churn_row())[:-1] + b',"age":1e400}', good_json()],
            {1: "<row>"},
        )
    )
    big_int = orjson.dumps(churn_row())[:-1] + b',"age":123456789012345678901234567890}'
    out.append(json_splice("integer beyond 64 bits is a number", [good_json(), big_int], {}))
    # --- item 6: truncated bodies are refused whole --------------------------------------
    stream = arrow_stream(
        table_of([churn_row(), churn_row(), churn_row()], pa.timestamp("us", tz="UTC")),
        batch_rows=1,
    )
    reader = pa.ipc.open_stream(stream)
    first = pa.BufferOutputStream()
    with pa.ipc.new_stream(first, reader.schema) as w:
        w.write_batch(reader.read_next_batch())
    boundary = first.getvalue().to_pybytes()[:-8]  # schema + one batch, no end-of-stream
    assert stream.startswith(boundary)
    out.append(
        refused(
            "Arrow stream cut at a batch boundary",
            boundary,
            "application/vnd.apache.arrow.stream",
            400,
            "truncated",
        )
    )
    out.append(
        refused(
            "Arrow stream without its end marker",
            stream[:-8],
            "application/vnd.apache.arrow.stream",
            400,
            "truncated",
        )
    )
    out.append(
        refused(
            "Arrow stream cut inside a batch",
            stream[: len(boundary) - 40],
            "application/vnd.apache.arrow.stream",
            400,
            "Arrow IPC",
        )
    )
    pq_body = parquet(table_of([churn_row(), churn_row()], pa.timestamp("us", tz="UTC")))
    out.append(
        refused(
            "Parquet cut short", pq_body[:-100], "application/vnd.apache.parquet", 400, "Parquet"
        )
    )
    out.append(
        refused(
            "Parquet garbage",
            b"PAR1" + b"\x00" * 64 + b"PAR1",
            "application/vnd.apache.parquet",
            400,
            "Parquet",
        )
    )
    out.append(
        refused(
            "Arrow file cut short",
            b"ARROW1\x00\x00" + b"\x00" * 40,
            "application/vnd.apache.arrow.file",
            400,
            "Arrow IPC file",
        )
    )
    # --- item 6: timestamps outside the documented bounds -------------------------------
    out.append(
        rows_case(
            "timestamps out of bounds",
            [
                (churn_row(ts="0001-01-01T00:00:00Z"), "ts"),
                (churn_row(ts="1999-12-31T23:59:59Z"), "ts"),
                (churn_row(ts="9999-12-31T23:59:59Z"), "ts"),
                (churn_row(ts=(datetime.now(UTC) + timedelta(days=2)).isoformat()), "ts"),
                (churn_row(ts="+275760-09-13T00:00:00Z"), "ts"),
                (churn_row(ts="yesterday"), "ts"),
                (churn_row(ts=True), "ts"),
                (churn_row(ts=""), "ts"),
            ],
        )
    )
    out.append(
        rows_case(
            "labels: year 1",
            [(label(ts="0001-01-01T00:00:00Z"), "ts")],
            path="/models/churn/labels",
            make=label,
        )
    )
    out.append(
        rows_case(
            "events: year 1", [(event(ts="0001-01-01T00:00:00Z"), "ts")], path="/events", make=event
        )
    )

    def three() -> pa.Table:
        return table_of([churn_row(), churn_row(), churn_row()], utc)

    secs = pa.array([int(T0.timestamp()), 10**15, int(T0.timestamp())], pa.timestamp("s"))
    out.append(
        table_case(
            "Arrow ts in seconds, year 31 million",
            three().set_column(1, "ts", secs),
            {1: "ts"},
            "arrow",
        )
    )
    ns = pa.array(
        [int(T0.timestamp() * 1e9) + 123, int(T0.timestamp() * 1e9) + 7, 0],
        pa.timestamp("ns", tz="UTC"),
    )
    out.append(
        table_case(
            "Arrow ts in ns (1970 row too early)",
            three().set_column(1, "ts", ns),
            {2: "ts"},
            "arrow",
        )
    )
    ints = pa.array([int(T0.timestamp()), 10**17, int(T0.timestamp())], pa.int64())
    out.append(
        table_case(
            "Parquet integer ts 1e17", three().set_column(1, "ts", ints), {1: "ts"}, "parquet"
        )
    )
    # a Parquet date is its midnight UTC (issue 14: dates as timestamps), not a bad row;
    # tests/test_byom_ingest.py stores them

    # --- item 6: string lengths, never clipped ---------------------------------------------
    out.append(
        rows_case(
            "strings over their limits",
            [
                (churn_row(plan="x" * 1_000_000), "plan"),
                (churn_row(note="é" * 70_000), "note"),
                (churn_row(model_version="v" * 100_000), "model_version"),
                (churn_row(request_id="r" * 200), "request_id"),
                (churn_row(tenant_id="t" * 100), "tenant_id"),
            ],
        )
    )
    out.append(rows_case("strings at their limits are fine", []))
    at_limit = [churn_row(plan="p" * 256, note="n" * 65_536, model_version="v" * 128)]
    out[-1].body, out[-1].ids = orjson.dumps(at_limit), [at_limit[0]["request_id"]]
    out.append(
        rows_case(
            "events: long name",
            [(event(name="n" * 200), "name"), (event(event_id="e" * 129), "event_id")],
            path="/events",
            make=event,
        )
    )
    out.append(
        rows_case(
            "multiclass-like long category",
            [(price_row(cat="c" * 300), "cat")],
            path="/models/price/inferences",
            make=price_row,
        )
    )
    # --- careless clients: wrong types, missing fields -----------------------------------
    out.append(
        rows_case(
            "wrong types",
            [
                (churn_row(age="old"), "age"),
                (churn_row(age=True), "age"),
                (churn_row(prediction=3), "prediction"),
                (churn_row(prediction="yes"), "prediction"),
                (churn_row(score=1.7), "score"),
                (churn_row(score=-0.1), "score"),
                (churn_row(mobile="maybe"), "mobile"),
                (churn_row(tenant_id=""), "tenant_id"),
                (churn_row(tenant_id="a/b"), "tenant_id"),
                (churn_row(request_id=""), "request_id"),
                (churn_row(note=["a"]), "note"),
            ],
        )
    )
    missing = []
    for fld in ("request_id", "ts", "tenant_id", "prediction"):
        row = churn_row()
        del row[fld]
        row["age"] = float(next(_ids))  # rows without a request_id still differ
        missing.append((row, fld))
    out.append(rows_case("missing required fields", missing))
    out.append(
        rows_case(
            "nulls in required fields",
            [(churn_row(ts=None), "ts"), (churn_row(tenant_id=None), "tenant_id")],
        )
    )
    out.append(
        json_splice(
            "elements that are not objects",
            [good_json(), b"5", b'"row"', b"null", b"[1,2]", good_json()],
            {1: "<row>", 2: "<row>", 3: "<row>", 4: "<row>"},
        )
    )
    out.append(
        json_splice(
            "a broken element among good ones",
            [good_json(), b'{"request_id": "x", "age": }', good_json()],
            {1: "<row>"},
        )
    )
    out.append(
        rows_case(
            "NDJSON: bad values",
            [(churn_row(age="NaN"), "age"), (churn_row(ts=1e17), "ts")],
            encode="ndjson",
        )
    )
    broken = [orjson.dumps(churn_row()), b'{"request_id": "broken", ', orjson.dumps(churn_row())]
    out.append(
        Case(
            "NDJSON: broken line",
            INF,
            b"\n".join(broken),
            "application/x-ndjson",
            {1: "<row>"},
            ids=[orjson.loads(broken[0])["request_id"], "", orjson.loads(broken[2])["request_id"]],
        )
    )
    out.append(
        rows_case(
            "labels: wrong values",
            [
                (label(label=2), "label"),
                (label(label="NaN"), "label"),
                (label(request_id=None), "request_id"),
            ],
            path="/models/churn/labels",
            make=label,
        )
    )
    out.append(
        rows_case(
            "events: wrong values",
            [
                (event(value="lots"), "value"),
                (event(name=None), "name"),
                (event(tenant_id=None), "tenant_id"),
            ],
            path="/events",
            make=event,
        )
    )
    lab_rows = [
        label(label="2.5"),
        label(label="NaN"),
        label(label="3", ts="0001-01-01T00:00:00Z"),
        label(label="inf"),
    ]
    lab = pa.Table.from_pylist(lab_rows)
    out.append(
        Case(
            "labels as CSV",
            "/models/price/labels",
            csv_bytes(lab),
            "text/csv",
            {1: "label", 2: "ts", 3: "label"},
            ids=[r["request_id"] for r in lab_rows],
        )
    )
    ev_rows = [event(), event(value=float("nan")), event(ts="1970-01-02T00:00:00Z"), event()]
    ev = pa.Table.from_pylist(ev_rows)
    out.append(
        Case(
            "events as Parquet",
            "/events",
            parquet(ev),
            "application/vnd.apache.parquet",
            {1: "value", 2: "ts"},
            ids=[r["event_id"] for r in ev_rows],
        )
    )
    out.append(
        rows_case(
            "more wrong types",
            [
                (churn_row(age={}), "age"),
                (churn_row(prediction=None), "prediction"),
                (churn_row(prediction=0.5), "prediction"),
                (churn_row(mobile=2), "mobile"),
                (churn_row(score="high"), "score"),
            ],
        )
    )
    out.append(
        rows_case(
            "labels: more wrong values",
            [(label(label="1.5"), "label"), (label(label=[1]), "label")],
            path="/models/churn/labels",
            make=label,
        )
    )
    arr_line = orjson.dumps([churn_row()])
    out.append(
        Case(
            "NDJSON holding a JSON array line",
            INF,
            orjson.dumps(churn_row()) + b"\n" + arr_line,
            "application/x-ndjson",
            {1: "<row>"},
            ids=["", ""],
        )
    )
    out[-1].ids[0] = orjson.loads(out[-1].body.split(b"\n")[0])["request_id"]
    out.append(
        refused(
            "JSON sent as Parquet",
            orjson.dumps([churn_row()]),
            "application/vnd.apache.parquet",
            400,
            "Parquet",
        )
    )
    out.append(
        refused(
            "Parquet sent as Arrow",
            pq_body,
            "application/vnd.apache.arrow.stream",
            400,
            "Arrow IPC",
        )
    )
    out.append(refused("JSON sent as CSV", b'[{"a": 1}]', "text/csv", 400, ""))
    charset = Case(
        "JSON with a charset parameter",
        INF,
        orjson.dumps([churn_row()]),
        "application/json; charset=utf-8",
        {},
    )
    charset.ids = [orjson.loads(charset.body)[0]["request_id"]]
    out.append(charset)
    # --- unicode oddities --------------------------------------------------------------
    out.append(rows_case("odd but valid unicode is kept", []))
    odd = [churn_row(plan="zero\u200bwidth", note="rtl \u202e text \U0001f600 and nul \x00 byte")]
    out[-1].body, out[-1].ids = orjson.dumps(odd), [odd[0]["request_id"]]
    out.append(rows_case("emoji tenant", [(churn_row(tenant_id="acme\U0001f600"), "tenant_id")]))
    lone = orjson.dumps(churn_row())[:-1] + b',"plan":"\\ud800"}'
    out.append(json_splice("lone surrogate escape", [good_json(), lone, good_json()], {1: "<row>"}))
    bad_utf8 = orjson.dumps(churn_row())[:-1] + b',"note":"\xff\xfe"}'
    out.append(
        json_splice(
            "invalid UTF-8 inside a JSON string", [good_json(), bad_utf8, good_json()], {1: "<row>"}
        )
    )
    bom = Case(
        "UTF-8 BOM before a JSON array", INF, b"\xef\xbb\xbf" + orjson.dumps([churn_row()]), bad={}
    )
    bom.ids = [orjson.loads(bom.body[3:])[0]["request_id"]]
    out.append(bom)
    # --- whole-body refusals: empty, wrong content types, unknown columns, limits --------
    out.append(refused("empty body", b"", "application/json", 400, "empty body"))
    out.append(
        refused(
            "not an array", b'{"request_id": "x"}', "application/json", 400, "array of row objects"
        )
    )
    out.append(
        refused(
            "rows is not a list", b'{"rows": 5}', "application/json", 400, "array of row objects"
        )
    )
    out.append(refused("JSON null", b"null", "application/json", 400, "array of row objects"))
    out.append(
        refused(
            "unbalanced JSON", b'[{"request_id": "x"', "application/json", 400, "not valid JSON"
        )
    )
    out.append(refused("text/plain", b"hello", "text/plain", 400, "Content-Type"))
    out.append(refused("no content type", orjson.dumps([churn_row()]), "", 400, "Content-Type"))
    out.append(refused("XML", b"<rows/>", "application/xml", 400, "Content-Type"))
    out.append(
        refused("CSV sent as JSON", b"request_id,ts\nr1,2026\n", "application/json", 400, "JSON")
    )
    out.append(
        refused(
            "unknown column",
            orjson.dumps([churn_row(colour="red")]),
            "application/json",
            422,
            "colour",
        )
    )
    out.append(
        refused(
            "unknown column with a huge name",
            orjson.dumps([churn_row(**{"k" * 100_000: 1})]),
            "application/json",
            422,
            "characters",
        )
    )
    out.append(
        refused(
            "body over the limit",
            b"[" + b" " * (MAX_BODY + 10) + b"]",
            "application/json",
            413,
            "limit",
        )
    )
    out.append(
        refused(
            "unknown model",
            orjson.dumps([churn_row()]),
            "application/json",
            404,
            "nope",
            path="/models/nope/inferences",
        )
    )
    scoped = refused(
        "scoped key, other tenant",
        orjson.dumps([churn_row(tenant_id="globex")]),
        "application/json",
        403,
        "globex",
    )
    scoped.key = "acme"
    out.append(scoped)
    empty = Case("empty array", INF, b"[]", bad={})
    out.append(empty)
    return out


CASES = cases()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("bad-input")
    settings = Settings(
        data_dir=tmp / "data",
        port=free_port(),
        max_body_bytes=MAX_BODY,
        scheduler_enabled=False,
        alert_worker=False,
        rate_limit_burst=100_000,
    )
    with live_server(settings) as live:
        meta = live.services.metadata
        keys = {
            "engineer": meta.create_api_key("eng", "engineer")[1],
            "acme": meta.create_api_key("acme", "engineer", "acme")[1],
        }
        with httpx.Client(
            base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {keys['engineer']}"}
        ) as eng:
            for spec in (CHURN, PRICE):
                assert eng.post("/models", json=spec).status_code == 201
        yield live, keys


def stored_ids(live: Live, path: str) -> set[str]:
    store = live.services.logstore
    if path == "/events":
        return set(store.read_events()["event_id"].to_pylist())
    model = path.split("/")[2]
    if path.endswith("/labels"):
        return set(store.read_labels(model)["request_id"].to_pylist())
    return set(store.read_inferences(model, columns=["request_id"])["request_id"].to_pylist())


def quarantine_path(path: str) -> str:
    return "/events/quarantine" if path == "/events" else path.rsplit("/", 1)[0] + "/quarantine"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(server: tuple[Live, dict[str, str]], case: Case) -> None:
    live, keys = server
    before = stored_ids(live, case.path) if not case.path.startswith("/models/nope") else set()
    headers = {"Authorization": f"Bearer {keys[case.key]}"}
    if case.ctype:
        headers["Content-Type"] = case.ctype
    with httpx.Client(base_url=f"{live.url}/api/v1", headers=headers, timeout=60) as http:
        r = http.post(case.path, content=case.body)
        assert r.status_code < 500, r.text
        assert r.status_code == case.status, r.text[:2000]
        sock = r.extensions["network_stream"].get_extra_info("socket").getsockname()
        # the kept-alive connection serves the client's next request
        again = http.get("/health")
        assert again.status_code == 200
        assert again.extensions["network_stream"].get_extra_info("socket").getsockname() == sock
        if case.bad is None:
            assert case.message in r.json()["error"]["message"], r.json()
            if not case.path.startswith("/models/nope"):
                assert stored_ids(live, case.path) == before  # nothing of a refused body
            return
        got = r.json()
        n = len(case.ids)
        good = {i for i, k in enumerate(case.ids) if i not in case.bad}
        assert (got["received"], got["accepted"], got["rejected"]) == (
            n,
            len(good),
            len(case.bad),
        ), got
        assert {(e["row"], e["field"]) for e in got["errors"]} == set(case.bad.items()), got[
            "errors"
        ]
        for e in got["errors"]:
            assert e["reason"], e
        # every good row is stored, nothing else of this batch
        assert stored_ids(live, case.path) - before == {case.ids[i] for i in good}
        # every bad row is quarantined with a reason that starts with the field it names
        q = http.get(quarantine_path(case.path), params={"limit": 10_000}).json()
        mine = {x["row_index"]: x for x in q if x["batch_id"] == got["batch_id"]}
        assert set(mine) == set(case.bad), (mine, case.bad)
        for row, fld in case.bad.items():
            assert mine[row]["field"] == fld
            assert mine[row]["reason"].startswith(f"{fld}: "), mine[row]["reason"]
            assert mine[row]["raw"], row


def test_corpus_covers_the_issue(server: tuple[Live, dict[str, str]]) -> None:
    """At least every case named by issue 12 items 4 and 6 is in the corpus."""
    names = " | ".join(c.name for c in CASES)
    for needle in (
        "numeric ts 1e17",
        "nested 300 deep",
        "Parquet duplicate columns",
        "Arrow duplicate columns",
        "CSV header not UTF-8",
        "NaN and infinities as text",
        "regression prediction NaN",
        "regression label inf",
        "cut at a batch boundary",
        "year 1",
        "strings over their limits",
        "events: ",
    ):
        assert needle in names, needle
    bad_inputs = sum(len(c.bad) if c.bad is not None else 1 for c in CASES)
    assert bad_inputs >= 133, bad_inputs  # at least as many as the probe sent


def test_client_does_not_retry_a_4xx(server: tuple[Live, dict[str, str]]) -> None:
    """The Python client raises a refused body at once (no six retries) and its connection
    keeps working."""
    from monitor.client import Client, ClientError

    live, keys = server
    sent: list[str] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.url.path)
            return super().handle_request(request)

    with Client(live.url, keys["acme"], transport=Counting()) as dw:
        with pytest.raises(ClientError) as err:
            dw.log_inferences("churn", [churn_row(tenant_id="globex")])
        assert err.value.status == 403
        assert len(sent) == 1
        nan = churn_row(age="NaN")
        del nan["tenant_id"]  # the key's tenant fills it in
        totals = dw.log_inferences("churn", [nan, churn_row()])
        assert (totals.accepted, totals.rejected) == (1, 1)
        assert totals.errors[0]["field"] == "age" and "finite" in totals.errors[0]["reason"]
        assert len(sent) == 2


def test_one_infinite_value_cannot_make_a_window_mae_infinite(
    server: tuple[Live, dict[str, str]],
) -> None:
    """A regression window with one "inf" prediction and one "Infinity" label among good rows:
    those two rows are rejected, and the window's MAE/RMSE are sklearn's over the good rows."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    live, keys = server
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    spec = {**PRICE, "name": "price_mae"}
    n = 60  # a performance monitor needs min_rows (30) labelled rows
    preds = [10.0 + i % 17 for i in range(n)]
    truth = [12.0 + (i % 5) for i in range(n)]
    rows = [
        price_row(request_id=f"m{i}", ts=(day + timedelta(minutes=i)).isoformat(), prediction=p)
        for i, p in enumerate(preds)
    ]
    rows[3]["prediction"] = "inf"
    labels = [{"request_id": f"m{i}", "label": t} for i, t in enumerate(truth)]
    labels[7]["label"] = "Infinity"
    with httpx.Client(
        base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {keys['engineer']}"}
    ) as eng:
        assert eng.post("/models", json=spec).status_code == 201
        assert eng.post("/models/price_mae/inferences", json=rows).json()["rejected"] == 1
        assert eng.post("/models/price_mae/labels", json=labels).json()["rejected"] == 1
        monitor = {"name": "price-perf", "model": "price_mae", "kind": "performance"}
        assert eng.post("/monitors", json=monitor).status_code == 201, eng.get("/monitors").text
        r = eng.post("/monitors/price-perf/run", json={"window_start": day.isoformat()})
        assert r.status_code == 200, r.text
        got = eng.get(
            "/results", params={"monitor": "price-perf", "tenant_id": "acme", "limit": 100}
        ).json()["items"]
    values = {x["metric"]: x["value"] for x in got if x.get("model_version") in (None, "*", "")}
    good = [i for i in range(n) if i not in (3, 7)]
    y, p = [truth[i] for i in good], [preds[i] for i in good]
    assert values["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert values["rmse"] == pytest.approx(mean_squared_error(y, p) ** 0.5)


def test_event_quarantine_is_listed_per_tenant(server: tuple[Live, dict[str, str]]) -> None:
    """Rejected events are listed by GET /events/quarantine; a scoped key sees only its own."""
    live, keys = server

    def http(key: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {keys[key]}"}
        )

    with http("engineer") as eng:
        bad = [event(tenant_id="globex", value="lots"), event(tenant_id="acme", value="NaN")]
        got = eng.post("/events", json=bad).json()
        assert got["rejected"] == 2
        listed = eng.get("/events/quarantine", params={"limit": 10_000}).json()
        mine = [q for q in listed if q["batch_id"] == got["batch_id"]]
        assert sorted((q["tenant_id"], q["field"], q["kind"]) for q in mine) == [
            ("acme", "value", "event"),
            ("globex", "value", "event"),
        ]
        # model quarantines do not list events
        assert all(q["kind"] != "event" for q in eng.get("/models/churn/quarantine").json())
    with http("acme") as acme:
        listed = acme.get("/events/quarantine", params={"limit": 10_000}).json()
        assert listed and {q["tenant_id"] for q in listed} == {"acme"}
        assert acme.get("/events/quarantine", params={"limit": 0}).status_code == 422
