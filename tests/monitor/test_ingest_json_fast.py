"""The JSON fast path (DuckDB reads the body into columns) is only a shortcut: for any body it
must give exactly what parsing the rows one by one gives (same stored table, same errors, same
quarantined rows, same refusal), and it must actually be taken for clean bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import ingest
from monitor.ingest import validation
from storage.types import FeatureSpec, ModelSchema

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SCHEMAS = {
    "binary": ModelSchema(
        task="binary",
        features=(
            FeatureSpec("age", "numeric"),
            FeatureSpec("plan", "categorical"),
            FeatureSpec("mobile", "boolean"),
            FeatureSpec("note", "text"),
        ),
        scores=("score",),
    ),
    "multiclass": ModelSchema(
        task="multiclass",
        features=(FeatureSpec("x", "numeric"),),
        classes=("a", "b", "c"),
    ),
    "regression": ModelSchema(task="regression", features=(FeatureSpec("x", "numeric"),)),
}


@pytest.fixture(autouse=True)
def fast_path_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bodies here are small; in production they would skip DuckDB's reader (below
    ``SMALL_JSON_BYTES``). These tests compare the two paths, so the reader runs for all."""
    monkeypatch.setattr(validation, "SMALL_JSON_BYTES", 0)


def test_small_bodies_skip_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body under SMALL_JSON_BYTES is parsed row by row (the reader's fixed cost was most of
    a small request's CPU); a larger one goes to the reader first."""
    monkeypatch.setattr(validation, "SMALL_JSON_BYTES", 128 * 1024)
    calls: list[int] = []
    reader = ingest.json_columns

    def counting(body: bytes, *a: Any, **kw: Any) -> Any:
        calls.append(len(body))
        return reader(body, *a, **kw)

    monkeypatch.setattr(validation, "json_columns", counting)
    small, _ = encode([clean_row("binary", i) for i in range(100)], "array")
    big, _ = encode([clean_row("binary", i) for i in range(2000)], "array")
    assert len(small) < 128 * 1024 <= len(big)
    for body, n in ((small, 100), (big, 2000)):
        fast, slow = run(body, "binary", False)
        assert fast == slow and len(fast[0]) == n
    assert calls == [len(big)]


def clean_row(task: str, i: int) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": f"r{i}",
        "ts": f"2026-05-01T{i % 24:02d}:00:00Z",
        "tenant_id": "acme" if i % 2 else "globex",
        "model_version": "v1",
    }
    if task == "binary":
        base |= {"age": 30 + i, "plan": "pro", "mobile": bool(i % 2), "note": "ok"}
        base |= {"prediction": i % 2, "score": 0.25}
    elif task == "multiclass":
        base |= {"x": i * 0.5, "prediction": "abc"[i % 3]}
    else:
        base |= {"x": -1.5 * i, "prediction": 3.25 * i}
    return base


def run(body: bytes, task: str, ndjson: bool, **kw: Any) -> Any:
    """(outcome of the fast-then-fallback path, outcome of the row-by-row path)."""
    rules = ingest.inference_rules(SCHEMAS[task])
    target = ingest.rules_schema(rules)
    args = dict(kind="inference", model="m", now=NOW, batch_id="b1", **kw)
    parsed = ingest.ParsedBody(json=body, ndjson=ndjson)
    return outcome(lambda: ingest.validate(parsed, rules, target, **args)), outcome(
        lambda: ingest.validate(parsed.parsed_rows(), rules, target, **args)
    )


def outcome(fn: Any) -> Any:
    """Everything a caller sees, comparable with == (NaN spelled out: it is not equal to itself)."""
    try:
        v = fn()
    except Exception as exc:  # the refusal itself must match
        return ("raised", type(exc).__name__, str(exc))
    return (
        [{k: "NaN" if x != x else x for k, x in r.items()} for r in v.table.to_pylist()],
        v.table.schema,
        [(e.row, e.field, e.reason) for e in v.errors],
        [(q.row_index, q.field, q.reason, q.raw, q.tenant_id) for q in v.rejected],
        v.received,
        v.tenants,
    )


def encode(rows: list[Any], style: str) -> tuple[bytes, bool]:
    # the json module, not orjson: it also writes integers beyond 64 bits, which clients send
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    if style == "array":
        return json.dumps(rows, **compact).encode(), False
    if style == "pretty":  # spaces around separators, newlines inside objects
        return json.dumps(rows, indent=1, separators=(" , ", " : ")).encode(), False
    return b"\n".join(json.dumps(r, **compact).encode() for r in rows) + b"\n", True


