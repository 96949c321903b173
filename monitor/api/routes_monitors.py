"""Monitors: CRUD, apply, defaults, runs now / backfill, and the runs and results listings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from monitor import tenancy
from monitor.api.auth import require
from monitor.api.deps import components
from monitor.api.out import IsoTime, Out
from monitor.api.params import Offset, When
from monitor.api.routes_jobs import JobOut
from monitor.jobs import backfill_job
from monitor.limits import check_range
from monitor.monitoring import MonitorService
from monitor.runner import RunSummary
from monitor.service import Caller
from storage.metadata.monitoring import MonitorRecord, ResultQuery, RunRecord
from storage.types import MetricResult

router = APIRouter(tags=["monitors"])
Viewer = Annotated[Caller, Depends(require("viewer"))]
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]
MAX_PAGE = 5000


def _svc(request: Request) -> MonitorService:
    return components(request).monitors


def _span(request: Request, start: datetime | None, end: datetime | None) -> None:
    """A listing's ``start``..``end``, when both are given, within ``max_range_days``."""
    if start is not None and end is not None:
        check_range(start, end, request.app.state.settings.max_range_days)


class MonitorOut(BaseModel):
    name: str
    model: str
    kind: str
    enabled: bool
    version: int
    config: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: MonitorRecord) -> MonitorOut:
        return cls(
            name=r.name,
            model=r.model,
            kind=r.kind,
            enabled=r.enabled,
            version=r.version,
            config=r.config,
            created_by=r.created_by,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class RunOut(BaseModel):
    id: int | None = None
    monitor: str
    window_start: datetime
    window_end: datetime
    trigger: str
    status: str
    error: str | None = None
    rows_scanned: int
    results: int
    duration_s: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    definition_version: int | None = None

    @classmethod
    def of(cls, r: RunRecord | RunSummary) -> RunOut:
        if isinstance(r, RunSummary):
            return cls(
                monitor=r.monitor,
                window_start=r.window_start,
                window_end=r.window_end,
                trigger=r.trigger,
                status=r.status,
                error=r.error,
                rows_scanned=r.rows_scanned,
                results=r.results,
                duration_s=r.duration_s,
            )
        return cls(
            id=r.id,
            monitor=r.monitor,
            window_start=r.window_start,
            window_end=r.window_end,
            trigger=r.trigger,
            status=r.status,
            error=r.error,
            rows_scanned=r.rows_scanned,
            results=r.results,
            duration_s=r.duration_s,
            started_at=r.started_at,
            finished_at=r.finished_at,
            definition_version=r.definition_version,
        )


class ResultOut(BaseModel):
    source: str
    source_name: str
    kind: str
    model: str | None
    window_start: datetime
    window_end: datetime
    tenant_id: str
    model_version: str
    column: str
    metric: str
    value: float | None
    threshold: float | None
    status: str
    details: dict[str, Any]
    definition_version: int
    computed_at: datetime | None

    @classmethod
    def of(cls, r: MetricResult) -> ResultOut:
        return cls(**{f: getattr(r, f) for f in cls.model_fields})


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class RunsPage(Page):
    items: list[RunOut]


class ResultsPage(Page):
    items: list[ResultOut]


class RunIn(BaseModel):
    window_start: When = Field(description="Any time inside the window to run.")


class BackfillIn(BaseModel):
    start: When
    end: When = Field(description="Exclusive; at most max_backfill_days after start.")


class ApplyIn(BaseModel):
    monitors: list[dict[str, Any]]
    dry_run: StrictBool = False


class ApplyOut(BaseModel):
    changes: list[dict[str, Any]]
    dry_run: bool


class MonitorVersionOut(Out):
    """One version of a monitor's definition."""

    version: int
    action: str
    actor: str
    ts: IsoTime
    diff: Any = None
    config: dict[str, Any] | None = None


class MonitorDefaultsOut(Out):
    """Proposed monitors and alert rules for a model, as ``apply`` accepts them."""

    monitors: list[dict[str, Any]] = Field(default_factory=list)
    rules: list[dict[str, Any]] = Field(default_factory=list)


@router.get("/monitors", response_model=list[MonitorOut])
def list_monitors(request: Request, caller: Viewer, model: str | None = None) -> list[MonitorOut]:
    """Every monitor (optionally of one model)."""
    return [MonitorOut.of(r) for r in _svc(request).list(model)]


@router.post("/monitors", status_code=201, response_model=MonitorOut)
def create_monitor(
    request: Request, caller: SharedEngineer, body: Annotated[dict[str, Any], Body()]
) -> MonitorOut:
    """Create a monitor; errors name the field (422)."""
    return MonitorOut.of(_svc(request).create(body, caller.actor))


@router.post("/monitors/apply", response_model=ApplyOut)
def apply_monitors(request: Request, caller: SharedEngineer, body: ApplyIn) -> ApplyOut:
    """Create or update monitors by name (``dry_run``: only report the differences)."""
    changes = _svc(request).apply(body.monitors, caller.actor, dry_run=body.dry_run)
    return ApplyOut(
        changes=[{"name": c.name, "action": c.action, "diff": c.diff} for c in changes],
        dry_run=body.dry_run,
    )


@router.get("/monitors/{name}", response_model=MonitorOut)
def get_monitor(name: str, request: Request, caller: Viewer) -> MonitorOut:
    return MonitorOut.of(_svc(request).get(name))


@router.put("/monitors/{name}", response_model=MonitorOut)
def update_monitor(
    name: str, request: Request, caller: SharedEngineer, body: Annotated[dict[str, Any], Body()]
) -> MonitorOut:
    """Replace a monitor's definition (a new version when anything changed)."""
    return MonitorOut.of(_svc(request).update(name, body, caller.actor))


@router.delete("/monitors/{name}", status_code=204)
def delete_monitor(name: str, request: Request, caller: SharedEngineer) -> None:
    _svc(request).delete(name, caller.actor)


@router.get("/monitors/{name}/versions", response_model=list[MonitorVersionOut])
def monitor_versions(name: str, request: Request, caller: Viewer) -> list[dict[str, Any]]:
    """The definition history: version, action, who, when, what changed."""
    return [
        {
            "version": v.version,
            "action": v.action,
            "actor": v.actor,
            "ts": v.ts.isoformat(),
            "diff": v.diff,
            "config": v.config,
        }
        for v in _svc(request).versions(name)
    ]


@router.post("/monitors/{name}/run", response_model=RunOut)
async def run_monitor(name: str, request: Request, caller: SharedEngineer, body: RunIn) -> RunOut:
    """Evaluate one window now (its results replace the stored ones)."""
    svc = _svc(request)
    return RunOut.of(await run_in_threadpool(svc.run, name, body.window_start))


@router.post("/monitors/{name}/backfill", status_code=202, response_model=JobOut)
def backfill_monitor(
    name: str, request: Request, response: Response, caller: SharedEngineer, body: BackfillIn
) -> JobOut:
    """Start evaluating every window starting in ``[start, end)``, oldest first, as a
    background job (at most ``max_backfill_days``): follow it at ``GET /jobs/{id}``, cancel
    it with ``DELETE /jobs/{id}``."""
    services = request.app.state.services
    start, end = check_range(
        body.start, body.end, services.settings.max_backfill_days, setting="max_backfill_days"
    )
    c = components(request)
    job = JobOut.of(backfill_job(c.jobs, c.monitors, name, start, end, caller.actor))
    response.headers["Location"] = job.link
    return job


@router.get("/models/{model}/monitor-defaults", response_model=MonitorDefaultsOut)
def monitor_defaults(
    model: str, request: Request, caller: Viewer, reference: str | None = None
) -> dict[str, Any]:
    """Proposed default monitors (and alert rules) for a model, as ``apply`` accepts them."""
    return _svc(request).propose(model, reference)


@router.get("/runs", response_model=RunsPage)
def list_runs(
    request: Request,
    caller: Viewer,
    monitor: str | None = None,
    model: str | None = None,
    status: str | None = None,
    start: When | None = None,
    end: When | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> RunsPage:
    """Monitor runs, newest window first."""
    _span(request, start, end)
    items, total = _svc(request).runs(
        monitor=monitor,
        model=model,
        status=status,
        start=start,
        end=end,
        limit=limit,
        offset=offset,
    )
    return RunsPage(items=[RunOut.of(r) for r in items], total=total, limit=limit, offset=offset)


@router.get("/results", response_model=ResultsPage)
def list_results(
    request: Request,
    caller: Viewer,
    model: str | None = None,
    monitor: str | None = None,
    source: str | None = None,
    kind: str | None = None,
    tenant_id: str | None = None,
    model_version: str | None = None,
    column: str | None = None,
    metric: str | None = None,
    status: str | None = None,
    start: When | None = None,
    end: When | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    offset: Offset = 0,
) -> ResultsPage:
    """Metric results of monitors and KPIs by window (``start <= window_start < end``).

    A tenant-scoped key sees only its tenant's results (not the all-tenant ``*`` rows)."""
    _span(request, start, end)
    q = ResultQuery(
        model=model,
        source=source,
        source_name=monitor,
        kind=kind,
        tenant_id=tenant_id,
        tenant_ids=tenancy.as_filter(caller.scope),
        model_version=model_version,
        column=column,
        metric=metric,
        status=status,
        start=start,
        end=end,
    )
    items, total = _svc(request).results(q, limit, offset)
    return ResultsPage(
        items=[ResultOut.of(r) for r in items], total=total, limit=limit, offset=offset
    )
