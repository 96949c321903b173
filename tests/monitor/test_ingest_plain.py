"""The plain path for small columns of JSON values (``monitor.ingest.convert._plain``) is only
a shortcut: for any column it must give what ``convert_column``'s usual path gives (the same
typed array, no error) or step aside, and it must be taken for clean columns. Compared with
the path switched off (``PLAIN_COLUMN = -1``): column by column on edge values of every kind
of field, and body by body (the stored table, errors, quarantined rows, refusals) on good
and bad bodies."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from monitor import ingest
from monitor.ingest import convert
from monitor.ingest.rules import FieldRule, Limits
from tests.monitor.test_ingest_json_fast import SCHEMAS, bodies, clean_row, encode, outcome

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
LIMITS = Limits(max_id_chars=8, max_category_chars=6, max_abs_number=1e6)

# JSON values as the parser gives them, per kind of field: the clean ones first
EDGES: dict[str, list[Any]] = {
    "float": [
        *(0.5, 0, 1, -0.0, 1.0, 1e6, -1e6, 1e6 * 1.0000001, 3e6, 1.5, -0.1, 7, -(10**6)),
        *(2**53, 2**53 + 1, -(2**53) - 1, 2**64, -(2**70), 1e300, 1.7e308, -1.7e308),
        *(float("nan"), float("inf"), float("-inf"), True, False, "0.5", "", " 2 ", "nan"),
        *([1], {"k": 1}, None),
    ],
    "binary": [0, 1, 2, -1, 0.0, 1.0, 0.5, True, False, "1", "true", 2**64, [0], None],
    "bool": [True, False, 0, 1, 2, 1.0, "true", "yes", "", None],
    "tenant": [
        *("acme", "globex", "a" * 64, "a" * 65, "", "acme\n", "-x", "x-", "ü", "a b"),
        *("a\x00b", "A.b_c-1", 5, 1.5, True, "\ud800", None),
    ],
    "id": [
        *("r-1", "x" * 8, "x" * 9, "", "é" * 8, "é" * 9, "😀" * 8, "😀" * 9, "a\x00b"),
        *(7, 2**70, 1.5, False, "\udfff", {"k": 1}, None),
    ],
    "string": ["pro", "", "x" * 6, "x" * 7, "ß" * 6, "ß" * 7, "a\nb", 3, 0.1, True, [], None],
    "class": ["a", "b", "c", "", "A", " a", 1, None],
    "ts": [
        *("2026-05-01T11:00:00+00:00", "2026-05-01T11:00:00Z", "2026-05-01 11:00:00"),
        *("2026-05-01T11:00:00.123456+02:00", "2026-05-01T13:00:00+00:00", "2026-05-01"),
        *("2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z", "2026-05-01T13:00:00.000001Z"),
        *("2024", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z"),
        *("2026-05-01T11:00:00+25:00", "yesterday", "", " 2026-05-01T11:00:00Z", 1714521600),
        *(1714521600.5, 2024, 10**20, True, None),
    ],
}
RULES = [
    FieldRule("f", "float"),
    FieldRule("f", "float", required=True),
    FieldRule("p", "float", unit_interval=True),
    FieldRule("b", "binary", required=True),
    FieldRule("b", "binary"),
    FieldRule("o", "bool"),
    FieldRule("tenant_id", "tenant", required=True),
    FieldRule("tenant_id", "tenant"),
    FieldRule("request_id", "id", required=True, chars="id"),
    FieldRule("v", "string", chars="category"),
    FieldRule("v", "string"),
    FieldRule("c", "class", classes=("a", "b"), chars="category"),
    FieldRule("c", "class"),
    FieldRule("ts", "ts", required=True),
    FieldRule("ts", "ts"),
]


def columns(kind: str) -> list[list[Any]]:
    """Each edge value alone, after a clean neighbour, every pair, all clean ones together,
    and all of them."""
    values = EDGES[kind]
    clean = values[0]
    return (
        [[v] for v in values]
        + [[clean, v] for v in values]
        + [list(pair) for pair in itertools.combinations(values, 2)]
        + [values[:2], [*values[:2], None], values]
    )


def converted(rule: FieldRule, values: list[Any], limits: Limits, *, plain: bool) -> Any:
    saved = convert.PLAIN_COLUMN
    convert.PLAIN_COLUMN = saved if plain else -1
    try:
        arr, errors = convert.convert_column(rule, list(values), len(values), NOW, limits)
    except Exception as exc:  # pragma: no cover - neither path raises; if one did, compare
        return ("raised", type(exc).__name__, str(exc))
    finally:
        convert.PLAIN_COLUMN = saved
    values_out = ["NaN" if v != v else v for v in arr.to_pylist()]  # NaN is not equal to itself
    return arr.type, values_out, arr.null_count, errors


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.kind}-{r.name}-{r.required}")
@pytest.mark.parametrize("limits", [LIMITS, Limits(check_time=False)], ids=["limits", "no-time"])
def test_a_column_converts_as_without_the_plain_path(rule: FieldRule, limits: Limits) -> None:
    taken = 0
    for values in columns(rule.kind):
        with_plain = converted(rule, values, limits, plain=True)
        without = converted(rule, values, limits, plain=False)
        assert with_plain == without, (rule, values)
        taken += convert._plain(list(values), rule, NOW, limits) is not None
    assert taken > 0  # not vacuous: clean columns of every kind take it


def test_the_plain_path_refuses_what_the_checks_flag() -> None:
    """Control: a column with a bad value is never passed as clean."""
    p = FieldRule("p", "float", unit_interval=True)
    assert convert._plain([0.5, 0.25], p, NOW, LIMITS) is not None
    for bad in (1.5, -0.1, float("nan"), float("inf"), True, "0.5", 2**64, None):
        assert convert._plain([0.5, bad], p, NOW, LIMITS) is None or bad is None
    assert convert._plain([0.5, None], FieldRule("p", "float", required=True), NOW, LIMITS) is None
    tenant = FieldRule("tenant_id", "tenant", required=True)
    for bad in ("", "acme\n", "a b", "a" * 65, 5):
        assert convert._plain(["acme", bad], tenant, NOW, LIMITS) is None
    ts = FieldRule("ts", "ts", required=True)
    assert convert._plain(["2026-05-01T11:00:00Z"], ts, NOW, LIMITS) is not None
    for bad in ("2026-05-01T13:00:01Z", "1999-12-31T23:59:59Z", 1714521600):
        assert convert._plain(["2026-05-01T11:00:00Z", bad], ts, NOW, LIMITS) is None


def run(body: bytes, task: str, ndjson: bool, *, plain: bool, **kw: Any) -> Any:
    """What a caller sees of ``validate`` on a JSON body parsed row by row (the path small
    bodies take), with or without the plain path."""
    rules = ingest.inference_rules(SCHEMAS[task])
    target = ingest.rules_schema(rules)
    args = dict(kind="inference", model="m", now=NOW, batch_id="b1", **kw)
    parsed = ingest.ParsedBody(json=body, ndjson=ndjson).parsed_rows()
    saved = convert.PLAIN_COLUMN
    convert.PLAIN_COLUMN = saved if plain else -1
    try:
        return outcome(lambda: ingest.validate(parsed, rules, target, **args))
    finally:
        convert.PLAIN_COLUMN = saved


def bad_bodies() -> list[tuple[str, bytes, dict[str, Any]]]:
    """Good and bad bodies: NaN, missing fields, wrong types, huge ints, unicode, duplicate
    ids, another tenant's ids under a scoped key."""
    rows = [clean_row("binary", i) for i in range(6)]

    def body(**over: Any) -> bytes:
        changed = [dict(r) for r in rows]
        changed[2] |= over
        return json.dumps(changed, ensure_ascii=False).encode()  # integers beyond 64 bits too

    out: list[tuple[str, bytes, dict[str, Any]]] = [
        ("clean", orjson.dumps(rows), {}),
        ("NaN literal", orjson.dumps(rows).replace(b'"score":0.25', b'"score":NaN', 1), {}),
        ("NaN text", body(score="NaN"), {}),
        ("missing prediction", orjson.dumps([*rows[:2], {"request_id": "r9"}]), {}),
        ("wrong type", body(age="thirty"), {}),
        ("bool as number", body(age=True), {}),
        ("number as text", body(plan=5), {}),
        ("huge int", body(age=2**64), {}),
        ("huge int beyond float precision", body(age=2**53 + 1), {}),
        ("beyond the number limit", body(age=1e200), {}),
        ("unicode", body(plan="ñ€😀", note="日本語"), {}),
        ("over the length limit", body(plan="é" * 257), {}),
        ("duplicate ids", orjson.dumps([rows[0], rows[0], rows[1]]), {}),
        ("prediction 2", body(prediction=2), {}),
        ("prediction true", body(prediction=True), {}),
        ("score outside [0, 1]", body(score=1.5), {}),
        ("epoch ts", body(ts=1714521600), {}),
        ("future ts", body(ts="2030-01-01T00:00:00Z"), {}),
        ("bad tenant", body(tenant_id="no spaces"), {}),
        ("empty id", body(request_id=""), {}),
        ("not an object", orjson.dumps([rows[0], 5, rows[1]]), {}),
        ("unknown column", body(extra=1), {}),
        ("other tenant, scoped key", orjson.dumps(rows), {"tenant_scope": "acme"}),
        (
            "own tenant, scoped key",
            orjson.dumps([r | {"tenant_id": "acme"} for r in rows]),
            {"tenant_scope": "acme"},
        ),
        (
            "no tenant, scoped key",
            orjson.dumps([{k: v for k, v in r.items() if k != "tenant_id"} for r in rows]),
            {"tenant_scope": "acme"},
        ),
    ]
    ndjson, _ = encode(rows, "ndjson")
    out.append(("ndjson with a broken line", ndjson + b"{oops\n", {"ndjson": True}))
    return out