@pytest.mark.parametrize("task", sorted(SCHEMAS))
@pytest.mark.parametrize("style", ["array", "ndjson"])
def test_clean_bodies_take_the_fast_path_and_match(task: str, style: str) -> None:
    rows = [clean_row(task, i) for i in range(50)]
    body, ndjson = encode(rows, style)
    rules = ingest.inference_rules(SCHEMAS[task])
    assert ingest.json_columns(body, rules, ndjson=ndjson) is not None
    fast, slow = run(body, task, ndjson)
    assert fast == slow
    assert len(fast[0]) == 50 and fast[2] == []


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"age": None}, "explicit null"),
        ({"unknown": 1}, "unknown key"),
        ({"age": True}, "boolean in a number column"),
        ({"plan": 5}, "number in a text column"),
        ({"plan": 'say "hi"'}, "escaped text"),
        ({"note": 'a":b'}, "key-like text"),
        ({"age": "31"}, "number as text"),
        ({"prediction": 2}, "out-of-range class"),
        ({"mobile": "yes"}, "text in a boolean column"),
        ({"ts": 1714521600}, "epoch timestamp"),
        ({"plan": {"nested": 1}}, "object value"),
    ],
)
def test_bodies_the_fast_path_cannot_vouch_for_fall_back_and_match(
    over: dict[str, Any], why: str
) -> None:
    rows = [clean_row("binary", i) for i in range(5)]
    rows[3] |= over
    body, ndjson = encode(rows, "array")
    fast, slow = run(body, "binary", ndjson)
    assert fast == slow, why


def test_nan_and_malformed_elements_cost_only_their_row() -> None:
    rows = [clean_row("regression", i) for i in range(3)]
    body = orjson.dumps(rows).replace(b'"x":-1.5', b'"x":NaN')
    assert b"NaN" in body
    fast, slow = run(body, "regression", False)
    # not JSON, but the array's elements are found: only the NaN row is quarantined
    assert fast == slow and [r["request_id"] for r in fast[0]] == ["r0", "r2"]
    assert [(e[0], e[1]) for e in fast[2]] == [(1, "<row>")] and "invalid JSON" in fast[2][0][2]
    assert fast[3][0][3].startswith('{"request_id":"r1"')  # the element as it was sent
    fast, slow = run(b'[{"request_id": "a"}, {"x": 1', "regression", False)
    assert fast == slow and fast[0] == "raised"  # brackets do not balance: 400, nothing stored
    fast, slow = run(b'[{"request_id": "a"}, 5]', "regression", False)
    assert fast == slow
    good = orjson.dumps(clean_row("regression", 1))
    fast, slow = run(good + b"\n{oops\n", "regression", True)
    # the broken line is quarantined, the good one kept
    assert fast == slow and len(fast[0]) == 1 and len(fast[3]) == 1


def test_tenant_scope_applies_on_the_fast_path() -> None:
    rows = [clean_row("regression", i) for i in range(4)]
    body, _ = encode(rows, "array")
    fast, slow = run(body, "regression", False, tenant_scope="acme")
    assert fast == slow and fast[0] == "raised" and fast[1] == "PermissionDenied"
    only = orjson.dumps([{k: v for k, v in r.items() if k != "tenant_id"} for r in rows])
    fast, slow = run(only, "regression", False, tenant_scope="acme")
    assert fast == slow and {r["tenant_id"] for r in fast[0]} == {"acme"}


# Any JSON value a client might send in any field, including the awkward ones.
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["0", "1", "true", "1.5", " 2 ", "", "abc", "a", "b", "nan", "2026-05-01"]),
    st.sampled_from(["2026-05-01T00:00:00", "2026-05-01T00:00:00+02:00", "2999-01-01T00:00:00Z"]),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["k"]), st.integers(), max_size=1),
)


# Values a clean body holds, per field: these bodies mostly take the fast path.
numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**60), 2**60))
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
BENIGN = {"age": numbers, "x": numbers, "plan": texts, "note": texts, "model_version": texts}


@st.composite
def bodies(draw: Any) -> tuple[bytes, str, bool]:
    task = draw(st.sampled_from(sorted(SCHEMAS)))
    n = draw(st.integers(1, 6))
    benign = draw(st.booleans())
    rows: list[Any] = []
    for i in range(n):
        r = clean_row(task, i)
        for key in draw(st.lists(st.sampled_from(sorted(r)), max_size=3, unique=True)):
            if draw(st.booleans()):
                del r[key]
            else:
                r[key] = draw(BENIGN.get(key, st.just(r[key])) if benign else values)
        if not benign and draw(st.integers(0, 9)) == 0:
            r[draw(st.sampled_from(["extra", "Age", "score "]))] = draw(values)
        rows.append(r if benign or draw(st.integers(0, 19)) else draw(values))
    style = draw(st.sampled_from(["array", "pretty", "ndjson"]))
    if style == "ndjson" and not all(isinstance(r, dict) for r in rows):
        style = "array"
    body, ndjson = encode(rows, style)
    return body, task, ndjson


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_any_body_gives_what_row_by_row_parsing_gives(case: tuple[bytes, str, bool]) -> None:
    body, task, ndjson = case
    fast, slow = run(body, task, ndjson)
    assert fast == slow
