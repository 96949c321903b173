"""Row validation of ingest bodies: every bad value is named, nothing is silently changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import ingest
from monitor.errors import PermissionDenied, ValidationFailed
from storage.types import FeatureSpec, ModelSchema

SCHEMA = ModelSchema(
    task="binary",
    features=(
        FeatureSpec("age", "numeric"),
        FeatureSpec("plan", "categorical"),
        FeatureSpec("mobile", "boolean"),
    ),
    scores=("score",),
)
RULES = ingest.inference_rules(SCHEMA)
TARGET = ingest.rules_schema(RULES)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def row(i: int = 0, **over: object) -> dict:
    base = {
        "request_id": f"r{i}",
        "ts": "2026-05-01T00:00:00Z",
        "tenant_id": "acme",
        "age": 30,
        "plan": "pro",
        "mobile": True,
        "prediction": 1,
        "score": 0.9,
    }
    base.update(over)
    return base


def check(rows: list, **kw: object) -> ingest.Validated:
    return ingest.validate(
        ingest.ParsedBody(rows=rows), RULES, TARGET, kind="inference", model="m", now=NOW, **kw
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("prediction", 0.7, "expected 0 or 1"),  # never truncated to 0
        ("prediction", 2, "expected 0 or 1"),
        ("age", True, "boolean"),  # never turned into 1.0
        ("age", "old", "expected a number"),
        ("score", 1.2, "probability must be in [0, 1]"),  # never clipped to 1
        ("score", -0.1, "probability must be in [0, 1]"),
        ("mobile", "maybe", "expected true or false"),
        ("ts", "yesterday", "ISO 8601"),
        ("ts", (NOW + timedelta(days=2)).isoformat(), "in the future"),
        ("tenant_id", "acme corp!", "must match"),
        ("request_id", "", "must not be empty"),
        ("request_id", None, "required field is missing"),
    ],
)
def test_bad_value_is_rejected_with_field_and_reason(
    field: str, value: object, reason: str
) -> None:
    v = check([row(0), row(1, **{field: value}), row(2)])
    assert v.table.num_rows == 2
    assert [(e.row, e.field) for e in v.errors] == [(1, field)]
    assert reason in v.errors[0].reason
    assert v.rejected[0].row_index == 1 and orjson.loads(v.rejected[0].raw)[field] == value


def test_lossless_conversions_are_accepted() -> None:
    v = check(
        [
            row(0, age="41.5", prediction=True, ts="2026-05-01 02:00:00"),
            row(1, plan=3, prediction=0.0),
        ]
    )
    assert v.errors == []
    t = v.table.to_pylist()
    assert t[0]["age"] == 41.5 and t[0]["prediction"] == 1
    assert t[0]["ts"] == datetime(2026, 5, 1, 2, tzinfo=UTC)  # naive means UTC
    assert t[1]["plan"] == "3" and t[1]["prediction"] == 0


def test_one_row_with_two_bad_fields_gives_two_errors_one_quarantine_row() -> None:
    v = check([row(0, age="x", score=3)])
    assert {e.field for e in v.errors} == {"age", "score"}
    assert (
        len(v.rejected) == 1 and "age" in v.rejected[0].reason and "score" in v.rejected[0].reason
    )


def test_unknown_column_refuses_the_batch() -> None:
    with pytest.raises(ValidationFailed, match="colour"):
        check([row(0, colour="red")])


def test_scope_fills_tenant_and_refuses_others() -> None:
    rows = [row(0), {k: v for k, v in row(1).items() if k != "tenant_id"}]
    v = check(rows, tenant_scope="acme")
    assert v.table.column("tenant_id").to_pylist() == ["acme", "acme"]
    with pytest.raises(PermissionDenied, match="globex"):
        check([row(0), row(1, tenant_id="globex")], tenant_scope="acme")


def test_arrow_input_with_naive_timestamps_and_bad_scores() -> None:
    table = pa.Table.from_pylist([row(0), row(1, score=1.5)]).set_column(
        1, "ts", pa.array([datetime(2026, 5, 1), datetime(2026, 5, 1, 1)], pa.timestamp("us"))
    )
    v = ingest.validate(
        ingest.ParsedBody(table=table), RULES, TARGET, kind="inference", model="m", now=NOW
    )
    assert v.table.num_rows == 1 and v.errors[0].field == "score"
    assert v.table.column("ts")[0].as_py() == datetime(2026, 5, 1, tzinfo=UTC)


def test_dictionary_columns_give_the_same_table_as_plain_ones() -> None:
    """pandas ``category`` columns arrive as Arrow dictionaries (also of numbers and
    timestamps); they validate to exactly the table their decoded values give."""
    rows = [row(i, plan=["pro", "free", None][i % 3], age=[30, 41][i % 2]) for i in range(6)]
    plain = pa.Table.from_pylist(rows)
    encoded = pa.table(
        {
            c: plain.column(c).dictionary_encode()
            if c in ("plan", "age", "ts", "tenant_id")
            else plain.column(c)
            for c in plain.column_names
        }
    )
    assert pa.types.is_dictionary(encoded.schema.field("plan").type)
    got = ingest.validate(
        ingest.ParsedBody(table=encoded), RULES, TARGET, kind="inference", model="m", now=NOW
    )
    want = ingest.validate(
        ingest.ParsedBody(table=plain), RULES, TARGET, kind="inference", model="m", now=NOW
    )
    assert not got.errors and got.table.equals(want.table)
    assert got.table.column("plan").to_pylist() == ["pro", "free", None] * 2


def test_bad_value_in_a_dictionary_column_is_named() -> None:
    plain = pa.Table.from_pylist([row(0, age="30"), row(1, age="old"), row(2, age="7")])
    encoded = plain.set_column(
        plain.schema.get_field_index("age"), "age", plain.column("age").dictionary_encode()
    )
    v = ingest.validate(
        ingest.ParsedBody(table=encoded), RULES, TARGET, kind="inference", model="m", now=NOW
    )
    assert [(e.row, e.field) for e in v.errors] == [(1, "age")]
    assert "expected a number, got 'old'" in v.errors[0].reason
    assert v.table.column("age").to_pylist() == [30.0, 7.0]


# --- limits (issue 12, item 6) -------------------------------------------------------------
def test_limits_come_from_the_caller_and_name_their_setting() -> None:
    limits = ingest.Limits(
        min_ts=datetime(2026, 4, 1, tzinfo=UTC),
        max_future=timedelta(minutes=5),
        max_id_chars=4,
        max_category_chars=3,
        max_abs_number=100.0,
    )
    rows = [
        row(0),
        row(1, ts="2026-03-31T23:59:59Z"),
        row(2, ts=(NOW + timedelta(minutes=6)).isoformat()),
        row(3, plan="team"),
        row(4, request_id="r4567"),
        row(5, age=100.5),
        row(6, age=-100.0, plan="é" * 3),  # at the limits: kept (characters, not bytes)
    ]
    v = check(rows, limits=limits)
    assert v.table.column("request_id").to_pylist() == ["r0", "r6"]
    reasons = {e.row: (e.field, e.reason) for e in v.errors}
    assert reasons[1][0] == "ts" and "DRIFTWATCH_MIN_TIMESTAMP" in reasons[1][1]
    assert reasons[2][0] == "ts" and "DRIFTWATCH_MAX_FUTURE_SKEW_SECONDS" in reasons[2][1]
    assert reasons[3] == (
        "plan",
        "4 characters, longer than the limit of 3 (DRIFTWATCH_MAX_CATEGORY_CHARS)",
    )
    assert reasons[4][0] == "request_id" and "DRIFTWATCH_MAX_ID_CHARS" in reasons[4][1]
    assert reasons[5][0] == "age" and "DRIFTWATCH_MAX_ABS_NUMBER" in reasons[5][1]


def test_references_are_not_bounded_in_time() -> None:
    rules = ingest.reference_rules(SCHEMA)
    v = ingest.validate(
        ingest.ParsedBody(
            rows=[row(0, ts="1990-01-01T00:00:00Z", age="NaN"), row(1, ts="1990-01-01")]
        ),
        rules,
        ingest.rules_schema(rules),
        kind="reference",
        model="m",
        now=NOW,
        limits=ingest.Limits(check_time=False),
    )
    assert [(e.row, e.field) for e in v.errors] == [(0, "age")]  # finite numbers still


# --- the JSON array splitter: elements found whatever their strings hold --------------------

awkward = st.text(alphabet=st.sampled_from(list('[]{},:"\\ \nab\u00e9\U0001f600')), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | awkward,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(awkward, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(json_values, max_size=6), st.sampled_from([None, 2]))
def test_split_json_array_finds_each_element(elements: list, indent: int | None) -> None:
    body = json.dumps(elements, indent=indent, ensure_ascii=False).encode()
    parts = ingest.split_json_array(body)
    assert parts is not None and [orjson.loads(p) for p in parts] == elements


@pytest.mark.parametrize("body", [b"", b"{}", b"[", b"[1", b'["a]', b"[1]]", b"[1] x", b"[[1]"])
def test_split_json_array_gives_up_when_brackets_do_not_balance(body: bytes) -> None:
    assert ingest.split_json_array(body) is None


def test_arrow_stream_must_end_with_its_marker_and_not_by_chance() -> None:
    # 32 true booleans as the last buffer end the batch with ff ff ff ff 00 00 00 00: the very
    # bytes of the end-of-stream marker. A stream cut after that batch must still be refused.
    table = pa.table({"request_id": [f"r{i}" for i in range(32)], "mobile": [True] * 32})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
        w.write_table(table)
    full = sink.getvalue().to_pybytes()
    assert ingest.parse_body(full, "application/vnd.apache.arrow.stream").table.num_rows == 64
    one = pa.BufferOutputStream()
    with pa.ipc.new_stream(one, table.schema) as w:
        w.write_table(table)
    cut = one.getvalue().to_pybytes()[:-8]  # schema and the first batch, no marker
    assert full.startswith(cut) and cut.endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")
    with pytest.raises(ingest.BadRequestError, match="truncated"):
        ingest.parse_body(cut, "application/vnd.apache.arrow.stream")


def _event_id_by_definition(row: Mapping[str, object]) -> str:
    """An event's id as event_ids documents it: str of each Python value, "" for null."""
    key = "\x1f".join(
        "" if row.get(c) is None else str(row[c])
        for c in ("tenant_id", "ts", "name", "value", "request_id")
    )
    return "h_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def test_event_ids_are_the_documented_hash_of_each_row() -> None:
    """The column-wise event_ids gives, row by row, the id of its definition: whole and
    fractional seconds, nulls in every optional column, numbers str() writes in exponent form
    or with a sign, ids given in the body kept."""
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    times = [t0, t0 + timedelta(microseconds=1), t0 + timedelta(seconds=59, microseconds=999999)]
    times += [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), None]
    values = [1.0, None, -0.0, 1e-7, 1e20, float("nan")]
    rows = [
        {
            "event_id": "given-2" if i == 2 else None,
            "tenant_id": ["acme", "globex"][i % 2],
            "ts": ts,
            "name": "session",
            "value": values[i],
            "request_id": None if i % 3 else f"r-{i}",
        }
        for i, ts in enumerate(times)
    ]
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("event_id", pa.string()),
                ("tenant_id", pa.string()),
                ("ts", pa.timestamp("us", tz="UTC")),
                ("name", pa.string()),
                ("value", pa.float64()),
                ("request_id", pa.string()),
            ]
        ),
    )
    expected = [r["event_id"] or _event_id_by_definition(r) for r in rows]
    assert ingest.event_ids(table).to_pylist() == expected
    # no event_id column, and the table in two chunks
    chunked = pa.concat_tables([table.slice(0, 3), table.slice(3)]).drop_columns(["event_id"])
    assert ingest.event_ids(chunked).to_pylist() == [_event_id_by_definition(r) for r in rows]
    # a time column of another type goes through Python's str as well
    other = table.set_column(
        table.schema.get_field_index("ts"),
        "ts",
        table.column("ts").cast(pa.timestamp("ms", tz="UTC"), safe=False),
    )
    by_python = [
        r["event_id"] or _event_id_by_definition({**r, "ts": t})
        for r, t in zip(rows, other.column("ts").to_pylist(), strict=True)
    ]
    assert ingest.event_ids(other).to_pylist() == by_python
