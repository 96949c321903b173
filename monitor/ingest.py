"""Turn request bodies into validated Arrow batches, splitting off rejected rows.

One pass per column: a typed fast path (Arrow casts, vectorised checks) and a per-value slow
path only for the columns where the fast path found something wrong, so a clean batch of
50,000 JSON rows validates in tens of milliseconds and a dirty one still says, for every bad
row, which field failed and why. Valid rows are never dropped because a neighbour was bad.

Row rules (each broken one rejects the row, with the field and the reason; see
``docs/ingest.md``): numbers finite and at most :attr:`Limits.max_abs_number` in magnitude
(``NaN``/``Infinity`` as numbers or strings are refused: send null for a missing value);
timestamps between :attr:`Limits.min_ts` and now + :attr:`Limits.max_future`; text no longer
than its limit (ids, category values, free text), never clipped. A body that cannot be read as
a whole (a truncated Arrow stream or Parquet file, duplicate column names, a CSV header that is
not UTF-8) is refused whole with 400.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc
import pyarrow.parquet as pq

from monitor.errors import BadRequestError, FieldError, PermissionDenied, ValidationFailed
from storage.json_reader import JsonReadError, read_json_columns
from storage.types import ModelSchema, QuarantineRow

TS_TYPE = pa.timestamp("us", tz="UTC")
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """Per-row bounds; the service builds them from the settings named in each reason."""

    min_ts: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future: timedelta = timedelta(hours=1)
    check_time: bool = True  # False for references: a baseline may be synthetic
    max_id_chars: int = 128  # request_id, event_id, event names, model_version
    max_category_chars: int = 256  # category values and classes
    max_text_chars: int = 65_536  # free-text features
    max_abs_number: float = 1e100

    def chars(self, which: str) -> tuple[int, str]:
        """The limit for a kind of text and the setting that sets it."""
        return {
            "id": (self.max_id_chars, "DRIFTWATCH_MAX_ID_CHARS"),
            "category": (self.max_category_chars, "DRIFTWATCH_MAX_CATEGORY_CHARS"),
            "text": (self.max_text_chars, "DRIFTWATCH_MAX_TEXT_CHARS"),
        }[which]


Kind = Literal["string", "float", "binary", "class", "bool", "ts", "tenant", "id"]


@dataclass(frozen=True)
class FieldRule:
    """How one input field is converted and checked."""

    name: str
    kind: Kind
    required: bool = False
    unit_interval: bool = False  # scores: a probability, so outside [0, 1] is an error
    classes: tuple[str, ...] = ()
    chars: Literal["id", "category", "text"] | None = None  # which length limit applies


@dataclass
class RowError:
    row: int
    field: str
    reason: str


@dataclass
class Validated:
    """The outcome of validating one batch."""

    table: pa.Table  # valid rows only, columns typed as the store expects
    errors: list[RowError]  # every problem, in row order (one per bad row and field)
    rejected: list[QuarantineRow]  # one per rejected row, with the raw row
    received: int
    tenants: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- field rules
def inference_rules(schema: ModelSchema) -> list[FieldRule]:
    rules = [
        FieldRule("request_id", "id", required=True, chars="id"),
        FieldRule("ts", "ts", required=True),
        FieldRule("tenant_id", "tenant", required=True),
        FieldRule("model_version", "string", chars="id"),
    ]
    kinds: dict[str, Kind] = {
        "numeric": "float",
        "categorical": "string",
        "boolean": "bool",
        "text": "string",
    }
    chars: dict[str, Literal["category", "text"]] = {"categorical": "category", "text": "text"}
    rules += [FieldRule(f.name, kinds[f.kind], chars=chars.get(f.kind)) for f in schema.features]
    rules.append(prediction_rule(schema, schema.prediction, required=True))
    unit = schema.task != "regression"
    rules += [FieldRule(s, "float", unit_interval=unit) for s in schema.scores]
    return rules


def prediction_rule(schema: ModelSchema, name: str, required: bool) -> FieldRule:
    if schema.task == "regression":
        return FieldRule(name, "float", required=required)
    if schema.task == "binary":
        return FieldRule(name, "binary", required=required)
    return FieldRule(name, "class", required=required, classes=schema.classes, chars="category")


def label_rules(schema: ModelSchema) -> list[FieldRule]:
    return [
        FieldRule("request_id", "id", required=True, chars="id"),
        prediction_rule(schema, "label", required=True),
        FieldRule("ts", "ts"),
        FieldRule("tenant_id", "tenant"),
    ]


def reference_rules(schema: ModelSchema) -> list[FieldRule]:
    """A baseline: any subset of the inference columns plus the label, none required."""
    rules = [replace(r, required=False) for r in inference_rules(schema)]
    return [*rules, prediction_rule(schema, "label", required=False)]


def rules_schema(rules: Sequence[FieldRule]) -> pa.Schema:
    """The Arrow schema of a batch validated with ``rules``."""
    return pa.schema([pa.field(r.name, ARROW_TYPES[r.kind]) for r in rules])


def event_rules() -> list[FieldRule]:
    return [
        FieldRule("event_id", "id", chars="id"),
        FieldRule("tenant_id", "tenant", required=True),
        FieldRule("ts", "ts", required=True),
        FieldRule("name", "id", required=True, chars="id"),
        FieldRule("value", "float"),
        FieldRule("request_id", "id", chars="id"),
        FieldRule("model", "string", chars="id"),
    ]


ARROW_TYPES: dict[Kind, pa.DataType] = {
    "string": pa.string(),
    "id": pa.string(),
    "tenant": pa.string(),
    "float": pa.float64(),
    "binary": pa.int32(),
    "class": pa.string(),
    "bool": pa.bool_(),
    "ts": TS_TYPE,
}


# --------------------------------------------------------------------------- body parsing
JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/parquet", "application/x-parquet")
ARROW_IPC_TYPES = (
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.arrow.file",
    "application/x-arrow",
)
CSV_TYPES = ("text/csv",)
SUPPORTED_TYPES = JSON_TYPES + NDJSON_TYPES + PARQUET_TYPES + ARROW_IPC_TYPES + CSV_TYPES


@dataclass
class ParsedBody:
    """Rows as JSON objects (JSON/NDJSON), an Arrow table (Parquet/Arrow/CSV), or a JSON body
    not parsed yet: ``validate`` first tries to read it straight into typed columns."""

    rows: list[Any] | None = None
    table: pa.Table | None = None
    json: bytes | None = None
    ndjson: bool = False
    # rows the parser could read only in part (a CSV value that is not UTF-8): row -> (field,
    # reason); validate rejects them like any other bad row
    row_errors: dict[int, tuple[str, str]] = field(default_factory=dict)
    raw_text: dict[int, str] = field(default_factory=dict)  # such a row as it was sent

    def parsed_rows(self) -> ParsedBody:
        """This body with its JSON parsed into row objects (BadRequestError if it is not JSON)."""
        if self.json is None:
            return self
        return _parse_ndjson(self.json) if self.ndjson else _parse_json_array(self.json)

    @property
    def count(self) -> int:
        if self.json is not None:
            return self.parsed_rows().count
        return len(self.rows) if self.rows is not None else (self.table or pa.table({})).num_rows


_UTF8_BOM = b"\xef\xbb\xbf"  # some editors and Windows tools start UTF-8 files with it


def defers_parsing(content_type: str) -> bool:
    """True when :func:`parse_body` only wraps the body (JSON and NDJSON: ``validate`` parses
    them), so it costs nothing to call it on the event loop."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in JSON_TYPES or ctype in NDJSON_TYPES


