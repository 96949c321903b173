"""Python client for the Driftwatch API.

>>> client = Client("http://127.0.0.1:8000", api_key="dw_...")      # doctest: +SKIP
>>> client.log_inferences("churn", dataframe)                          # doctest: +SKIP
IngestTotals(received=10000, accepted=10000, duplicates=0, rejected=0, errors=[])

Batches are sent as Parquet (DataFrames, Arrow tables) or JSON (lists of dicts). Every call is
safe to retry: the server stores a row once per tenant and ``request_id`` (events once per
``event_id`` or content hash), so the client retries connection errors, 5xx and 429 (honouring Retry-After)
with exponential backoff and jitter.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
)

from monitor.errors import DriftwatchError

PARQUET = "application/vnd.apache.parquet"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
# DuckDB's row group. A transaction that appends a whole row group writes it straight to the
# database file; a smaller append goes through the write-ahead log, which cost 2.5x the
# server's CPU per row on a census-like table (benchmarks/ingest.py: 6.1 s for 800,000 rows
# in 50,000-row requests, 2.5 s in 122,880-row ones). Tables are sent in batches of this size.
TABLE_BATCH_ROWS = 122_880
# Bodies stay under this (the server's default limit is 64 MiB): a larger batch is halved.
MAX_BODY_BYTES = 48 << 20


class ClientError(DriftwatchError):
    """The server refused the request; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


