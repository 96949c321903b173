"""The profiling job of a lake-mode model (``driftwatch profile``): read the spec and the
manifest of profiled files from the server (or the local data dir), list the lake, profile the
dates that changed with the chosen engine, and hand each date's profile rows back.

Profiles flow back by push: one ``PUT /api/v1/models/{model}/profiles/{date}`` per date, a
Parquet body of profile rows whose schema metadata carries the spec key and the files they were
computed from (push format 1). When the spec asks for samples or label aggregates (spec format
2, ``storage.row_kernel``) the body is ``multipart/form-data`` with three Parquet parts,
``profiles`` (as format 1, its metadata also holding ``"format": 2`` and ``sample_k``),
``samples`` and ``labels`` (push format 2). The server replaces that date's hours and its manifest in one transaction, or
answers 409 when the spec key is not its current one (the job then fetches the spec again and
recomputes). A job that dies half way leaves every date either as it was or wholly replaced;
running it again recomputes what is still stale, and a repeated push changes nothing.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from storage.lake_profiles import (
    DayRows,
    LakeFile,
    changed_dates,
    duckdb_lake_dates,
    label_files_for,
    list_partitions,
    spark_base_path,
)
from storage.profile_kernel import ProfileSpec
from storage.row_kernel import LABEL_SCHEMA, SAMPLE_BASE

__all__ = [
    "JobReport",
    "ProfileTarget",
    "decode_day",
    "decode_push",
    "encode_day",
    "encode_push",
    "run_job",
]

PARQUET = "application/vnd.apache.parquet"
MULTIPART = "multipart/form-data"
PARTS = ("profiles", "samples", "labels")
META_KEY = b"driftwatch.profiles"


class StaleSpecError(Exception):
    """The server's spec changed while the job ran (HTTP 409)."""


class ProfileTarget(Protocol):
    """Where the job reads the spec from and pushes profiles to: the server over HTTP, or the
    local data dir."""

    def spec(self, model: str) -> tuple[ProfileSpec, dict[date, tuple[str, list[LakeFile]]]]: ...

    def push(
        self, model: str, day: date, rows: DayRows, spec: ProfileSpec, files: list[LakeFile]
    ) -> None: ...


@dataclass
class JobReport:
    """What a run did: dates recomputed, profile rows pushed, seconds per phase."""

    model: str
    engine: str
    spec_key: str = ""
    dates: list[str] = field(default_factory=list)
    rows_pushed: int = 0
    files: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    skipped_monitors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "engine": self.engine,
            "spec_key": self.spec_key,
            "dates": self.dates,
            "rows_pushed": self.rows_pushed,
            "files": self.files,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "skipped_monitors": self.skipped_monitors,
        }


