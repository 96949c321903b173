"""Profiles computed outside the server (a lake job: ``driftwatch profile``): the spec the job
must compute, and the push of one date's profile rows.

``GET /models/{model}/profile-spec`` gives the bin edges and categorical columns of the model's
enabled monitors (with the key pushed profiles are checked against) and the manifest of lake
files already profiled per date. ``PUT /models/{model}/profiles/{date}`` takes that date's
profile rows as Parquet (schema metadata ``driftwatch.profiles``: spec_key, date, files),
answers 409 when the spec key is not the current one, and otherwise replaces the date's 24 hours
and its manifest in one transaction: idempotent per model x date (so per hour x segment x
reference bins). Both need an engineer key that is not scoped to a tenant: profile rows hold
every tenant.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from monitor.api.auth import require
from monitor.api.deps import components, read_body
from monitor.errors import BadRequestError, ConflictError
from monitor.lake_job import MULTIPART, PARQUET, decode_day
from monitor.service import Caller, Services

router = APIRouter(tags=["profiles"])
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]


class LakeFileOut(BaseModel):
    path: str
    size: int
    mtime_ns: int


class ProfiledDayOut(BaseModel):
    date: date
    spec_key: str
    files: list[LakeFileOut]


class ProfileSpecOut(BaseModel):
    """What a lake job computes: ``numeric`` column -> bin edge sets (floats; ``"inf"`` and
    ``"-inf"`` as strings), ``categorical`` columns, the ``key`` pushes must carry, the days
    already profiled, and monitors left out with the reason."""

    model: str
    key: str
    numeric: dict[str, list[list[float | str]]]
    categorical: list[str]
    format: int = 1
    sample: dict[str, Any] | None = None
    labels: dict[str, Any] | None = None
    profiled: list[ProfiledDayOut]
    skipped_monitors: dict[str, str]


class ProfilePushOut(BaseModel):
    model: str
    date: date
    spec_key: str
    rows: int
    files: int


def _services(request: Request) -> Services:
    return request.app.state.services


@router.get("/models/{model}/profile-spec", response_model=ProfileSpecOut)
def profile_spec(model: str, request: Request, caller: SharedEngineer) -> ProfileSpecOut:
    """The profile spec of the model's monitors and the lake files already profiled."""
    services = _services(request)
    services.get_model(model)
    svc = components(request).monitors
    spec, skipped = svc.profile_spec(model)
    data = spec.to_json()
    manifest = svc.runner.profiles.lake_manifest(model)
    return ProfileSpecOut(
        model=model,
        key=data["key"],
        numeric=data["numeric"],
        categorical=data["categorical"],
        format=data["format"],
        sample=data.get("sample"),
        labels=data.get("labels"),
        profiled=[
            ProfiledDayOut(
                date=d,
                spec_key=k,
                files=[LakeFileOut(**f.to_json()) for f in files],
            )
            for d, (k, files) in sorted(manifest.items())
        ],
        skipped_monitors=skipped,
    )


@router.put(
    "/models/{model}/profiles/{day}",
    response_model=ProfilePushOut,
    openapi_extra={
        "requestBody": {
            # the body is Parquet whatever the content type says
            "content": {PARQUET: {}, "application/octet-stream": {}, MULTIPART: {}},
            "description": "Push format 1: profile rows of one date as Parquet, schema "
            "metadata 'driftwatch.profiles' = {spec_key, date, files}. Push format 2 (a spec "
            "with 'sample' or 'labels'): multipart/form-data with Parquet parts 'profiles' "
            "(metadata also {format: 2, sample_k}), 'samples' and 'labels' "
            "(docs/scale-out.md).",
        }
    },
)
async def push_profiles(
    model: str, day: date, request: Request, caller: SharedEngineer
) -> ProfilePushOut:
    """Replace one date's hourly profiles (computed by a lake job) in one transaction."""
    services = _services(request)
    services.get_model(model)
    body = await read_body(request)
    if not body:
        raise BadRequestError("empty body: send the date's profile rows as Parquet")
    try:
        day_rows, spec_key, meta_day, files, sample_k, fmt = await run_in_threadpool(
            decode_day, body, request.headers.get("content-type") or PARQUET
        )
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    if meta_day != day:
        raise BadRequestError(f"profile push: metadata date {meta_day} is not the path's {day}")
    svc = components(request).monitors
    current, _ = await run_in_threadpool(svc.profile_spec, model)
    if spec_key != current.key:
        raise ConflictError(
            f"profile push for {model} {day}: spec {spec_key!r} is stale, the current spec is "
            f"{current.key!r}; read GET /api/v1/models/{model}/profile-spec and recompute",
            current_key=current.key,
        )
    if fmt != current.format:
        raise BadRequestError(
            f"profile push for {model} {day}: spec {current.key!r} is format {current.format}, "
            f"the body is push format {fmt}; send push format {current.format} (format 2: "
            "multipart/form-data with parts profiles, samples, labels; docs/scale-out.md)"
        )
    try:
        n = await run_in_threadpool(
            svc.runner.profiles.replace_day,
            model,
            day,
            day_rows.profiles,
            spec_key,
            files,
            day_rows.samples,
            day_rows.labels,
            sample_k,
        )
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc
    services.metadata.audit(
        caller.actor, "profiles.push", "model", model, {"date": day.isoformat(), "rows": n}
    )
    return ProfilePushOut(model=model, date=day, spec_key=spec_key, rows=n, files=len(files))
