"""The profiling job of a lake-mode model (``driftwatch profile``): read the spec and the
manifest of profiled files from the server (or the local data dir), list the lake, profile the
dates that changed with the chosen engine, and hand each date's profile rows back.

Profiles flow back by push: one ``PUT /api/v1/models/{model}/profiles/{date}`` per date, a
Parquet body of profile rows whose schema metadata carries the spec key and the files they were
computed from. The server replaces that date's hours and its manifest in one transaction, or
answers 409 when the spec key is not its current one (the job then fetches the spec again and
recomputes). A job that dies half way leaves every date either as it was or wholly replaced;
running it again recomputes what is still stale, and a repeated push changes nothing.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from storage.lake_profiles import LakeFile, changed_dates, duckdb_profile_dates, list_partitions
from storage.profile_kernel import ProfileSpec

__all__ = ["JobReport", "ProfileTarget", "decode_push", "encode_push", "run_job"]

PARQUET = "application/vnd.apache.parquet"
META_KEY = b"driftwatch.profiles"


class StaleSpecError(Exception):
    """The server's spec changed while the job ran (HTTP 409)."""


class ProfileTarget(Protocol):
    """Where the job reads the spec from and pushes profiles to: the server over HTTP, or the
    local data dir."""

    def spec(self, model: str) -> tuple[ProfileSpec, dict[date, tuple[str, list[LakeFile]]]]: ...

    def push(
        self, model: str, day: date, rows: pa.Table, spec_key: str, files: list[LakeFile]
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


Engine = Callable[[dict[date, list[LakeFile]], ProfileSpec], Iterator[tuple[date, pa.Table]]]


def engine_for(name: str, master: str = "local[*]") -> tuple[Engine, Callable[[], None]]:
    """The engine function and its closer: ``duckdb`` or ``spark``."""
    if name == "duckdb":
        return (lambda dates, spec: duckdb_profile_dates(dates, spec)), lambda: None
    if name == "spark":
        from storage.spark_engine import session, spark_profile_dates

        spark = session(master)
        return (lambda dates, spec: spark_profile_dates(spark, dates, spec)), spark.stop
    raise ValueError(f"--engine must be duckdb or spark, not {name!r}")


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
        listing = list_partitions(lake, model)
        todo = changed_dates(listing, manifest, spec.key)
        report.seconds["plan"] = time.perf_counter() - t0
        if progress:
            progress(f"{len(todo)} of {len(listing)} dates to profile (spec {spec.key})")
        if not spec.numeric and not spec.categorical and progress:
            progress("no monitor of this model needs profiles yet: only row counts")
        t1 = time.perf_counter()
        try:
            for day, rows in engine({d: listing.get(d, []) for d in todo}, spec):
                files = listing.get(day, [])
                target.push(model, day, rows, spec.key, files)
                report.dates.append(day.isoformat())
                report.rows_pushed += rows.num_rows
                report.files += len(files)
                if progress:
                    progress(
                        f"{day.isoformat()}: {rows.num_rows} profile rows from {len(files)} files"
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
        self, model: str, day: date, rows: pa.Table, spec_key: str, files: list[LakeFile]
    ) -> None:
        from monitor.client import ClientError

        try:
            self.client.push_profiles(
                model, day.isoformat(), encode_push(rows, spec_key, day, files)
            )
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
        self, model: str, day: date, rows: pa.Table, spec_key: str, files: list[LakeFile]
    ) -> None:
        current, _ = self.monitoring.profile_spec(model)
        if current.key != spec_key:
            raise StaleSpecError(f"spec {spec_key} is stale (current {current.key})")
        self.monitoring.runner.profiles.replace_day(model, day, rows, spec_key, files)
