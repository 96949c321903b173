"""Background jobs: the state and progress of backfills and KPI computes, and cancelling them.

Jobs concern objects shared by all tenants (monitors, KPI definitions), so tenant-scoped keys
may not use these routes, like the routes that start the jobs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from monitor.api.auth import require
from monitor.api.deps import components
from monitor.api.params import Id
from monitor.service import Caller
from storage.metadata.jobs import JobRecord

router = APIRouter(tags=["jobs"])
SharedViewer = Annotated[Caller, Depends(require("viewer", unscoped=True))]
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]


class JobOut(BaseModel):
    id: int
    kind: Literal["backfill", "kpi_compute"]
    target: str = Field(description="The monitor or KPI the job works on.")
    params: dict[str, Any]
    state: JobState
    done: int = Field(description="Windows finished.")
    total: int = Field(description="Windows in the job's range.")
    progress: float = Field(description="done / total, 0 to 1.")
    result: dict[str, Any] | None
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    link: str = Field(description="This job's URL.")

    @classmethod
    def of(cls, rec: JobRecord) -> JobOut:
        return cls(
            id=rec.id,
            kind=rec.kind,
            target=rec.target,
            params=rec.params,
            state=rec.state,
            done=rec.done,
            total=rec.total,
            progress=min(1.0, rec.done / rec.total) if rec.total else 0.0,
            result=rec.result,
            error=rec.error,
            created_by=rec.created_by,
            created_at=rec.created_at,
            started_at=rec.started_at,
            finished_at=rec.finished_at,
            link=f"/api/v1/jobs/{rec.id}",
        )


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    request: Request,
    caller: SharedViewer,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobOut]:
    """Jobs, newest first."""
    runner = components(request).jobs
    return [JobOut.of(j) for j in runner.store.list(limit, state)]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: Id, request: Request, caller: SharedViewer) -> JobOut:
    """A job's state and progress."""
    return JobOut.of(components(request).jobs.get(job_id))


@router.delete("/jobs/{job_id}", response_model=JobOut)
def cancel_job(job_id: Id, request: Request, caller: SharedEngineer) -> JobOut:
    """Cancel a job: it stops after the window it is working on (results so far stay);
    a finished job is returned as it is."""
    return JobOut.of(components(request).jobs.cancel(job_id, caller.actor))