@pytest.mark.parametrize("case", bad_bodies(), ids=lambda c: c[0])
def test_a_body_validates_as_without_the_plain_path(
    case: tuple[str, bytes, dict[str, Any]],
) -> None:
    _, body, kw = case
    ndjson = kw.pop("ndjson", False)
    with_plain = run(body, "binary", ndjson, plain=True, **kw)
    assert with_plain == run(body, "binary", ndjson, plain=False, **kw)


def test_clean_bodies_take_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column of a clean body of each task is converted by the plain path."""
    taken: list[bool] = []
    plain = convert._plain

    def counting(*a: Any) -> Any:
        got = plain(*a)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(convert, "_plain", counting)
    for task in SCHEMAS:
        body = orjson.dumps([clean_row(task, i) for i in range(10)])
        assert len(run(body, task, False, plain=True)[0]) == 10
    assert taken and all(taken)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_any_body_validates_as_without_the_plain_path(case: tuple[bytes, str, bool]) -> None:
    body, task, ndjson = case
    assert run(body, task, ndjson, plain=True) == run(body, task, ndjson, plain=False)


def test_a_large_column_takes_the_usual_path() -> None:
    rule = FieldRule("f", "float")
    values = [0.5] * (convert.PLAIN_COLUMN + 1)
    arr, errors = convert.convert_column(rule, values, len(values), NOW, LIMITS)
    assert errors == [] and arr.type == pa.float64() and len(arr) == len(values)