def encode_push(rows: pa.Table, spec_key: str, day: date, files: list[LakeFile]) -> bytes:
    """The push body: Parquet of the profile rows; the spec key, the date and the files in its
    schema metadata."""
    meta = {
        "spec_key": spec_key,
        "date": day.isoformat(),
        "files": [f.to_json() for f in files],
    }
    table = rows.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def decode_push(body: bytes) -> tuple[pa.Table, str, date, list[LakeFile]]:
    """The inverse of :func:`encode_push`; ``ValueError`` names what is wrong."""
    try:
        table = pq.read_table(io.BytesIO(body))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"profile push: the body is not Parquet ({exc})") from exc
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError(
            f"profile push: the Parquet schema metadata lacks {META_KEY.decode()!r} "
            "(spec_key, date, files)"
        )
    try:
        meta = json.loads(raw)
        files = [LakeFile.from_json(f) for f in meta.get("files", [])]
        day = date.fromisoformat(str(meta["date"]))
        spec_key = str(meta["spec_key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"profile push: bad {META_KEY.decode()!r} metadata: {exc}") from exc
    return table.replace_schema_metadata(None), spec_key, day, files


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def encode_day(
    rows: DayRows, spec: ProfileSpec, day: date, files: list[LakeFile]
) -> tuple[bytes, str]:
    """The push body of one date and its content type: push format 1 (Parquet of the profile
    rows) for a format-1 spec, else format 2 (``multipart/form-data``, parts ``profiles``,
    ``samples``, ``labels``, each Parquet)."""
    if spec.format == 1:
        return encode_push(rows.profiles, spec.key, day, files), PARQUET
    meta = {
        "spec_key": spec.key,
        "date": day.isoformat(),
        "files": [f.to_json() for f in files],
        "format": 2,
        "sample_k": spec.sample_k,
    }
    profiles = rows.profiles.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    boundary = f"driftwatch-{uuid.uuid4().hex}"
    out = io.BytesIO()
    for name, table in zip(PARTS, (profiles, rows.samples, rows.labels), strict=True):
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.parquet"\r\nContent-Type: {PARQUET}\r\n\r\n'.encode()
        )
        out.write(_parquet(table))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"{MULTIPART}; boundary={boundary}"


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type.encode())
    boundary = params.get(b"boundary")
    if not boundary:
        raise ValueError("profile push: a multipart/form-data body needs a boundary")
    parts: dict[str, bytes] = {}
    cur: dict[str, Any] = {}

    def begin() -> None:
        cur.update(field=b"", headers={}, data=[])

    def field(d: bytes, s: int, e: int) -> None:
        cur["field"] += d[s:e]

    def value(d: bytes, s: int, e: int) -> None:
        cur["headers"][cur["field"].lower()] = (
            cur["headers"].get(cur["field"].lower(), b"") + d[s:e]
        )

    def header_end() -> None:
        cur["field"] = b""

    def data(d: bytes, s: int, e: int) -> None:
        cur["data"].append(d[s:e])

    def end() -> None:
        _, opts = parse_options_header(cur["headers"].get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode()
        if name in parts:
            raise ValueError(f"profile push: part {name!r} appears twice")
        parts[name] = b"".join(cur["data"])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_header_field": field,
            "on_header_value": value,
            "on_header_end": header_end,
            "on_part_data": data,
            "on_part_end": end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # the parser's own errors: a malformed body
        raise ValueError(f"profile push: malformed multipart body ({exc})") from exc
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or "profiles" not in parts:
        raise ValueError(
            f"profile push: multipart parts must be {list(PARTS)} (profiles required); "
            f"got {sorted(parts)}"
        )
    return parts


def decode_day(
    body: bytes, content_type: str = PARQUET
) -> tuple[DayRows, str, date, list[LakeFile], int, int]:
    """The inverse of :func:`encode_day`: the day's rows, spec key, date, files, sample k and
    push format (1 or 2); ``ValueError`` names what is wrong."""
    if not content_type.lower().startswith(MULTIPART):
        rows, key, day, files = decode_push(body)
        return (
            DayRows(rows, SAMPLE_BASE.empty_table(), LABEL_SCHEMA.empty_table()),
            key,
            day,
            files,
            0,
            1,
        )
    parts = _multipart(body, content_type)
    rows, key, day, files = decode_push(parts["profiles"])
    raw = json.loads(pq.read_schema(io.BytesIO(parts["profiles"])).metadata[META_KEY])
    try:
        k = int(raw.get("sample_k", 0))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"profile push: bad sample_k in the metadata: {exc}") from exc
    tables: dict[str, pa.Table | None] = {}
    for name in ("samples", "labels"):
        if name not in parts:
            tables[name] = None
            continue
        try:
            tables[name] = pq.read_table(io.BytesIO(parts[name]))
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValueError(f"profile push: part {name!r} is not Parquet ({exc})") from exc
    return (
        DayRows(
            rows,
            tables["samples"] if tables["samples"] is not None else SAMPLE_BASE.empty_table(),
            tables["labels"] if tables["labels"] is not None else LABEL_SCHEMA.empty_table(),
        ),
        key,
        day,
        files,
        k,
        2,
    )


Engine = Callable[
    [dict[date, list[LakeFile]], ProfileSpec, dict[date, list[LakeFile]]],
    Iterator[tuple[date, DayRows]],
]


def engine_for(
    name: str, master: str = "local[*]", lake: str = ""
) -> tuple[Engine, Callable[[], None]]:
    """The engine function ``(dates' files, spec, dates' label files) -> (date, DayRows)``
    and its closer: ``duckdb`` or ``spark`` (``lake``: the root the job lists, so Spark is
    handed object-store paths it can read, see ``storage.lake_profiles.spark_base_path``)."""
    if name == "duckdb":
        return (
            lambda dates, spec, labels: duckdb_lake_dates(dates, spec, labels=labels)
        ), lambda: None
    if name == "spark":
        from storage.spark_engine import session, spark_lake_dates

        spark = session(master)
        base = spark_base_path(lake)
        return (
            lambda dates, spec, labels: spark_lake_dates(
                spark, dates, spec, labels=labels, base_path=base
            )
        ), spark.stop
    raise ValueError(f"--engine must be duckdb or spark, not {name!r}")


