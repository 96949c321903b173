"""Stream CSV, Parquet and JSON-lines files in bounded batches (memory stays flat).

CSV and JSON-lines files may be compressed with gzip (``.gz``) or Zstandard (``.zst``):
``rows.csv.gz`` is read through Arrow's decompressing stream, so it never lands on disk or in
memory whole. Progress counts the compressed bytes read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from monitor.errors import BadRequestError

FORMATS = ("csv", "parquet", "jsonl")
# file suffix -> Arrow codec; Parquet compresses inside the file, so only CSV and JSONL
COMPRESSIONS = {"gz": "gzip", "gzip": "gzip", "zst": "zstd", "zstd": "zstd"}


@dataclass
class Chunk:
    """One batch: an Arrow table (CSV, Parquet) or JSON rows (JSONL); ``progress`` counts
    bytes read (CSV, JSONL) or rows read (Parquet) so far."""

    table: pa.Table | None
    rows: list[Any] | None
    progress: int

    @property
    def num_rows(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.rows or [])


_FORMATS = {
    "csv": "csv",
    "parquet": "parquet",
    "pq": "parquet",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
}


def compression(path: Path) -> str | None:
    """The Arrow codec of a compressed file (``rows.csv.gz`` -> ``gzip``), else None."""
    return COMPRESSIONS.get(path.suffix.lower().lstrip("."))


def detect_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``jsonl`` from the file name (``.csv``, ``.csv.gz``,
    ``.jsonl.zst``, ``.parquet`` ...); any other name is a BadRequestError naming the choices."""
    codec = compression(path)
    inner = Path(path.stem) if codec else path
    suffix = inner.suffix.lower().lstrip(".")
    if suffix not in _FORMATS:
        raise BadRequestError(
            f"cannot tell the format of {path.name!r} from its name; use one of "
            f"{', '.join('.' + s for s in _FORMATS)}, for CSV and JSON lines optionally "
            f"compressed ({', '.join('.' + c for c in COMPRESSIONS)})"
        )
    fmt = _FORMATS[suffix]
    if codec and fmt == "parquet":
        raise BadRequestError(
            f"{path.name!r}: a Parquet file compresses inside (its column codec); "
            "send the .parquet file itself"
        )
    return fmt


def total_size(path: Path, fmt: str) -> int:
    """What ``Chunk.progress`` counts up to."""
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return path.stat().st_size


def read_table(path: Path, batch_rows: int = 122_880) -> pa.Table:
    """The whole file as one Arrow table (a reference, a sample), columns as the reader gives
    them (CSV as text; JSON lines parsed into typed columns)."""
    fmt = detect_format(path)
    tables = []
    for chunk in iter_chunks(path, fmt, batch_rows):
        if chunk.table is not None:
            tables.append(chunk.table)
        else:
            tables.append(
                pa.Table.from_pylist([r for r in chunk.rows or [] if isinstance(r, dict)])
            )
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def read_csv_typed(path: Path, max_rows: int) -> pa.Table:
    """The first ``max_rows`` rows of a CSV with Arrow's type inference (numbers, times,
    booleans, text): what ``models infer`` looks at."""
    read = pacsv.ReadOptions(block_size=1 << 22)
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    batches, rows = [], 0
    with path.open("rb") as raw:
        try:
            reader = pacsv.open_csv(_open(raw, path), read_options=read, convert_options=convert)
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows >= max_rows:
                    break
        except pa.ArrowInvalid as exc:
            # a column typed from the first block meets a value of another type later: read
            # it as text (the kind rules still tell categories from free text)
            raise BadRequestError(f"{path.name}: cannot read as CSV: {exc}") from exc
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches).slice(0, max_rows)


def _open(raw: Any, path: Path) -> Any:
    """``raw`` (a binary file) decompressed when the name says it is compressed."""
    codec = compression(path)
    return pa.CompressedInputStream(raw, codec) if codec else raw


def iter_chunks(path: Path, fmt: str, batch_rows: int) -> Iterator[Chunk]:
    if fmt == "csv":
        yield from _csv(path, batch_rows)
    elif fmt == "parquet":
        done = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            done += batch.num_rows
            yield Chunk(pa.Table.from_batches([batch]), None, done)
    elif fmt == "jsonl":
        yield from _jsonl(path, batch_rows)
    else:
        raise BadRequestError(f"unknown format {fmt!r}; use one of {FORMATS}")


def _header(path: Path) -> list[str]:
    with path.open("rb") as raw:
        stream = _open(raw, path)
        head = b""
        while b"\n" not in head:
            piece = stream.read(1 << 16)
            if not piece:
                break
            head += piece
    line = head.split(b"\n", 1)[0].decode("utf-8-sig").strip()
    return next(csv.reader([line]), [])


def _csv(path: Path, batch_rows: int) -> Iterator[Chunk]:
    names = _header(path)
    # Every column as text: the validator converts with per-row errors instead of the reader
    # failing a whole block on one bad value.
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=True,
    )
    # 1 MiB blocks: with 8 MiB blocks the reader's peak memory grew with the file (308 MiB for
    # 170 MB, 464 MiB for 690 MB); with 1 MiB it stays at ~136 MiB whatever the size.
    read = pacsv.ReadOptions(block_size=1 << 20)
    with path.open("rb") as raw:
        reader = pacsv.open_csv(_open(raw, path), read_options=read, convert_options=convert)
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            while rows >= batch_rows:
                table = pa.Table.from_batches(pending)
                yield Chunk(table.slice(0, batch_rows), None, raw.tell())
                rest = table.slice(batch_rows)
                pending = rest.to_batches()
                rows = rest.num_rows
        if rows:
            yield Chunk(pa.Table.from_batches(pending), None, raw.tell())


def _jsonl(path: Path, batch_rows: int) -> Iterator[Chunk]:
    rows: list[Any] = []
    done = 0
    with path.open("rb") as raw:
        fh = io.BufferedReader(_open(raw, path)) if compression(path) else raw
        for line in fh:
            done = raw.tell()
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                rows.append(line.decode("utf-8", "replace"))  # quarantined as "not an object"
            if len(rows) >= batch_rows:
                yield Chunk(None, rows, done)
                rows = []
    if rows:
        yield Chunk(None, rows, done)