def parse_body(body: bytes, content_type: str) -> ParsedBody:
    """Parse a request body by its Content-Type; an unreadable body raises BadRequestError.

    A body is refused whole when it cannot be read as a whole: a truncated Parquet file or
    Arrow stream (the rows it holds are not the rows that were sent), duplicate column names
    (which one holds the values is ambiguous), a CSV header that is not UTF-8.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in JSON_TYPES:
        return ParsedBody(json=body.removeprefix(_UTF8_BOM))
    if ctype in NDJSON_TYPES:
        return ParsedBody(json=body.removeprefix(_UTF8_BOM), ndjson=True)
    if ctype in PARQUET_TYPES:
        try:
            # the footer alone first: pyarrow refuses duplicate names with a cryptic message;
            # a BufferReader reads the body in place (a BytesIO costs a copy, 18 % of the read)
            _unique_names(pq.read_schema(pa.BufferReader(body)).names, "Parquet file")
            return ParsedBody(table=pq.read_table(pa.BufferReader(body)))
        except (pa.ArrowException, OSError) as exc:
            raise BadRequestError(f"body is not a readable Parquet file: {exc}") from exc
    if ctype in ARROW_IPC_TYPES:
        try:
            return ParsedBody(table=_read_ipc(body))
        except (pa.ArrowException, OSError) as exc:
            raise BadRequestError(
                f"body is not a readable Arrow IPC {_ipc_kind(body)}: {exc}"
            ) from exc
    if ctype in CSV_TYPES:
        try:
            return _read_csv_rows(body)
        except (pa.ArrowException, OSError) as exc:
            raise BadRequestError(f"body is not a readable CSV file: {exc}") from exc
    raise BadRequestError(
        f"unsupported Content-Type {_show(content_type)}; use one of: {', '.join(SUPPORTED_TYPES)}"
    )


def _unique_names(names: Sequence[str], what: str) -> None:
    """Duplicate column names refuse the body (400): which column holds the values would be a
    guess, and the rows cannot be checked one by one when their columns are ambiguous."""
    twice = [(n, k) for n, k in Counter(names).items() if k > 1]
    if twice:
        listed = ", ".join(f"{_show(n)} ({k} times)" for n, k in twice[:5])
        raise BadRequestError(
            f"the {what} has duplicate column names: {listed}; each column must appear once"
        )


def _csv_header(body: bytes) -> list[str]:
    line = body.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            f"the CSV header is not UTF-8: byte 0x{line[exc.start]:02x} at position {exc.start} "
            "of the first line (save the file as UTF-8)"
        ) from None
    return next(csv.reader([text]), [])


def _read_csv_rows(body: bytes) -> ParsedBody:
    # Every column as text: the validator converts with per-row errors instead of Arrow
    # guessing a type from the first block and failing the whole file on row 90,000.
    header = _csv_header(body)
    _unique_names(header, "CSV header")
    opts = pacsv.ConvertOptions(column_types={h: pa.string() for h in header})
    try:
        return ParsedBody(table=pacsv.read_csv(io.BytesIO(body), convert_options=opts))
    except pa.ArrowInvalid:
        pass
    # Some line has too many or too few fields, or a value is not UTF-8: read the file again,
    # one record after the other (so each bad line's position is known), as bytes, and reject
    # only the rows concerned.
    skipped: list[tuple[int | None, int, int, str]] = []

    def bad_line(row: Any) -> str:
        skipped.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    raw = pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=bad_line),
        convert_options=pacsv.ConvertOptions(column_types={h: pa.binary() for h in header}),
    )
    if any(number is None for number, *_ in skipped):
        raise BadRequestError("a CSV line has more or fewer fields than the header")
    # record numbers count the header as 1: data row i is record i + 2
    lost = {number - 2: (want, got, text) for number, want, got, text in skipped if number}
    total = raw.num_rows + len(lost)
    kept = [i for i in range(total) if i not in lost]  # table row of each line read
    errors: dict[int, tuple[str, str]] = {
        i: ("<row>", f"the line has {got} fields, the header {want}")
        for i, (want, got, _) in lost.items()
    }
    columns: list[pa.Array] = []
    for name, col in zip(raw.column_names, raw.columns, strict=True):
        try:
            columns.append(col.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        values: list[str | None] = []
        for i, v in enumerate(col.to_pylist()):
            if v is None:
                values.append(None)
                continue
            try:
                values.append(v.decode("utf-8"))
            except UnicodeDecodeError as err:
                errors.setdefault(
                    kept[i],
                    (name, f"not UTF-8: byte 0x{v[err.start]:02x} at position {err.start}"),
                )
                values.append(v.decode("utf-8", "replace"))  # the quarantined copy shows U+FFFD
        columns.append(pa.array(values, pa.string()))
    table = pa.Table.from_arrays(columns, names=raw.column_names)
    if lost:  # an empty row (all null) in place of each line that could not be read
        where = np.full(total, -1, dtype=np.int64)
        where[kept] = np.arange(raw.num_rows)
        table = table.take(pa.array(where, mask=where < 0))
    raw_text = {i: text for i, (_, _, text) in lost.items()}
    return ParsedBody(table=table, row_errors=errors, raw_text=raw_text)


# The end-of-stream marker of the Arrow IPC stream format: continuation token, zero length.
_IPC_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_IPC_FILE_MAGIC = b"ARROW1"


def _ipc_kind(body: bytes) -> str:
    return "file" if body.startswith(_IPC_FILE_MAGIC) else "stream"


def _read_ipc(body: bytes) -> pa.Table:
    """An Arrow IPC file, or a stream that ends with its end-of-stream marker.

    Without the marker a stream cut at a batch boundary reads as a shorter, valid stream: the
    rows after the cut would be lost without a word. The marker alone is not proof (the last
    bytes of a batch can look like it), so the stream is read without its last 8 bytes, which
    reads cleanly only when those 8 bytes were the marker and not part of a batch.
    """
    buf = pa.py_buffer(body)  # zero copy: the table's buffers point into the body
    if _ipc_kind(body) == "file":
        table = paipc.open_file(buf).read_all()
    else:
        if not body.endswith(_IPC_EOS):
            raise BadRequestError(
                "the Arrow IPC stream is truncated: it does not end with the end-of-stream "
                "marker (close the stream writer before sending); nothing was stored"
            )
        try:
            table = paipc.open_stream(buf.slice(0, len(body) - len(_IPC_EOS))).read_all()
        except (pa.ArrowException, OSError) as exc:
            raise BadRequestError(
                f"the Arrow IPC stream is truncated or corrupt ({exc}); nothing was stored"
            ) from exc
    _unique_names(table.column_names, f"Arrow IPC {_ipc_kind(body)}")
    return table


def _parse_json_array(body: bytes) -> ParsedBody:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # One broken element (invalid UTF-8, a lone surrogate, nesting deeper than orjson
        # reads, a syntax error inside an object) must not cost its neighbours: when the
        # array's brackets and strings balance, each element is parsed on its own.
        elements = _split_json_array(body)
        if elements is None:
            raise BadRequestError(f"body is not valid JSON: {exc}") from exc
        rows: list[Any] = []
        for element in elements:
            try:
                rows.append(orjson.loads(element))
            except orjson.JSONDecodeError as err:
                text = element.decode("utf-8", "replace").strip()
                rows.append(_Unparseable(text, f"invalid JSON: {err}"))
        return ParsedBody(rows=rows)
    if isinstance(data, dict) and "rows" in data:
        data = data["rows"]
    if not isinstance(data, list):
        raise BadRequestError('JSON body must be an array of row objects (or {"rows": [...]})')
    return ParsedBody(rows=data)


# What matters for finding the elements of a top-level array: strings (skipped whole, they may
# hold brackets and commas) and the structural characters.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]|"', re.DOTALL)  # a lone " last
_MAX_SPLIT_TOKENS = 4_000_000  # about 1.5 s of splitting; a larger broken body is refused whole
_OPEN, _CLOSE, _COMMA, _QUOTE = frozenset(b"[{"), frozenset(b"]}"), ord(","), ord('"')


def _split_json_array(body: bytes) -> list[bytes] | None:
    """The texts of the elements of a top-level JSON array, or None when its brackets or
    strings do not balance (then nothing can be said about which row is which)."""
    text = body.strip()
    if not text.startswith(b"["):
        return None
    depth, start, end = 0, 0, -1
    parts: list[bytes] = []
    for n, m in enumerate(_JSON_TOKENS.finditer(text)):
        if n > _MAX_SPLIT_TOKENS:
            return None
        c = text[m.start()]
        if c == _QUOTE:
            if m.end() - m.start() == 1:
                return None  # a string that never ends: its extent is a guess
            continue
        if c in _OPEN:
            depth += 1
            if depth == 1:
                start = m.end()
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                parts.append(text[start : m.start()])
                end = m.end()
                break
        elif c == _COMMA and depth == 1:
            parts.append(text[start : m.start()])
            start = m.end()
    if end < 0 or text[end:].strip():
        return None
    if len(parts) == 1 and not parts[0].strip():
        return []  # "[]"
    return parts


def _parse_ndjson(body: bytes) -> ParsedBody:
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    try:  # fast path: one parse of the whole body
        return ParsedBody(rows=orjson.loads(b"[" + b",".join(lines) + b"]"))
    except orjson.JSONDecodeError:
        pass
    # some line is broken: keep every good line, quarantine the broken ones
    rows: list[Any] = []
    for line in lines:
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            rows.append(_Unparseable(line.decode("utf-8", "replace"), f"invalid JSON: {exc}"))
    return ParsedBody(rows=rows)


# Columns a clean JSON body reads straight into: DOUBLE for numbers, the raw value text (JSON)
# for the rest, which is then checked to be exactly what the row-by-row parser would accept.
_JSON_READ_TYPES: dict[Kind, str] = {"float": "DOUBLE"}
_BOOL_TEXT = pa.array(["true", "false", "1", "0"])  # what _to_bool and _to_binary accept
_TRUE_TEXT = pa.array(["true", "1"])
_BOOL_LITERALS = pa.array(["true", "false"])
_UNIT_VALUES = pa.array([0.0, 1.0])


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
            unit_values = unit_values or bool(pc.any(pc.is_in(col, _UNIT_VALUES)).as_py())
            out[rule.name] = col
            continue
        text = col.cast(pa.string())
        if rule.kind in ("bool", "binary"):
            known = pc.or_(pc.is_in(text, _BOOL_TEXT), text.is_null())
            if not pc.all(known).as_py():
                return None
            booleans += int(pc.sum(pc.is_in(text, _BOOL_LITERALS)).as_py() or 0)
            flags = pc.is_in(text, _TRUE_TEXT)  # false for a null: restored just below
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


@dataclass
class _Unparseable:
    raw: str
    why: str


# --------------------------------------------------------------------------- validation
def validate(
    parsed: ParsedBody,
    rules: Sequence[FieldRule],
    target: pa.Schema,
    *,
    kind: Literal["inference", "label", "event", "reference"],
    model: str | None,
    tenant_scope: str | None = None,
    now: datetime | None = None,
    limits: Limits | None = None,
    batch_id: str | None = None,
    fill: dict[str, Callable[[pa.Table], pa.Array]] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Validated:
    """Check a parsed body against field rules; return typed valid rows and rejected rows.

    ``aliases`` maps column names of the body to the rules' fields (the model schema's
    ``aliases``: ``{"id": "request_id"}``); a body holding both a column and its alias's field
    is refused whole (which one holds the value would be a guess).

    ``limits`` bounds timestamps, text lengths and numbers per row (defaults: the settings'
    defaults); ``now`` is the time the future-skew bound counts from.

    Raises
    ------
    ValidationFailed
        The batch as a whole does not fit (unknown columns). Nothing is stored.
    PermissionDenied
        A tenant-scoped key sent rows of another tenant. Nothing is stored.
    """
    now = now or datetime.now(UTC)
    limits = limits or Limits()
    batch_id = batch_id or uuid.uuid4().hex
    if parsed.json is not None:
        args = (rules, target)
        kw: dict[str, Any] = dict(
            kind=kind,
            model=model,
            tenant_scope=tenant_scope,
            now=now,
            limits=limits,
            batch_id=batch_id,
            fill=fill,
            aliases=aliases,
        )
        source = {t: s for s, t in (aliases or {}).items()}
        read_as = [replace(r, name=source.get(r.name, r.name)) for r in rules]
        table = (
            json_columns(parsed.json, read_as, ndjson=parsed.ndjson)
            if len(parsed.json) >= SMALL_JSON_BYTES
            else None
        )
        if table is not None:
            fast = validate(ParsedBody(table=table), *args, **kw)
            if not fast.errors:
                return fast
        # Something to report (or to look at closely): the row-by-row path, whose errors
        # quote each bad row as it was sent.
        return validate(parsed.parsed_rows(), *args, **kw)
    rule_by_name = {r.name: r for r in rules}
    aliases = {s: t for s, t in (aliases or {}).items() if t in rule_by_name and s != t}
    readable = {*rule_by_name, *aliases}
    n = parsed.count

    if parsed.rows is not None:
        columns, not_objects, present = _columns_from_rows(parsed.rows, readable)
        raw_of: Callable[[int], str] = _raw_json_getter(parsed.rows)
    else:
        assert parsed.table is not None
        table = parsed.table
        present = set(table.column_names)
        columns = {name: table.column(name) for name in present if name in readable}
        not_objects = {}
        raw_of = _raw_arrow_getter(table, parsed.raw_text)
    if aliases:
        columns, present = _renamed(columns, present, aliases, kind)

    unknown = sorted(present - set(rule_by_name))
    if unknown:
        shown = ", ".join(_show(c) for c in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise ValidationFailed(
            f"unknown column(s) [{shown}]; this {kind} batch accepts {sorted(rule_by_name)}"
            + (
                " (add new features to the model schema first: PUT /api/v1/models/{model})"
                if kind == "inference"
                else ""
            ),
            [
                FieldError(("body", c if len(c) <= 80 else c[:60] + "..."), "unknown column")
                for c in unknown[:20]
            ],
        )

    _apply_tenant_scope(columns, n, tenant_scope)

    bad = np.zeros(n, dtype=bool)
    errors: list[RowError] = []
    for row, why in not_objects.items():
        bad[row] = True
        errors.append(RowError(row, "<row>", why))
    for row, (name, why) in parsed.row_errors.items():
        bad[row] = True
        errors.append(RowError(row, name, why))

    arrays: dict[str, pa.Array] = {}
    for rule in rules:
        values = columns.get(rule.name)
        if values is None and not rule.required:
            continue  # absent optional column: the store keeps NULL, a reference its subset
        arr, errs = _convert(rule, values, n, now, limits)
        seen: set[int] = set()
        for row, why in errs:
            # one reason per row and field (a value that failed to convert is not also
            # "missing"); a row that is not an object gets only that one reason
            if row in seen or row in not_objects:
                continue
            if parsed.row_errors.get(row, ("",))[0] in (rule.name, "<row>"):
                continue  # the parser's reason for this value (or line) says it already
            seen.add(row)
            errors.append(RowError(row, rule.name, why))
            bad[row] = True
        arrays[rule.name] = arr

    errors.sort(key=lambda e: e.row)
    full = pa.table(arrays) if arrays else pa.table({"__n": pa.nulls(n)}).drop_columns(["__n"])
    for name, make in (fill or {}).items():
        if name in full.column_names:
            full = full.set_column(full.schema.get_field_index(name), name, make(full))
        else:
            full = full.append_column(name, make(full))
    keep = pa.array(~bad)
    valid = full.filter(keep) if bad.any() else full
    valid = _conform(valid, target)

    reasons: dict[int, list[str]] = {}
    for e in errors:
        reasons.setdefault(e.row, []).append(f"{e.field}: {e.reason}")
    first_field: dict[int, str] = {}
    for e in errors:
        first_field.setdefault(e.row, e.field)
    tenant_col = arrays.get("tenant_id")
    rejected = [
        QuarantineRow(
            kind=kind,
            model=model,
            row_index=row,
            field=first_field[row],
            reason="; ".join(reasons[row]),
            raw=raw_of(row),
            tenant_id=(tenant_col[row].as_py() if tenant_col is not None else None),
            batch_id=batch_id,
        )
        for row in sorted(reasons)
    ]
    tenants: list[str] = []
    if "tenant_id" in valid.column_names and valid.num_rows:
        tenants = [t for t in pc.unique(valid.column("tenant_id")).to_pylist() if t]
    return Validated(valid, errors, rejected, n, tenants)


def _renamed(
    columns: dict[str, Any], present: set[str], aliases: Mapping[str, str], kind: str
) -> tuple[dict[str, Any], set[str]]:
    """The columns under their fields' names (``aliases``: column -> field)."""
    both = sorted(s for s, t in aliases.items() if s in present and t in present)
    if both:
        raise ValidationFailed(
            f"this {kind} batch has both column(s) {both} and the field(s) they are aliases "
            f"of ({[aliases[s] for s in both]}); send one of each",
            [
                FieldError(("body", s), f"alias of {aliases[s]!r}, which is also present")
                for s in both
            ],
        )
    return (
        {aliases.get(c, c): v for c, v in columns.items()},
        {aliases.get(c, c) for c in present},
    )


