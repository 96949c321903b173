"""Models, inference logs, labels, references, business events and quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from monitor import ingest, tenancy
from monitor.api.auth import require
from monitor.api.deps import read_body
from monitor.api.out import IsoTime, Out
from monitor.errors import BadRequestError
from monitor.schemas import IngestOut, ModelIn, ModelOut, ReferenceOut, RowErrorOut
from monitor.service import Caller, IngestSummary, Services
from storage.types import ModelInfo

router = APIRouter()
Viewer = Annotated[Caller, Depends(require("viewer"))]
Engineer = Annotated[Caller, Depends(require("engineer"))]
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]

BODY_DOC = {
    "requestBody": {
        "content": {t: {} for t in ingest.SUPPORTED_TYPES},
        "description": "Rows as a JSON array, NDJSON, Parquet, Arrow IPC or CSV (by Content-Type).",
    }
}


def _services(request: Request) -> Services:
    return request.app.state.services


EMPTY_BODY = "empty body: send rows as JSON, NDJSON, Parquet, Arrow or CSV"


def ingest_out(summary: IngestSummary, max_errors: int) -> IngestOut:
    """The answer of an ingest route (also built by ``monitor.api.lean_ingest``)."""
    return IngestOut(
        batch_id=summary.batch_id,
        received=summary.received,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        rejected=summary.rejected,
        errors=[
            RowErrorOut(row=e.row, field=e.field, reason=e.reason)
            for e in summary.errors[:max_errors]
        ],
    )


async def _parsed(request: Request) -> ingest.ParsedBody:
    body = await read_body(request)
    if not body:
        raise BadRequestError(EMPTY_BODY)
    ctype = request.headers.get("content-type", "")
    if ingest.defers_parsing(ctype):
        # JSON is only wrapped here (validate parses it on the worker thread): no thread hop,
        # which was a fixed cost of every small request
        return ingest.parse_body(body, ctype)
    return await run_in_threadpool(ingest.parse_body, body, ctype)


@router.post("/models", status_code=201, response_model=ModelOut, tags=["models"])
def register_model(body: ModelIn, request: Request, caller: SharedEngineer) -> ModelOut:
    """Register a model and its schema; creates its tables in the log store."""
    return ModelOut.of(_services(request).register_model(body, caller))


@router.get("/models", response_model=list[ModelOut], tags=["models"])
def list_models(request: Request, caller: Viewer) -> list[ModelOut]:
    return [ModelOut.of(m) for m in _services(request).list_models()]


def _model_and_counts(services: Services, model: str) -> tuple[ModelInfo, dict[str, int]]:
    """The model and its stored rows per tenant (may read the metadata and the log store)."""
    return services.get_model(model), services.logstore.tenant_counts(model)


def _model_and_counts_in_memory(
    services: Services, model: str
) -> tuple[ModelInfo, dict[str, int]] | None:
    """:func:`_model_and_counts` when memory has both (reads nothing, waits for no lock)."""
    info = services.cached_model(model)
    counts = services.logstore.cached_tenant_counts(model) if info is not None else None
    return (info, counts) if info is not None and counts is not None else None


@router.get("/models/{model}", response_model=ModelOut, tags=["models"])
async def get_model(model: str, request: Request, caller: Viewer) -> ModelOut:
    """A model with its row count and the tenants seen (only the caller's tenant if scoped)."""
    services = _services(request)
    # answered on the event loop from memory when it can: the dashboard's read is then one
    # thread hop (the key dependency), not three (a sync route, and FastAPI checks a sync
    # route's response model on a thread too), each return to the loop a wait behind the
    # ingest work queued there (docs/architecture.md, "the dashboard read while ingesting")
    found = _model_and_counts_in_memory(services, model)
    if found is None:  # reads the metadata or the log store: on a thread
        found = await run_in_threadpool(_model_and_counts, services, model)
    info, counts = found
    tenants = tenancy.visible(caller.scope, sorted(counts))
    tenant = caller.tenant_id
    rows = counts.get(tenant, 0) if tenant is not None else sum(counts.values())
    return ModelOut.of(info, rows=rows, tenants=tenants)


@router.put("/models/{model}", response_model=ModelOut, tags=["models"])
def update_model(model: str, body: ModelIn, request: Request, caller: SharedEngineer) -> ModelOut:
    """Change a model's schema: new features add nullable columns; a type change is refused."""
    return ModelOut.of(_services(request).update_model(model, body, caller))


@router.post(
    "/models/{model}/inferences", response_model=IngestOut, tags=["ingest"], openapi_extra=BODY_DOC
)
async def log_inferences(model: str, request: Request, caller: Engineer) -> IngestOut:
    """Store inference rows. Valid rows commit together; invalid ones go to quarantine;
    rows whose request_id is stored already count as duplicates (safe to retry)."""
    services = _services(request)
    services.get_model(model)  # 404 before reading a large body
    parsed = await _parsed(request)
    summary = await run_in_threadpool(services.ingest_inferences, model, parsed, caller)
    return ingest_out(summary, services.settings.max_errors_reported)


@router.post(
    "/models/{model}/labels", response_model=IngestOut, tags=["ingest"], openapi_extra=BODY_DOC
)
async def log_labels(model: str, request: Request, caller: Engineer) -> IngestOut:
    """Store true labels by request_id; they may arrive before or after the inference row."""
    services = _services(request)
    services.get_model(model)
    parsed = await _parsed(request)
    summary = await run_in_threadpool(services.ingest_labels, model, parsed, caller)
    return ingest_out(summary, services.settings.max_errors_reported)


@router.post("/events", response_model=IngestOut, tags=["ingest"], openapi_extra=BODY_DOC)
async def log_events(request: Request, caller: Engineer) -> IngestOut:
    """Store business events (tenant_id, ts, name, value, optional request_id, event_id)."""
    services = _services(request)
    parsed = await _parsed(request)
    summary = await run_in_threadpool(services.ingest_events, parsed, caller)
    return ingest_out(summary, services.settings.max_errors_reported)


@router.put(
    "/models/{model}/references/{name}",
    response_model=ReferenceOut,
    tags=["references"],
    openapi_extra=BODY_DOC,
)
async def put_reference(
    model: str, name: str, request: Request, caller: SharedEngineer
) -> ReferenceOut:
    """Upload a baseline dataset (Parquet, CSV, Arrow or JSON); each upload is a new version."""
    services = _services(request)
    services.get_model(model)
    parsed = await _parsed(request)
    version, summary = await run_in_threadpool(services.put_reference, model, name, parsed, caller)
    return ReferenceOut(model=model, name=name, version=version, rows=summary.accepted)


@router.get("/models/{model}/references", response_model=list[ReferenceOut], tags=["references"])
def list_references(model: str, request: Request, caller: Viewer) -> list[ReferenceOut]:
    services = _services(request)
    services.get_model(model)
    return [
        ReferenceOut(model=model, name=n, version=v, rows=r)
        for n, v, r in services.logstore.list_references(model)
    ]


class QuarantineOut(Out):
    """A rejected row: when, which batch and row, the field and the reason, the raw value."""

    id: int
    received_at: IsoTime
    batch_id: str | None
    kind: str = Field(description="inference, label, event or reference")
    model: str | None
    tenant_id: str | None
    row_index: int | None
    field: str | None
    reason: str | None
    raw: str | None


def _quarantined(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        if isinstance(r.get("received_at"), datetime):
            r["received_at"] = r["received_at"].isoformat()
    return rows


def _quarantine_rows(
    services: Services,
    caller: Caller,
    limit: int,
    tenant_id: str | None,
    *,
    model: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """The quarantine rows a caller asked for and may see: a scoped key asking for another
    tenant gets none (as ``/results`` answers), never that tenant's rows."""
    if tenant_id is not None and not tenancy.sees(caller.scope, tenant_id):
        return []
    tenant = tenant_id if tenant_id is not None else caller.tenant_id
    table = services.logstore.read_quarantine(model, limit=limit, tenant_id=tenant, kind=kind)
    return _quarantined(table.to_pylist())


@router.get("/models/{model}/quarantine", response_model=list[QuarantineOut], tags=["ingest"])
def list_quarantine(
    model: str,
    request: Request,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    tenant_id: str | None = None,
) -> list[dict[str, Any]]:
    """Rejected rows with their reasons, oldest first, optionally of one tenant (only the
    caller's tenant if the key is scoped)."""
    services = _services(request)
    services.get_model(model)
    return _quarantine_rows(services, caller, limit, tenant_id, model=model)


@router.get("/events/quarantine", response_model=list[QuarantineOut], tags=["ingest"])
def list_event_quarantine(
    request: Request,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    tenant_id: str | None = None,
) -> list[dict[str, Any]]:
    """Rejected business events with their reasons, oldest first, optionally of one tenant
    (only the caller's tenant if the key is scoped)."""
    services = _services(request)
    return _quarantine_rows(services, caller, limit, tenant_id, kind="event")