@dataclass
class IngestTotals:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, answer: dict[str, Any], row_offset: int, max_errors: int = 100) -> None:
        self.received += answer["received"]
        self.accepted += answer["accepted"]
        self.duplicates += answer["duplicates"]
        self.rejected += answer["rejected"]
        for e in answer["errors"]:
            if len(self.errors) < max_errors:
                self.errors.append({**e, "row": e["row"] + row_offset})


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ClientError) and (exc.status >= 500 or exc.status == 429)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    # exponential backoff with full jitter: 0.2 s, 0.4 s, 0.8 s ... capped at 10 s
    backoff = random.uniform(0, min(10.0, 0.2 * 2 ** (state.attempt_number - 1)))
    return max(float(retry_after or 0), backoff)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class Client:
    """A small, retrying client of the REST API.

    Parameters
    ----------
    url
        Base URL of the server, e.g. ``http://127.0.0.1:8000``.
    api_key
        A key from ``driftwatch keys create`` (``dw_...``).
    batch_rows
        Rows per request when logging large inputs (default: 122,880 for tables, DuckDB's row
        group, halved while a body would exceed 48 MiB; 50,000 for lists of dicts).
    retries
        Attempts per request before the error is raised.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        batch_rows: int | None = None,
        retries: int = 6,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.batch_rows = batch_rows
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._send = retry(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(retries),
            wait=_wait,
            reraise=True,
        )(self._send_once)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def _send_once(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        ctype: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        headers = {"Content-Type": ctype} if ctype else {}
        body: Any = content
        if content is not None:
            # httpx keeps request and response in a reference cycle that only the cyclic GC
            # frees, and with `content=bytes` the body stays in it: streaming a large file
            # piled up 20-50 MiB bodies between collections. A one-shot generator lets go of
            # the body as soon as it is sent (measured: peak RSS flat instead of growing).
            headers["Content-Length"] = str(len(content))
            body = _once(content)
        resp = self._http.request(
            method, path, content=body, json=json, headers=headers, params=params
        )
        is_json = "json" in resp.headers.get("content-type", "")
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                # not our API's error body: a wrong URL, a proxy's page; say so, not the page
                body = f"{resp.url} is not a Driftwatch API" if resp.content else ""
            err = ClientError(resp.status_code, body)
            if resp.status_code == 429:
                err.retry_after = float(resp.headers.get("retry-after", "1"))  # type: ignore[attr-defined]
            raise err
        if resp.content and not is_json:
            ctype = resp.headers.get("content-type", "no content type")
            raise ClientError(
                resp.status_code, f"{resp.url} answered {ctype}, not the Driftwatch API's JSON"
            )
        return resp.json() if resp.content else None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        ctype: str | None = None,
    ) -> Any:
        """Any API call, with retries: ``client.request("GET", "/alerts", params={"state":
        "firing"})``. ``params`` are the query parameters (a list value repeats the name)."""
        return self._send(method, path, params=params, json=json, content=content, ctype=ctype)

    # ------------------------------------------------------------------ API
    def register_model(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._send("POST", "/models", json=spec)

    def get_model(self, name: str) -> dict[str, Any]:
        return self._send("GET", f"/models/{name}")

    def log_inferences(
        self, model: str, rows: Any, *, column_map: Mapping[str, str] | None = None
    ) -> IngestTotals:
        """Log inference rows: a DataFrame, an Arrow table, or an iterable of dicts.
        ``column_map`` renames your columns to Driftwatch's fields first, e.g.
        ``{"id": "request_id", "timestamp": "ts"}`` (see :func:`parse_column_map`)."""
        return self._log(f"/models/{model}/inferences", rename_columns(rows, column_map))

    def log_labels(
        self, model: str, rows: Any, *, column_map: Mapping[str, str] | None = None
    ) -> IngestTotals:
        """Log labels (``request_id``, ``label``, optional ``ts``); ``column_map`` as for
        :meth:`log_inferences` (``{"target": "label"}``)."""
        return self._log(f"/models/{model}/labels", rename_columns(rows, column_map))

    def log_events(self, rows: Any, *, column_map: Mapping[str, str] | None = None) -> IngestTotals:
        """Log business events (``tenant_id``, ``ts``, ``name``, ``value``, ...)."""
        return self._log("/events", rename_columns(rows, column_map))

    def upload_reference(
        self, model: str, name: str, data: Any, *, column_map: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Upload a baseline: a DataFrame, Arrow table, or a Parquet/CSV file path."""
        if isinstance(data, str | Path) and not column_map:
            path = Path(data)
            ctype = "text/csv" if path.suffix.lower() == ".csv" else PARQUET
            return self._send(
                "PUT", f"/models/{model}/references/{name}", content=path.read_bytes(), ctype=ctype
            )
        if isinstance(data, str | Path):
            from monitor.files import read_table  # the CLI's reader: CSV, Parquet, JSONL, .gz

            data = read_table(Path(data))
        table = rename_columns(_as_table(data), column_map)
        return self._send(
            "PUT", f"/models/{model}/references/{name}", content=_parquet(table), ctype=PARQUET
        )

    def profile_spec(self, model: str) -> dict[str, Any]:
        """What a lake job computes for ``model`` (``GET /models/{model}/profile-spec``)."""
        return self._send("GET", f"/models/{model}/profile-spec")

    def push_profiles(
        self, model: str, day: str, body: bytes, ctype: str = PARQUET
    ) -> dict[str, Any]:
        """Replace one date's profiles (``PUT /models/{model}/profiles/{day}``): a body from
        :func:`monitor.lake_job.encode_day` (Parquet, or multipart/form-data for push format
        2). Raises ``ClientError`` 409 when the spec is stale."""
        return self._send("PUT", f"/models/{model}/profiles/{day}", content=body, ctype=ctype)

    # ------------------------------------------------------------------ batching
    def _log(self, path: str, rows: Any) -> IngestTotals:
        totals = IngestTotals()
        offset = 0
        for body, ctype, n in self._batches(rows):
            totals.add(self._send("POST", path, content=body, ctype=ctype), offset)
            offset += n
        return totals

    def _batches(self, rows: Any) -> Iterator[tuple[bytes, str, int]]:
        if _is_tabular(rows):
            table = _as_table(rows)
            step = self.batch_rows or TABLE_BATCH_ROWS
            for start in range(0, table.num_rows, step):
                yield from _table_bodies(table.slice(start, step))
            return
        batch: list[Any] = []
        step = self.batch_rows or 50_000
        for row in rows:
            batch.append(row)
            if len(batch) >= step:
                yield _json(batch), "application/json", len(batch)
                batch = []
        if batch:
            yield _json(batch), "application/json", len(batch)