def _columns_from_rows(
    rows: list[Any], rules: Collection[str]
) -> tuple[dict[str, list[Any]], dict[int, str], set[str]]:
    not_objects: dict[int, str] = {}
    dict_rows: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        if isinstance(r, dict):
            dict_rows.append(r)
        else:
            not_objects[i] = (
                r.why
                if isinstance(r, _Unparseable)
                else f"row must be a JSON object, got {type(r).__name__}"
            )
            dict_rows.append({})
    present: set[str] = set().union(*dict_rows) if dict_rows else set()
    columns = {name: [r.get(name) for r in dict_rows] for name in present if name in rules}
    return columns, not_objects, present


def _raw_json_getter(rows: list[Any]) -> Callable[[int], str]:
    def raw(i: int) -> str:
        r = rows[i]
        if isinstance(r, _Unparseable):
            return r.raw
        return _dumps(r)

    return raw


def _dumps(value: Any) -> str:
    """A rejected row as JSON text for the quarantine, whatever it holds."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
    except TypeError:  # orjson writes at most 254 levels of nesting
        pass
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        return json.dumps({"__driftwatch__": "row nested too deeply to keep a copy"})


def _raw_arrow_getter(table: pa.Table, texts: dict[int, str]) -> Callable[[int], str]:
    def raw(i: int) -> str:
        if i in texts:
            return texts[i]
        row: dict[str, Any] = {}
        for name, col in zip(table.column_names, table.columns, strict=True):
            value = col[i]
            try:
                row[name] = value.as_py()
            except (ValueError, OverflowError, pa.ArrowException):
                # e.g. a timestamp outside years 1-9999: keep its stored number
                row[name] = (
                    str(value.cast(pa.int64()).as_py())
                    if pa.types.is_timestamp(value.type)
                    else str(value)
                )
        return _dumps(row)

    return raw


def _apply_tenant_scope(columns: dict[str, Any], n: int, scope: str | None) -> None:
    """A scoped key's tenant comes from the key: fill it in, refuse any other tenant."""
    if scope is None:
        return
    col = columns.get("tenant_id")
    if col is None:
        columns["tenant_id"] = pa.array([scope] * n, pa.string())
        return
    values = col.to_pylist() if isinstance(col, pa.ChunkedArray | pa.Array) else col
    others = sorted({str(v) for v in values if v is not None and v != scope})
    if others:
        raise PermissionDenied(
            f"this API key is scoped to tenant {scope!r}; the batch has rows of "
            f"[{', '.join(_show(o) for o in others[:5])}]: nothing was stored"
        )
    columns["tenant_id"] = pa.array([scope] * n, pa.string())