def day_files(
    lake: str, model: str, spec: ProfileSpec
) -> tuple[dict[date, list[LakeFile]], dict[date, list[LakeFile]]]:
    """Per date: the files its rows are computed from (inference files, and for a spec with
    label aggregates the label files that can hold their labels, see
    ``storage.lake_profiles.label_files_for``: a new label file re-profiles the dates it can
    label), and the label files alone."""
    listing = list_partitions(lake, model)
    if spec.labels is None:
        return listing, {}
    label_parts = list_partitions(f"{lake.rstrip('/')}/labels", model)
    labels = {d: label_files_for(d, label_parts, spec.labels.days) for d in listing}
    return {d: sorted([*fs, *labels[d]]) for d, fs in listing.items()}, labels


def run_job(
    target: ProfileTarget,
    lake: str,
    model: str,
    engine: Engine,
    engine_name: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> JobReport:
    """One incremental run (see the module docstring). A 409 from the server (its spec changed
    meanwhile) re-reads the spec and starts over, at most twice."""
    report = JobReport(model, engine_name)
    for _attempt in range(3):
        t0 = time.perf_counter()
        spec, manifest = target.spec(model)
        report.spec_key = spec.key
        report.skipped_monitors = dict(getattr(target, "skipped", {}))
        listing, label_files = day_files(lake, model, spec)
        inference_files = list_partitions(lake, model) if label_files else listing
        todo = changed_dates(listing, manifest, spec.key)
        report.seconds["plan"] = time.perf_counter() - t0
        if progress:
            progress(f"{len(todo)} of {len(listing)} dates to profile (spec {spec.key})")
        if not spec.numeric and not spec.categorical and progress:
            progress("no monitor of this model needs profiles yet: only row counts")
        t1 = time.perf_counter()
        try:
            work = {d: inference_files.get(d, []) for d in todo}
            for day, rows in engine(work, spec, {d: label_files.get(d, []) for d in todo}):
                files = listing.get(day, [])
                target.push(model, day, rows, spec, files)
                report.dates.append(day.isoformat())
                report.rows_pushed += rows.profiles.num_rows
                report.files += len(files)
                if progress:
                    extra = (
                        f", {rows.samples.num_rows} sample rows, {rows.labels.num_rows} label "
                        "aggregates"
                        if spec.format == 2
                        else ""
                    )
                    progress(
                        f"{day.isoformat()}: {rows.profiles.num_rows} profile rows{extra} from "
                        f"{len(files)} files"
                    )
        except StaleSpecError:
            if progress:
                progress("the server's spec changed: reading it again")
            continue
        report.seconds["profile_and_push"] = time.perf_counter() - t1
        return report
    raise StaleSpecError("the server's profile spec kept changing while the job ran")


class HttpTarget:
    """The server over HTTP (``--url`` and an engineer key not scoped to a tenant)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.skipped: dict[str, str] = {}

    def spec(self, model: str) -> tuple[ProfileSpec, dict[date, tuple[str, list[LakeFile]]]]:
        data = self.client.profile_spec(model)
        self.skipped = dict(data.get("skipped_monitors") or {})
        manifest = {
            date.fromisoformat(d["date"]): (
                str(d["spec_key"]),
                [LakeFile.from_json(f) for f in d["files"]],
            )
            for d in data.get("profiled", [])
        }
        return ProfileSpec.from_json(data), manifest

    def push(
        self, model: str, day: date, rows: DayRows, spec: ProfileSpec, files: list[LakeFile]
    ) -> None:
        from monitor.client import ClientError

        body, ctype = encode_day(rows, spec, day, files)
        try:
            self.client.push_profiles(model, day.isoformat(), body, ctype=ctype)
        except ClientError as exc:
            if exc.status == 409:
                raise StaleSpecError(str(exc)) from exc
            raise


class LocalTarget:
    """The local data dir (no server running): the same spec and the same one-transaction
    replacement the push route does."""

    def __init__(self, services: Any) -> None:
        from monitor.composition import of

        self.monitoring = of(services).monitors
        self.skipped: dict[str, str] = {}

    def spec(self, model: str) -> tuple[ProfileSpec, dict[date, tuple[str, list[LakeFile]]]]:
        spec, self.skipped = self.monitoring.profile_spec(model)
        return spec, self.monitoring.runner.profiles.lake_manifest(model)

    def push(
        self, model: str, day: date, rows: DayRows, spec: ProfileSpec, files: list[LakeFile]
    ) -> None:
        current, _ = self.monitoring.profile_spec(model)
        if current.key != spec.key:
            raise StaleSpecError(f"spec {spec.key} is stale (current {current.key})")
        self.monitoring.runner.profiles.replace_day(
            model, day, rows.profiles, spec.key, files, rows.samples, rows.labels, spec.sample_k
        )
