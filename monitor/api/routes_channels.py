"""Alert channels (webhook, Slack, PagerDuty ...) and their deliveries (dead letters, retry).

Channels and deliveries are shared by all tenants, so tenant-scoped keys may not use these
routes. Channel secrets are write-only: the signing secret is returned once, when created or
rotated, and never again. Included by :mod:`monitor.api.routes_alerts`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, StrictBool, field_validator

from alerts.channels import channel_type
from alerts.channels import kinds as channel_kinds
from alerts.signing import check_signing_secret
from monitor.alert_views import jsonable
from monitor.alerting import AlertingRuntime
from monitor.api.auth import require
from monitor.api.deps import alerting_runtime, in_thread
from monitor.api.out import StatusOut, list_of, out_model
from monitor.api.params import MAX_ID, Id
from monitor.errors import NotFoundError, ValidationFailed
from monitor.service import Caller
from storage.metadata import NotFound as MetaNotFound
from storage.types import ChannelRecord, DeliveryRecord

__all__ = ["ChannelIn", "ChannelPatch", "router"]

ChannelOut = out_model(ChannelRecord)
ChannelSecretOut = out_model(
    ChannelRecord,
    "ChannelSecretOut",
    extra={
        "signing_secret": (
            str | None,
            Field(None, description="The webhook signing secret: shown this once only."),
        )
    },
)
DeliveryOut = out_model(DeliveryRecord, exclude=("body",))
DeliveryDetailOut = out_model(DeliveryRecord, "DeliveryDetailOut")

router = APIRouter()
SharedViewer = Annotated[Caller, Depends(require("viewer", unscoped=True))]
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]
Admin = Annotated[Caller, Depends(require("admin", unscoped=True))]


def _channel(c: ChannelRecord) -> dict[str, Any]:
    return jsonable(asdict(c))


def _delivery(d: DeliveryRecord, body: bool = False) -> dict[str, Any]:
    out = jsonable(asdict(d))
    if not body:
        out.pop("body", None)
    return out


if TYPE_CHECKING:  # the kinds are known once the channel registry is filled, at run time
    ChannelKindIn = str
else:
    ChannelKindIn = Literal[
        channel_kinds()
    ]  # the registered kinds, an enum in the OpenAPI document


class ChannelIn(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    kind: ChannelKindIn
    url: str = Field(min_length=8, max_length=2048)
    signing_secret: str | None = Field(
        None,
        description="Standard Webhooks secret for webhook channels: whsec_ + base64 of 24 to 64 "
        "random bytes; generated when omitted.",
    )
    routing_key: str | None = Field(None, description="PagerDuty integration (routing) key.")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("signing_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else check_signing_secret(value)


class ChannelPatch(BaseModel):
    url: str | None = Field(None, min_length=8, max_length=2048)
    enabled: StrictBool | None = None
    routing_key: str | None = None
    options: dict[str, Any] | None = None


@router.get("/channels", response_model=list_of(ChannelOut), tags=["channels"])
async def list_channels(request: Request, caller: SharedViewer) -> list[dict[str, Any]]:
    return [_channel(c) for c in await in_thread(alerting_runtime(request).store.list_channels)]


@router.post(
    "/channels",
    status_code=201,
    response_model=ChannelSecretOut,
    response_model_exclude_unset=True,  # signing_secret only when there is one
    tags=["channels"],
)
async def create_channel(body: ChannelIn, request: Request, caller: Admin) -> dict[str, Any]:
    """Create a channel; the URL is checked against the SSRF rules. The response carries the
    signing secret of a webhook channel: the only time it is shown."""
    rt = alerting_runtime(request)
    if channel_type(body.kind).requires_routing_key and not body.routing_key:
        raise ValidationFailed(f"routing_key is required for a {body.kind} channel")
    rec, secret = await in_thread(
        rt.engine.create_channel,
        body.name,
        body.kind,
        body.url,
        signing_secret=body.signing_secret,
        routing_key=body.routing_key,
        options=body.options,
        actor=caller.actor,
    )
    out = _channel(rec)
    if secret:
        out["signing_secret"] = secret
    return out


def _get_channel(rt: AlertingRuntime, name: str) -> ChannelRecord:
    rec = rt.store.get_channel(name)
    if rec is None:
        raise MetaNotFound(f"channel {name!r} not found")
    return rec


@router.get("/channels/{channel}", response_model=ChannelOut, tags=["channels"])
async def get_channel(channel: str, request: Request, caller: SharedViewer) -> dict[str, Any]:
    return _channel(await in_thread(_get_channel, alerting_runtime(request), channel))


@router.patch("/channels/{channel}", response_model=ChannelOut, tags=["channels"])
async def update_channel(
    channel: str, body: ChannelPatch, request: Request, caller: Admin
) -> dict[str, Any]:
    rt = alerting_runtime(request)

    def run() -> ChannelRecord:
        rec = _get_channel(rt, channel)
        if body.url is not None:
            rec = rt.engine.update_channel_url(channel, body.url, caller.actor)
        if body.enabled is not None or body.routing_key is not None or body.options is not None:
            rec = rt.store.update_channel(
                channel,
                enabled=body.enabled,
                routing_key=body.routing_key,
                options=body.options,
                actor=caller.actor,
            )
        return rec

    return _channel(await in_thread(run))


@router.delete("/channels/{channel}", response_model=StatusOut, tags=["channels"])
async def delete_channel(channel: str, request: Request, caller: Admin) -> dict[str, str]:
    """Delete a channel (one with delivery history is disabled instead)."""
    await in_thread(alerting_runtime(request).store.delete_channel, channel, caller.actor)
    return {"status": "deleted"}


@router.post(
    "/channels/{channel}/rotate-secret", response_model=ChannelSecretOut, tags=["channels"]
)
async def rotate_secret(channel: str, request: Request, caller: Admin) -> dict[str, Any]:
    """New signing secret; the previous one stays valid until the next rotation."""
    rec, secret = await in_thread(
        alerting_runtime(request).engine.rotate_secret, channel, caller.actor
    )
    return {**_channel(rec), "signing_secret": secret}


@router.post("/channels/{channel}/test", response_model=list_of(DeliveryOut), tags=["channels"])
async def test_channel(
    channel: str, request: Request, caller: SharedEngineer
) -> list[dict[str, Any]]:
    """Queue a sample notification to the channel; follow it in /deliveries."""
    return [
        _delivery(d)
        for d in await in_thread(alerting_runtime(request).engine.test_channel, channel)
    ]


# ---------------------------------------------------------------------------- deliveries
@router.get("/deliveries", response_model=list_of(DeliveryOut), tags=["deliveries"])
async def list_deliveries(
    request: Request,
    caller: SharedViewer,
    status: Annotated[
        list[Literal["pending", "sending", "delivered", "dead", "cancelled"]] | None, Query()
    ] = None,
    channel: str | None = None,
    notification_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[dict[str, Any]]:
    """Deliveries with their attempts (status code, error, duration), newest first."""
    rows = await in_thread(
        alerting_runtime(request).store.list_deliveries,
        status=status,
        channel=channel,
        notification_id=notification_id,
        with_attempts=True,
        limit=limit,
    )
    return [_delivery(d) for d in rows]


@router.get("/dead-letters", response_model=list_of(DeliveryOut), tags=["deliveries"])
async def dead_letters(request: Request, caller: SharedViewer) -> list[dict[str, Any]]:
    """Deliveries that gave up (or were refused); retry them with POST .../retry."""
    rows = await in_thread(
        alerting_runtime(request).store.list_deliveries,
        status="dead",
        with_attempts=True,
        limit=10_000,
    )
    return [_delivery(d) for d in rows]


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetailOut, tags=["deliveries"])
async def get_delivery(delivery_id: Id, request: Request, caller: SharedViewer) -> dict[str, Any]:
    d = await in_thread(alerting_runtime(request).store.get_delivery, delivery_id)
    if d is None:
        raise NotFoundError(f"delivery {delivery_id} not found")
    return _delivery(d, body=True)


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut, tags=["deliveries"])
async def retry_delivery(
    delivery_id: Id, request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    """Send a dead-lettered delivery again now, with the same webhook-id."""
    rt = alerting_runtime(request)
    d = await in_thread(rt.store.retry_delivery, delivery_id, caller.actor)
    rt.wake()
    return _delivery(d)
