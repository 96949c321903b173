"""Tenant KPIs: definitions, values, the link to model signals, the executive summary.

Readable by viewers. A tenant-scoped key sees only its own tenant: asking for another
tenant's KPI values, related signals or summary answers 404, as if it did not exist.
Definitions are shared by all tenants, so only unscoped engineers change them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from monitor import tenancy
from monitor.api.auth import require
from monitor.api.deps import components
from monitor.api.out import IsoTime, Out, out_model
from monitor.api.params import When
from monitor.api.routes_jobs import JobOut
from monitor.errors import NotFoundError, ValidationFailed
from monitor.jobs import kpi_compute_job
from monitor.kpis.service import KpiService
from monitor.kpis.summary import KpiSummary, ModelHealth
from monitor.limits import check_range
from monitor.service import Caller
from storage.types import KpiRecord, MetricResult


class KpiOut(Out):
    """A KPI definition and its version."""

    name: str
    version: int
    enabled: bool
    created_by: str
    created_at: IsoTime
    updated_at: IsoTime
    definition: dict[str, Any]


class KpiResultOut(Out):
    """A KPI's value and status for one tenant and window."""

    kpi: str
    tenant_id: str
    window_start: IsoTime
    window_end: IsoTime
    value: float | None
    status: str
    target: float | None
    details: dict[str, Any]
    definition_version: int | None


class KpiChangeOut(Out):
    name: str
    action: str
    diff: Any = None


class KpiApplyOut(Out):
    changes: list[KpiChangeOut]


class KpiComputeOut(Out):
    kpi: str
    results: int = Field(description="Result rows written.")


KpiSummaryOut = out_model(KpiSummary, "KpiSummaryOut")
ModelHealthOut = out_model(ModelHealth, "ModelHealthOut")


class TenantSummaryOut(Out):
    tenant_id: str
    status: str
    kpis: list[KpiSummaryOut]  # type: ignore[valid-type]
    models: list[ModelHealthOut]  # type: ignore[valid-type]


class FlaggedTenantOut(Out):
    tenant_id: str
    status: str
    change: float | None


class AcrossTenantsOut(Out):
    kpi: str
    tenants: int
    counts: dict[str, int]
    flagged: list[FlaggedTenantOut]
    sentence: str


class SummaryOut(Out):
    """The executive summary: per tenant its KPIs and models, and per KPI across tenants."""

    at: IsoTime
    tenants: list[TenantSummaryOut]
    across_tenants: list[AcrossTenantsOut]


class RelatedSignalsOut(Out):
    kpi: str
    tenant_id: str
    window_start: IsoTime
    status: str | None
    value: float | None
    note: str
    signals: list[dict[str, Any]] = Field(description="Model signals, best associated first.")


class RelatedKpisOut(Out):
    model: str
    tenant_id: str
    since: IsoTime
    until: IsoTime
    note: str
    kpis: list[dict[str, Any]] = Field(description="The tenant's KPIs that moved, ranked.")


router = APIRouter(tags=["kpis"])
Viewer = Annotated[Caller, Depends(require("viewer"))]
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]


def _kpis(request: Request) -> KpiService:
    return components(request).kpis


def _record(rec: KpiRecord) -> dict[str, Any]:
    return {
        "name": rec.name,
        "version": rec.version,
        "enabled": rec.enabled,
        "created_by": rec.created_by,
        "created_at": rec.created_at.isoformat(),
        "updated_at": rec.updated_at.isoformat(),
        "definition": rec.spec,
    }


def _result(r: MetricResult) -> dict[str, Any]:
    return {
        "kpi": r.source_name,
        "tenant_id": r.tenant_id,
        "window_start": r.window_start.isoformat(),
        "window_end": r.window_end.isoformat(),
        "value": r.value,
        "status": r.status,
        "target": r.threshold,
        "details": r.details,
        "definition_version": r.definition_version,
    }


def _own_tenant(caller: Caller, tenant_id: str) -> None:
    if not tenancy.sees(caller.scope, tenant_id):
        raise NotFoundError(f"tenant {tenant_id!r} not found")


def _body_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a KPI definition object")
    return body


@router.get("/kpis", response_model=list[KpiOut])
def list_kpis(request: Request, caller: Viewer) -> list[dict[str, Any]]:
    """Every KPI definition."""
    return [_record(r) for r in _kpis(request).list()]


KPI_BODY = Body(
    description="A KPI definition: name, formula, window, check, target... (docs/kpis.md); "
    "errors name the field."
)