def parse_column_map(text: str | None) -> dict[str, str]:
    """``"id=request_id,timestamp=ts"`` -> ``{"id": "request_id", "timestamp": "ts"}``: your
    column on the left, the Driftwatch field on the right. A malformed pair is a ValueError
    naming it."""
    out: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(
                f"column map entry {pair.strip()!r} is not COLUMN=FIELD "
                "(e.g. id=request_id,timestamp=ts,target=label)"
            )
        if source.strip() in out:
            raise ValueError(f"column map names {source.strip()!r} twice")
        out[source.strip()] = target.strip()
    targets = list(out.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(f"column map sends several columns to {twice}; keep one per field")
    return out


def rename_columns(rows: Any, column_map: Mapping[str, str] | None) -> Any:
    """``rows`` (a table, DataFrame, RecordBatch or iterable of dicts) with the columns of
    ``column_map`` renamed; a column whose new name is already a column is a ValueError."""
    if not column_map:
        return rows
    if _is_tabular(rows):
        table = _as_table(rows)
        names = table.column_names
        clash = sorted(s for s, t in column_map.items() if s in names and t in names and s != t)
        if clash:
            raise ValueError(
                f"column map: columns {clash} would be renamed to "
                f"{[column_map[c] for c in clash]}, which are columns already"
            )
        return table.rename_columns([column_map.get(n, n) for n in names])
    return (
        {column_map.get(k, k): v for k, v in row.items()} if isinstance(row, dict) else row
        for row in rows
    )


def _table_bodies(part: pa.Table) -> Iterator[tuple[bytes, str, int]]:
    """Arrow IPC bodies of ``part``, halved until each is under ``MAX_BODY_BYTES``."""
    body = _arrow_stream(dictionary_encoded(part))
    if len(body) <= MAX_BODY_BYTES or part.num_rows < 2:
        yield body, ARROW_STREAM, part.num_rows
        return
    half = part.num_rows // 2
    yield from _table_bodies(part.slice(0, half))
    yield from _table_bodies(part.slice(half))


_ENCODE_SAMPLE_ROWS = 4096


def dictionary_encoded(table: pa.Table) -> pa.Table:
    """``table`` with each text column whose values repeat (at most half as many distinct
    values as rows) dictionary-encoded: a body of repeated strings (pandas ``str`` columns, a
    CSV's categories) shrinks to one copy of each value plus small integer indices, as pandas
    ``category`` columns already are. The server decodes it (``monitor.ingest``). A column
    whose first 4,096 rows are mostly distinct is sent as it is without encoding the rest."""
    columns = []
    changed = False
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            if table.num_rows > 2 * _ENCODE_SAMPLE_ROWS:
                # a look at the first rows first: ids, timestamps and measurements as text (a
                # CSV's columns) are mostly distinct, and hashing all their values only to drop
                # the result was the CLI's largest cost (issue 14)
                head = column.slice(0, _ENCODE_SAMPLE_ROWS).combine_chunks().dictionary_encode()
                if len(head.dictionary) > _ENCODE_SAMPLE_ROWS // 2:
                    columns.append(column)
                    continue
            encoded = column.combine_chunks().dictionary_encode()
            if len(encoded.dictionary) <= table.num_rows // 2:
                columns.append(encoded)
                changed = True
                continue
        columns.append(column)
    return pa.table(columns, names=table.column_names) if changed else table


def _once(content: bytes) -> Iterator[bytes]:
    yield content


def _is_tabular(rows: Any) -> bool:
    return isinstance(rows, pa.Table | pa.RecordBatch) or type(rows).__name__ == "DataFrame"


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    return pa.Table.from_pandas(data, preserve_index=False)


def _json(rows: Iterable[Any]) -> bytes:
    return orjson.dumps(list(rows), default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