def _conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    """Order and type the validated columns as the store's Arrow schema says."""
    fields = [f for f in target if f.name in table.column_names]
    cols = [table.column(f.name).cast(f.type) for f in fields]
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


# --------------------------------------------------------------------------- per-field conversion
def _convert(
    rule: FieldRule,
    values: Any,
    n: int,
    now: datetime,
    limits: Limits,
) -> tuple[pa.Array, list[tuple[int, str]]]:
    target = ARROW_TYPES[rule.kind]
    errors: list[tuple[int, str]] = []
    if values is None:
        arr = pa.nulls(n, target)
    elif rule.kind == "ts" and _arrow_timestamps(values):
        arr, errors = _ts_from_arrow(values)
    else:
        arr = _fast(values, rule, target)
        if arr is None:
            arr, errors = _slow(values, rule, target)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    errors += _checks(arr, rule, now, limits)
    return arr, errors


def _fast(values: Any, rule: FieldRule, target: pa.DataType) -> pa.Array | None:
    """Typed conversion of a whole column, or None when some value needs a closer look."""
    try:
        if isinstance(values, pa.ChunkedArray | pa.Array):
            typ = values.type
            if pa.types.is_dictionary(typ):
                # pandas `category` columns arrive dictionary-encoded: decode once (a take of
                # the dictionary by the indices) and convert the plain column. Without this a
                # category column took the per-value path, 4-7x slower than the same strings.
                values = values.cast(typ.value_type)
                typ = values.type
            if pa.types.is_string(typ) or pa.types.is_large_string(typ):
                return _fast_from_text(values, rule, target)
            if rule.kind == "ts" and pa.types.is_date(typ):
                return values.cast(pa.timestamp("s")).cast(TS_TYPE)  # a date: its midnight
            if rule.kind == "float" and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
                return values.cast(target)
            if rule.kind == "binary" and (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
                return values.cast(target)
            if rule.kind == "bool" and pa.types.is_boolean(typ):
                return values
            if target == pa.string() and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
                return values.cast(pa.string())
            if pa.types.is_null(typ):
                return pa.nulls(len(values), target)
            return None
        if target == pa.string():
            return pa.array(values, type=target)  # a number among strings raises: slow path
        # Let Arrow infer the column's type first: converting straight to the target would
        # silently turn True into 1.0 and truncate 0.7 to 0 for an integer target.
        inferred = pa.array(values)
        typ = inferred.type
        if rule.kind == "ts":
            return _fast_from_text(inferred, rule, target) if pa.types.is_string(typ) else None
        if pa.types.is_null(typ):
            return pa.nulls(len(inferred), target)
        if rule.kind == "float" and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
            return inferred.cast(target)
        if rule.kind == "binary" and (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
            return inferred.cast(target)  # out-of-range values are flagged by the checks
        if rule.kind == "bool" and pa.types.is_boolean(typ):
            return inferred
        return None
    except (pa.ArrowException, TypeError, ValueError, OverflowError, RecursionError):
        return None  # e.g. a value nested deeper than Arrow converts: looked at one by one


# Python's datetime range (years 1-9999) in seconds since 1970: what a row may hold before the
# bounds checks say whether it is a plausible time.
_TS_RANGE_S = (-62_135_596_800, 253_402_300_800)
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_INT64 = (-(2**63), 2**63 - 1)


def _arrow_timestamps(values: Any) -> bool:
    """An Arrow column of timestamps (plain or dictionary-encoded)."""
    if not isinstance(values, pa.ChunkedArray | pa.Array):
        return False
    typ = values.type
    return pa.types.is_timestamp(typ) or (
        pa.types.is_dictionary(typ) and pa.types.is_timestamp(typ.value_type)
    )


def _ts_from_arrow(values: Any) -> tuple[pa.Array, list[tuple[int, str]]]:
    """An Arrow timestamp column (Parquet, Arrow) as microseconds in UTC. Values outside years
    1-9999 are row errors (casting them would overflow and fail the whole column); a naive
    timestamp is taken as UTC; nanoseconds are truncated to the microsecond, the store's unit.
    """
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    unit = values.type.unit
    per = _PER_SECOND[unit]
    raw = values.view(pa.int64())  # the stored count of units since 1970
    lo = max(_TS_RANGE_S[0] * per, _INT64[0])
    hi = min(_TS_RANGE_S[1] * per, _INT64[1])
    outside = pc.fill_null(pc.or_(pc.less(raw, lo), pc.greater_equal(raw, hi)), False)
    errors: list[tuple[int, str]] = []
    if pc.any(outside).as_py():
        for i in np.flatnonzero(outside.to_numpy(zero_copy_only=False)):
            errors.append(
                (
                    int(i),
                    f"timestamp {raw[int(i)].as_py()} {unit} since 1970 is outside years 1-9999",
                )
            )
        values = pc.if_else(outside, pa.scalar(None, values.type), values)
    return values.cast(TS_TYPE, safe=False), errors


def _fast_from_text(values: Any, rule: FieldRule, target: pa.DataType) -> Any:
    """Text columns (CSV): Arrow's own parsers; any failure falls back to per-value checks."""
    if target == pa.string():
        return values.cast(pa.string())
    if rule.kind == "ts":
        try:
            return values.cast(TS_TYPE)  # strings with a zone offset or Z
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return values.cast(pa.timestamp("us")).cast(TS_TYPE)  # naive strings: UTC
    if rule.kind == "binary":
        return values.cast(pa.int32())
    if rule.kind == "bool":
        return values.cast(pa.bool_())
    return values.cast(target)


def _slow(
    values: Any, rule: FieldRule, target: pa.DataType
) -> tuple[pa.Array, list[tuple[int, str]]]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.to_pylist()
    convert = _CONVERTERS[rule.kind]
    out: list[Any] = []
    errors: list[tuple[int, str]] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(convert(v))
        except (ValueError, TypeError, OverflowError, OSError) as exc:
            out.append(None)
            errors.append((i, str(exc)))
    return pa.array(out, type=target), errors


def _show(v: Any) -> str:
    """A value for an error message: short, whatever was sent (a reason is not the raw row)."""
    if isinstance(v, dict):
        return "a JSON object"
    if isinstance(v, list):
        return "a JSON array"
    text = repr(v)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text):,} characters)"


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TypeError(f"expected a number, got boolean {v!r}")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        text = v.strip()
        if text == "":
            raise ValueError("expected a number, got an empty string")
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {_show(v)}") from None
    raise TypeError(f"expected a number, got {_show(v)}")


