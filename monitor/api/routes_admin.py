"""Health, tenants, API keys and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from monitor import tenancy
from monitor.api.auth import require
from monitor.api.out import IsoTime, Out, StatusOut
from monitor.api.params import AwareWhen
from monitor.errors import ConflictError, NotFoundError, ValidationFailed
from monitor.ingest import TENANT_RE
from monitor.schemas import TenantOut
from monitor.service import Caller, Services
from storage.metadata import Ambiguous
from storage.metadata import NotFound as MetaNotFound
from storage.types import ROLES, Role

router = APIRouter()
Viewer = Annotated[Caller, Depends(require("viewer"))]
Admin = Annotated[Caller, Depends(require("admin", unscoped=True))]


def _services(request: Request) -> Services:
    return request.app.state.services


class ReadyOut(Out):
    status: str = Field(description="ready or not ready")
    checks: dict[str, bool]


class AuditOut(Out):
    """One audit entry: who did what to which object, when."""

    id: int
    ts: IsoTime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any] | None


@router.get("/health", response_model=StatusOut, tags=["health"])
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "A store does not answer."}},
    tags=["health"],
)
def ready(request: Request) -> JSONResponse:
    """Readiness: both stores answer."""
    services = getattr(request.app.state, "services", None)
    checks = {"metadata": False, "logstore": False}
    if services is not None:
        try:
            checks["metadata"] = services.metadata.ping()
        except Exception:  # a failing store is what this endpoint reports
            checks["metadata"] = False
        try:
            services.logstore.models()  # one read query on the DuckDB file
            checks["logstore"] = True
        except Exception:
            checks["logstore"] = False
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503
    )


@router.get("/tenants", response_model=list[TenantOut], tags=["tenants"])
def list_tenants(request: Request, caller: Viewer) -> list[TenantOut]:
    tenants = _services(request).metadata.list_tenants()
    return [
        TenantOut(tenant_id=t.tenant_id, name=t.name, created_at=t.created_at)
        for t in tenants
        if tenancy.sees(caller.scope, t.tenant_id)
    ]


@router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"])
def get_tenant(tenant_id: str, request: Request, caller: Viewer) -> TenantOut:
    """Another tenant's record answers 404 to a scoped key, as if it did not exist."""
    if not tenancy.sees(caller.scope, tenant_id):
        raise NotFoundError(f"tenant {tenant_id!r} not found")
    for t in _services(request).metadata.list_tenants():
        if t.tenant_id == tenant_id:
            return TenantOut(tenant_id=t.tenant_id, name=t.name, created_at=t.created_at)
    raise NotFoundError(f"tenant {tenant_id!r} not found")


class TenantIn(BaseModel):
    tenant_id: str = Field(pattern=TENANT_RE.pattern, max_length=64)


@router.post(
    "/tenants",
    response_model=TenantOut,
    status_code=201,
    tags=["tenants"],
    responses={200: {"model": TenantOut, "description": "The tenant existed already."}},
)
def create_tenant(body: TenantIn, request: Request, response: Response, caller: Admin) -> TenantOut:
    """Create a tenant (before its first rows arrive, e.g. to give it a scoped key).
    Tenants also appear by themselves when rows name them."""
    meta = _services(request).metadata
    existed = meta.get_tenant(body.tenant_id) is not None
    meta.ensure_tenants([body.tenant_id], caller.actor)
    t = meta.get_tenant(body.tenant_id)
    assert t is not None
    if existed:
        response.status_code = 200
    return TenantOut(tenant_id=t.tenant_id, name=t.name, created_at=t.created_at)


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str = "engineer"
    tenant_id: str | None = Field(
        None,
        pattern=TENANT_RE.pattern,
        description="Scope the key to this tenant, which must exist (POST /tenants).",
    )
    expires_at: AwareWhen | None = Field(None, description="In the future.")


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: str
    tenant_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    key: str | None = None  # the secret, only in the answer that creates it


def _key_out(info: Any, secret: str | None = None) -> KeyOut:
    return KeyOut(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        role=info.role,
        tenant_id=info.tenant_id,
        created_at=info.created_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
        last_used_at=info.last_used_at,
        key=secret,
    )


@router.post("/keys", response_model=KeyOut, status_code=201, tags=["keys"])
def create_key(body: KeyIn, request: Request, caller: Admin) -> KeyOut:
    """Create an API key. The secret is in this answer only; it is stored hashed."""
    if body.role not in ROLES:
        raise ValidationFailed(f"role {body.role!r} is not one of {list(ROLES)}")
    meta = _services(request).metadata
    if body.expires_at is not None and body.expires_at <= meta.now():
        raise ValidationFailed(
            f"expires_at: {body.expires_at.isoformat()} is in the past; a key must expire "
            "in the future"
        )
    if body.tenant_id is not None and meta.get_tenant(body.tenant_id) is None:
        raise ValidationFailed(
            f"tenant_id: tenant {body.tenant_id!r} does not exist; create it first with "
            "POST /api/v1/tenants (a typo would give a key that sees nothing)"
        )
    info, secret = meta.create_api_key(
        body.name,
        cast(Role, body.role),  # the store refuses a role not in ROLES (ValueError)
        body.tenant_id,
        body.expires_at,
        caller.actor,
    )
    return _key_out(info, secret)


@router.get("/keys", response_model=list[KeyOut], tags=["keys"])
def list_keys(request: Request, caller: Admin) -> list[KeyOut]:
    return [_key_out(k) for k in _services(request).metadata.list_api_keys()]


@router.delete("/keys/{key}", response_model=KeyOut, tags=["keys"])
def revoke_key(
    key: Annotated[str, Path(min_length=1, max_length=128)], request: Request, caller: Admin
) -> KeyOut:
    """Revoke a key by id or display prefix; it stops working at once."""
    try:
        return _key_out(_services(request).metadata.revoke_api_key(key, caller.actor))
    except MetaNotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except Ambiguous as exc:
        raise ConflictError(f"{exc}; give the key id instead") from exc


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit_log(
    request: Request, caller: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "ts": e.ts.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "detail": e.detail,
        }
        for e in _services(request).metadata.list_audit(limit=limit)
    ]
