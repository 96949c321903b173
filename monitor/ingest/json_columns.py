"""The DuckDB fast path for large clean JSON bodies: read straight into typed columns."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from monitor.ingest.rules import FieldRule, Kind
from storage.json_reader import JsonReadError, read_json_columns

# Columns a clean JSON body reads straight into: DOUBLE for numbers, the raw value text (JSON)
# for the rest, which is then checked to be exactly what the row-by-row parser would accept.
_JSON_READ_TYPES: dict[Kind, str] = {"float": "DOUBLE"}
_BOOL_TEXT = ("true", "false", "1", "0")  # what convert.py accepts as a boolean or 0/1
_TRUE_TEXT = ("true", "1")
_BOOL_LITERALS = ("true", "false")
_UNIT_VALUES = (0.0, 1.0)


@cache
def _arrow(values: tuple[str, ...] | tuple[float, ...]) -> pa.Array:
    """``values`` as an Arrow array, made at first use: pyarrow imports pandas at its first
    conversion of Python values (~0.7 s), which a server's start-up need not pay (issue 17)."""
    return pa.array(values)


def json_columns(body: bytes, rules: Sequence[FieldRule], *, ndjson: bool) -> pa.Table | None:
    """A JSON body read by DuckDB into the rules' columns, or None when the result might differ
    from parsing it row by row (then the caller does that).

    DuckDB's reader is lenient where our validation is strict, so the table is returned only
    when every one of these holds (each is cheap; a body that fails any takes the slow path,
    which finds and reports the problem):

    * every key in the body is a rule's column and no value is an explicit ``null``: the
      number of ``":`` in the body (each key ends with one; inside a string it would be
      ``\\":``) equals the number of non-null values read;
    * no ``true``/``false`` outside boolean columns (DuckDB reads ``true`` as 1.0: checked by
      counting them in the body when a number column holds a 0.0 or 1.0);
    * numbers are finite (``NaN`` is not JSON; DuckDB accepts it);
    * text columns hold JSON strings without escapes (a number is not silently its text);
    * boolean and binary columns hold only ``true``/``false``/``0``/``1``.
    """
    stripped = body.strip()
    if not stripped or (not ndjson and not stripped.startswith(b"[")):
        return None
    columns = {r.name: _JSON_READ_TYPES.get(r.kind, "JSON") for r in rules}
    try:
        table = read_json_columns(body, columns, ndjson=ndjson)
    except JsonReadError:
        return None
    n = table.num_rows
    if n == 0:
        return None
    non_null = sum(n - table.column(c).null_count for c in table.column_names)
    if body.count(b'":') != non_null:
        return None
    booleans = 0
    unit_values = False  # a number column holding 0.0 or 1.0: might have been true/false
    out: dict[str, pa.Array] = {}
    for rule in rules:
        col = table.column(rule.name).combine_chunks()
        if col.null_count == n:
            continue  # the key appears nowhere: the column is absent, as for parsed rows
        if rule.kind == "float":
            if pc.any(pc.is_nan(col)).as_py() or pc.any(pc.is_inf(col)).as_py():
                return None
            unit_values = unit_values or bool(pc.any(pc.is_in(col, _arrow(_UNIT_VALUES))).as_py())
            out[rule.name] = col
            continue
        text = col.cast(pa.string())
        if rule.kind in ("bool", "binary"):
            known = pc.or_(pc.is_in(text, _arrow(_BOOL_TEXT)), text.is_null())
            if not pc.all(known).as_py():
                return None
            booleans += int(pc.sum(pc.is_in(text, _arrow(_BOOL_LITERALS))).as_py() or 0)
            flags = pc.is_in(text, _arrow(_TRUE_TEXT))  # false for a null: restored just below
            values = pc.if_else(col.is_null(), pa.scalar(None, pa.bool_()), flags)
            out[rule.name] = values if rule.kind == "bool" else values.cast(pa.int32())
            continue
        quoted = pc.and_(pc.starts_with(text, '"'), pc.ends_with(text, '"'))
        if not pc.all(quoted).as_py() or pc.any(pc.match_substring(text, "\\")).as_py():
            return None
        out[rule.name] = pc.utf8_slice_codeunits(text, 1, -1)
    # DuckDB reads true as 1.0 into a number column: only then can one hide there, and then
    # every true/false in the body must be one the boolean columns account for
    if unit_values and body.count(b"true") + body.count(b"false") != booleans:
        return None
    return pa.table(out) if out else None


# Below this size a JSON body goes straight to the row-by-row parse: DuckDB's reader costs a
# few milliseconds whatever the size (it starts a scan on its thread pool), orjson about 10 µs
# a row, so for the small bodies of many small writers (1-100 rows) the reader was most of the
# request's CPU. Both paths give the same result (tests/monitor/test_ingest_json_fast.py).
SMALL_JSON_BYTES = 128 * 1024