def _to_binary(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float) and v in (0, 1):
        return int(v)
    if isinstance(v, str) and v.strip().lower() in ("0", "1", "true", "false"):
        return 1 if v.strip().lower() in ("1", "true") else 0
    raise ValueError(f"expected 0 or 1 (or true/false) for a binary model, got {_show(v)}")


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "0", "1"):
        return v.strip().lower() in ("true", "1")
    raise ValueError(f"expected true or false, got {_show(v)}")


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{_show(v)} is not valid Unicode (a lone surrogate)") from None
        return v
    if isinstance(v, bool | int | float):
        return str(v)
    raise TypeError(f"expected a string, got {type(v).__name__}")


_YEAR_RE = re.compile(r"^\d{4}$")
YEARS = (1000, 9999)  # a whole number in this range is a year, not seconds since 1970


def _to_ts(v: Any) -> datetime:
    """One timestamp: a datetime, a date (its midnight, UTC), an ISO 8601 text (a date alone
    is its midnight; a year alone, ``"2021"``, its 1 January), seconds since 1970, or a year
    as a whole number 1000-9999 (as seconds it would be the first hours of 1970, a time no
    log holds). Naive times are UTC."""
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime(v.year, v.month, v.day)
    elif isinstance(v, int) and not isinstance(v, bool) and YEARS[0] <= v <= YEARS[1]:
        dt = datetime(v, 1, 1)
    elif isinstance(v, int | float) and not isinstance(v, bool):
        # seconds since 1970; checked before converting (the C library fails with OSError on
        # large values, and 1e17 was once a 500)
        if not (math.isfinite(v) and _TS_RANGE_S[0] <= v < _TS_RANGE_S[1]):
            raise ValueError(
                f"{_show(v)} seconds since 1970 is outside years 1-9999 (send seconds, not "
                "milliseconds, or an ISO 8601 text)"
            )
        dt = EPOCH + timedelta(seconds=float(v))
    elif isinstance(v, str):
        text = v.strip()
        try:
            dt = datetime(int(text), 1, 1) if _YEAR_RE.match(text) else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 timestamp such as 2024-05-01T12:00:00Z, a date "
                f"(2024-05-01) or a year (2024), got {_show(v)}"
            ) from None
    else:
        raise TypeError(f"expected a timestamp, got {type(v).__name__}")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_timestamps(values: Any) -> pa.Array:
    """A column of times as the store keeps them (UTC microseconds), by the rules of ingest;
    ValueError naming the first value that is not a time."""
    rule = FieldRule("ts", "ts")
    if _arrow_timestamps(values):
        arr, errors = _ts_from_arrow(values)
    else:
        arr = _fast(values, rule, TS_TYPE)
        errors = []
        if arr is None:
            arr, errors = _slow(values, rule, TS_TYPE)
    if errors:
        raise ValueError(f"row {errors[0][0]}: {errors[0][1]}")
    return arr


_CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    "string": _to_string,
    "id": _to_string,
    "tenant": _to_string,
    "class": _to_string,
    "float": _to_float,
    "binary": _to_binary,
    "bool": _to_bool,
    "ts": _to_ts,
}


def _checks(arr: pa.Array, rule: FieldRule, now: datetime, limits: Limits) -> list[tuple[int, str]]:
    """Vectorised row checks on an already typed column (the first failing check of a row is
    its reason, so the order below is the order of precedence).

    Each check first asks one aggregate of the column (a min, a max, a sum) whether any row can
    fail it, and only then looks for the rows: a clean column costs a few cheap passes.
    """
    errors: list[tuple[int, str]] = []

    def flag(mask: pa.Array, why: Callable[[int], str]) -> None:
        idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        errors.extend((int(i), why(int(i))) for i in idx)

    if rule.required and arr.null_count:
        flag(arr.is_null(), lambda i: "required field is missing")
    if not len(arr) or arr.null_count == len(arr):
        return errors
    nbytes = pc.binary_length(arr) if pa.types.is_string(arr.type) else None
    shortest, longest = _min_max(nbytes) if nbytes is not None else (None, None)
    if rule.kind in ("id", "tenant"):
        if shortest == 0:
            flag(pc.fill_null(pc.equal(nbytes, 0), False), lambda i: "must not be empty")
        if rule.kind == "tenant":
            ok = pc.match_substring_regex(arr, TENANT_RE.pattern)
            if not pc.all(pc.or_(ok, pc.equal(nbytes, 0))).as_py():
                flag(
                    pc.fill_null(pc.and_(pc.invert(ok), pc.greater(nbytes, 0)), False),
                    lambda i: f"tenant_id {_show(arr[i].as_py())} must match {TENANT_RE.pattern}",
                )
    if rule.chars is not None and longest is not None:
        limit, setting = limits.chars(rule.chars)
        # bytes first (no scan of the text): only a value over the limit in bytes can be over
        # it in characters
        if longest > limit:
            chars = pc.utf8_length(arr)
            flag(
                pc.fill_null(pc.greater(chars, limit), False),
                lambda i: (
                    f"{chars[i].as_py():,} characters, longer than the limit of "
                    f"{limit:,} ({setting})"
                ),
            )
    if rule.kind == "float":
        # the sum of magnitudes is NaN or infinite when any value is, and below the limit
        # only when every value is
        total = pc.sum(pc.abs(arr)).as_py()
        if total is not None and not total <= limits.max_abs_number:
            finite = pc.fill_null(pc.is_finite(arr), True)
            flag(
                pc.invert(finite),
                lambda i: (
                    f"must be a finite number, got {arr[i].as_py()} (send null for a missing value)"
                ),
            )
            huge = pc.and_(finite, pc.greater(pc.abs(arr), limits.max_abs_number))
            flag(
                pc.fill_null(huge, False),
                lambda i: (
                    f"{arr[i].as_py()!r} is larger in magnitude than {limits.max_abs_number:g} "
                    "(DRIFTWATCH_MAX_ABS_NUMBER)"
                ),
            )
        if rule.unit_interval:
            outside = pc.or_(pc.less(arr, 0.0), pc.greater(arr, 1.0))
            flag(
                pc.fill_null(outside, False),
                lambda i: f"a probability must be in [0, 1], got {arr[i].as_py()!r}",
            )
    if rule.kind == "binary":
        flag(
            pc.and_(arr.is_valid(), pc.invert(pc.is_in(arr, pa.array([0, 1], pa.int32())))),
            lambda i: f"expected 0 or 1 for a binary model, got {arr[i].as_py()!r}",
        )
    if rule.kind == "class" and rule.classes:
        flag(
            pc.and_(arr.is_valid(), pc.invert(pc.is_in(arr, pa.array(list(rule.classes))))),
            lambda i: (
                f"{_show(arr[i].as_py())} is not one of the model's classes {list(rule.classes)}"
            ),
        )
    if rule.kind == "ts" and limits.check_time:
        mm = pc.min_max(arr)  # compared as Arrow scalars: no conversion that could overflow
        early = pa.scalar(limits.min_ts, TS_TYPE)
        if pc.less(mm["min"], early).as_py():
            flag(
                pc.fill_null(pc.less(arr, early), False),
                lambda i: (
                    f"timestamp {_iso(arr[i])} is before "
                    f"{limits.min_ts.isoformat()} (DRIFTWATCH_MIN_TIMESTAMP)"
                ),
            )
        latest = pa.scalar(now + limits.max_future, TS_TYPE)
        if pc.greater(mm["max"], latest).as_py():
            flag(
                pc.fill_null(pc.greater(arr, latest), False),
                lambda i: (
                    f"timestamp {_iso(arr[i])} is in the future: later than now + "
                    f"{int(limits.max_future.total_seconds())} s "
                    "(DRIFTWATCH_MAX_FUTURE_SKEW_SECONDS)"
                ),
            )
    return errors


def _iso(value: pa.Scalar) -> str:
    """A timestamp scalar as ISO 8601 text (its microseconds since 1970 beyond year 9999)."""
    try:
        return str(value.as_py().isoformat())
    except (ValueError, OverflowError):
        return f"{value.cast(pa.int64()).as_py()} microseconds since 1970"


def _min_max(arr: Any) -> tuple[Any, Any]:
    """The smallest and largest non-null value (None, None when every value is null)."""
    mm = pc.min_max(arr)
    return mm["min"].as_py(), mm["max"].as_py()


# --------------------------------------------------------------------------- helpers
def event_ids(table: pa.Table) -> pa.Array:
    """Deterministic ids for events sent without one, so a retried batch is recognised."""
    if "event_id" in table.column_names:
        given = table.column("event_id").to_pylist()
    else:
        given = [None] * table.num_rows
    cols = [
        table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
        for c in ("tenant_id", "ts", "name", "value", "request_id")
    ]
    out = []
    for i, g in enumerate(given):
        if g is not None:
            out.append(g)
            continue
        key = "\x1f".join("" if c[i] is None else str(c[i]) for c in cols)
        out.append("h_" + hashlib.sha256(key.encode()).hexdigest()[:32])
    return pa.array(out, pa.string())
