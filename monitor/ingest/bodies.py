"""Request bodies by Content-Type: JSON and NDJSON (parsed lazily), Parquet, Arrow IPC, CSV.

A body is refused whole (400) only when it cannot be read as a whole; a broken JSON element
or CSV line costs only its own row."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc
import pyarrow.parquet as pq

from monitor.errors import BadRequestError
from monitor.ingest.rules import show

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
        f"unsupported Content-Type {show(content_type)}; use one of: {', '.join(SUPPORTED_TYPES)}"
    )


def _unique_names(names: Sequence[str], what: str) -> None:
    """Duplicate column names refuse the body (400): which column holds the values would be a
    guess, and the rows cannot be checked one by one when their columns are ambiguous."""
    twice = [(n, k) for n, k in Counter(names).items() if k > 1]
    if twice:
        listed = ", ".join(f"{show(n)} ({k} times)" for n, k in twice[:5])
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
        elements = split_json_array(body)
        if elements is None:
            raise BadRequestError(f"body is not valid JSON: {exc}") from exc
        rows: list[Any] = []
        for element in elements:
            try:
                rows.append(orjson.loads(element))
            except orjson.JSONDecodeError as err:
                text = element.decode("utf-8", "replace").strip()
                rows.append(Unparseable(text, f"invalid JSON: {err}"))
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


def split_json_array(body: bytes) -> list[bytes] | None:
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
            rows.append(Unparseable(line.decode("utf-8", "replace"), f"invalid JSON: {exc}"))
    return ParsedBody(rows=rows)


@dataclass
class Unparseable:
    raw: str
    why: str