@router.post("/kpis", status_code=201, response_model=KpiOut)
def create_kpi(
    body: Annotated[dict[str, Any], KPI_BODY], request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    """Create a KPI (formula grammar in docs/kpis.md); errors name the field."""
    return _record(_kpis(request).create(_body_dict(body), caller.actor))


@router.post("/kpis/apply", response_model=KpiApplyOut)
def apply_kpis(
    body: Annotated[dict[str, Any], Body()], request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    """Create or update KPIs by name (``{"kpis": [...], "dry_run": false}``): the ``kpis:``
    section of ``driftwatch apply``. Everything is validated before anything is written."""
    items = body.get("kpis", [])
    if not isinstance(items, list):
        raise ValidationFailed("kpis: must be a list of KPI definitions")
    changes = _kpis(request).apply(items, caller.actor, dry_run=bool(body.get("dry_run")))
    return {"changes": [{"name": c.name, "action": c.action, "diff": c.diff} for c in changes]}


@router.get("/kpis/summary", response_model=SummaryOut)
def summary_all(request: Request, caller: Viewer, at: When | None = None) -> dict[str, Any]:
    """Executive summary across tenants (only the caller's tenant for a scoped key)."""
    svc = _kpis(request)
    return svc.summary(None, at, tenant_scope=caller.tenant_id)


@router.get("/kpis/{kpi}", response_model=KpiOut)
def get_kpi(kpi: str, request: Request, caller: Viewer) -> dict[str, Any]:
    return _record(_kpis(request).get(kpi))


@router.put("/kpis/{kpi}", response_model=KpiOut)
def update_kpi(
    kpi: str, body: Annotated[dict[str, Any], KPI_BODY], request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    """Replace a KPI's definition; its version goes up when something changed."""
    return _record(_kpis(request).update(kpi, _body_dict(body), caller.actor))


@router.delete("/kpis/{kpi}", status_code=204)
def delete_kpi(kpi: str, request: Request, caller: SharedEngineer) -> Response:
    _kpis(request).delete(kpi, caller.actor)
    return Response(status_code=204)


@router.post(
    "/kpis/{kpi}/compute",
    responses={
        200: {"model": KpiComputeOut, "description": "No range: the due windows, computed."},
        202: {"model": JobOut, "description": "A range: the job computing it."},
    },
)
async def compute_kpi(
    kpi: str,
    request: Request,
    response: Response,
    caller: SharedEngineer,
    start: Annotated[When | None, Query(description="First window (aligned down).")] = None,
    end: Annotated[
        When | None, Query(description="End of the range (exclusive), max_backfill_days at most.")
    ] = None,
) -> Any:
    """With ``start`` and ``end``: start computing (or recomputing: results are replaced)
    the KPI over the range for all tenants as a background job (202; follow it at
    ``GET /jobs/{id}``, cancel with ``DELETE /jobs/{id}``). Without a range: every closed
    window of this KPI since its last run, now (as the scheduler does), answered with the rows
    written; more than ``max_backfill_days`` of them is refused (422) with the range to compute
    as jobs."""
    svc = _kpis(request)
    svc.get(kpi)
    services = request.app.state.services
    if start is None or end is None:
        # Bounded like a range: a catch-up longer than max_backfill_days (a KPI not computed
        # for months) is refused, naming the range to compute as a job instead.
        due_start, due_end = svc.due_range(svc.definition(kpi), svc.clock())
        limit = services.settings.max_backfill_days
        if due_end - due_start > timedelta(days=limit):
            raise ValidationFailed(
                f"{(due_end - due_start).days} days of {kpi!r} are due since its last run, "
                f"more than max_backfill_days ({limit}): compute them as jobs with start and "
                f"end (from {due_start.isoformat()} to {due_end.isoformat()})"
            )
        rows = await run_in_threadpool(svc.run_due, None, timedelta(minutes=10), [kpi])
        return {"kpi": kpi, "results": rows}
    start, end = check_range(
        start, end, services.settings.max_backfill_days, setting="max_backfill_days"
    )
    job = JobOut.of(kpi_compute_job(components(request).jobs, svc, kpi, start, end, caller.actor))
    response.status_code = 202
    response.headers["Location"] = job.link
    return job


@router.get("/kpis/{kpi}/results", response_model=list[KpiResultOut])
def kpi_results(
    kpi: str,
    request: Request,
    caller: Viewer,
    tenant_id: str | None = None,
    start: When | None = None,
    end: When | None = None,
) -> list[dict[str, Any]]:
    """The KPI's value and status per tenant and window (the series a chart draws)."""
    if start is not None and end is not None:
        check_range(start, end, request.app.state.settings.max_range_days)
    rows = _kpis(request).series(kpi, tenant_id, start, end, tenant_scope=caller.tenant_id)
    return [_result(r) for r in rows]


@router.get("/tenants/{tenant_id}/kpis/summary", response_model=SummaryOut)
def summary_tenant(
    tenant_id: str, request: Request, caller: Viewer, at: When | None = None
) -> dict[str, Any]:
    """Executive summary of one tenant: KPIs now vs before and vs target, models' health."""
    _own_tenant(caller, tenant_id)
    return _kpis(request).summary(tenant_id, at)


@router.get("/tenants/{tenant_id}/kpis/{kpi}/related-signals", response_model=RelatedSignalsOut)
def related_signals(
    tenant_id: str,
    kpi: str,
    request: Request,
    caller: Viewer,
    window_start: When | None = None,
    max_lag: Annotated[int, Query(ge=0, le=14)] = 3,
    span: Annotated[int, Query(ge=4, le=365)] = 28,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """For a KPI breach of this tenant (its latest flagged window by default): the model
    signals that moved with it, ranked. Association, not proof."""
    _own_tenant(caller, tenant_id)
    return _kpis(request).related_signals(
        kpi, tenant_id, window_start, max_lag=max_lag, span=span, limit=limit
    )


@router.get("/tenants/{tenant_id}/models/{model}/related-kpis", response_model=RelatedKpisOut)
def related_kpis(
    tenant_id: str,
    model: str,
    request: Request,
    caller: Viewer,
    since: When | None = None,
    until: When | None = None,
    monitor: str | None = None,
    column: str | None = None,
    metric: str | None = None,
    max_lag: Annotated[int, Query(ge=0, le=14)] = 3,
) -> dict[str, Any]:
    """For a model alert on this tenant (``since`` = its first breaching window): the
    tenant's KPIs that moved in the same windows. Association, not proof."""
    _own_tenant(caller, tenant_id)
    svc = _kpis(request)
    if since is not None and until is not None:
        check_range(
            since,
            until,
            request.app.state.settings.max_range_days,
            fields=("since", "until"),
            allow_empty=True,
        )
    if since is None:
        since = until or svc.clock()
    return svc.related_kpis(
        model,
        tenant_id,
        since,
        until,
        monitor=monitor,
        column=column,
        metric=metric,
        max_lag=max_lag,
    )
