"""Alerts, silences, alert rules, backtests, /metrics (channels and deliveries:
:mod:`monitor.api.routes_channels`).

Alerts belong to tenants: a tenant-scoped key sees and acknowledges only its tenant's alerts
(another tenant's alert answers 404). Rules and silences (like channels and deliveries) are
shared by all tenants, so scoped keys may not use those routes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from alerts.engine import Muting
from alerts.formats import since
from alerts.twins import Twins
from monitor import tenancy
from monitor.alert_views import jsonable, silence_view
from monitor.api import routes_channels
from monitor.api.auth import require
from monitor.api.deps import alerting_runtime, components, in_thread
from monitor.api.out import IsoTime, Out, StatusOut, list_of, out_model
from monitor.api.params import AwareWhen, Id, Offset
from monitor.composition import Components
from monitor.errors import NotFoundError, ValidationFailed
from monitor.limits import check_range
from monitor.metrics import REGISTRY, Family
from monitor.service import Caller
from storage.types import (
    AlertRecord,
    RuleRecord,
    SilenceRecord,
)


# ---------------------------------------------------------------------------- bodies
class SilencedByOut(Out):
    id: int
    reason: str
    created_by: str
    ends_at: IsoTime


class InhibitedByOut(Out):
    id: int | None
    rule: str
    fingerprint: str
    severity: str


class TwinRefOut(Out):
    id: int | None
    state: str


class TenantTwinOut(Out):
    id: int | None
    tenant: str
    state: str


_ALERT_EXTRA: dict[str, tuple[Any, Any]] = {
    "all_tenants_alert": (TwinRefOut | None, None),
    "tenant_alerts": (list[TenantTwinOut], []),
    "since": (IsoTime, Field(description="Start of the first breaching window.")),
    "link": (str, Field(description="The alert's page on the dashboard.")),
    "silenced_by": (list[SilencedByOut], []),
    "inhibited_by": (list[InhibitedByOut], []),
}
AlertOut = out_model(AlertRecord, "AlertOut", extra=_ALERT_EXTRA)
AlertDetailOut = out_model(
    AlertRecord,
    "AlertDetailOut",
    extra={
        **_ALERT_EXTRA,
        "muted_by": (
            str | None,
            Field(None, description="silence:<ids> or inhibited:<fingerprints>, else null."),
        ),
    },
)


class MutedAlertOut(Out):
    id: int | None
    fingerprint: str
    labels: dict[str, str]
    link: str


SilenceOut = out_model(SilenceRecord)
SilenceViewOut = out_model(
    SilenceRecord,
    "SilenceViewOut",
    extra={"active": (bool, ...), "muting": (list[MutedAlertOut], [])},
)
RuleOut = out_model(RuleRecord)


class EpisodeOut(Out):
    fingerprint: str
    labels: dict[str, str]
    active_at: IsoTime
    fired_at: IsoTime
    resolved_at: IsoTime | None
    windows_firing: int
    peak_value: float | None


class BacktestOut(Out):
    rule: str
    results_seen: int
    results_matched: int
    windows: int
    fired: int
    episodes: list[EpisodeOut]


router = APIRouter()
Viewer = Annotated[Caller, Depends(require("viewer"))]
Engineer = Annotated[Caller, Depends(require("engineer"))]
SharedViewer = Annotated[Caller, Depends(require("viewer", unscoped=True))]
SharedEngineer = Annotated[Caller, Depends(require("engineer", unscoped=True))]
Admin = Annotated[Caller, Depends(require("admin", unscoped=True))]


def _alert(
    a: AlertRecord, base_url: str, muting: Muting | None = None, twins: Twins | None = None
) -> dict[str, Any]:
    """An alert as the API shows it: its record, plus ``since`` (the start of its first
    breaching window, what "since when" and "age" mean everywhere), its link, what mutes its
    notifications now (``silenced_by`` / ``inhibited_by``, empty when nothing does) and its
    twins (``all_tenants_alert`` of a per-tenant alert, ``tenant_alerts`` of a ``*`` one)."""
    out = jsonable(asdict(a))
    out.update((twins or Twins()).to_json())
    out["since"] = since(a).isoformat()
    out["link"] = f"{base_url}/alerts/{a.id}"
    out["silenced_by"] = [
        {
            "id": s.id,
            "reason": s.reason,
            "created_by": s.created_by,
            "ends_at": s.ends_at.isoformat(),
        }
        for s in (muting.silences if muting else ())
    ]
    out["inhibited_by"] = [
        {"id": i.id, "rule": i.rule, "fingerprint": i.fingerprint, "severity": i.severity}
        for i in (muting.inhibitors if muting else ())
    ]
    return out


def _visible(a: AlertRecord | None, caller: Caller) -> AlertRecord:
    if a is None or not tenancy.sees(caller.scope, a.tenant_id):
        raise NotFoundError("alert not found")  # another tenant's alert is hidden, not refused
    return a


# ---------------------------------------------------------------------------- alerts
@router.get("/alerts", response_model=list_of(AlertOut), tags=["alerts"])
async def list_alerts(
    request: Request,
    caller: Viewer,
    state: Annotated[list[Literal["pending", "firing", "resolved"]] | None, Query()] = None,
    rule: str | None = None,
    tenant: str | None = None,
    model: str | None = None,
    severity: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Alerts, newest first; filter by state (repeatable), rule, tenant, model, severity."""
    rt = alerting_runtime(request)
    if caller.scope is not None:
        if tenant is not None and not tenancy.sees(caller.scope, tenant):
            return []
        tenant = tenancy.only(caller.scope)
    rows = await in_thread(
        rt.store.list_alerts,
        state=state,
        rule=rule,
        tenant_id=tenant,
        model=model,
        severity=severity,
        limit=limit,
        offset=offset,
    )
    open_ = [a for a in rows if a.state != "resolved"]
    mutings = await in_thread(rt.engine.mutings, open_) if open_ else {}
    twins = await in_thread(rt.engine.twins, rows)
    return [
        _alert(a, rt.engine.base_url, mutings.get(a.fingerprint), twins.get(a.id or 0))
        for a in rows
    ]


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, tags=["alerts"])
async def get_alert(alert_id: Id, request: Request, caller: Viewer) -> dict[str, Any]:
    """One alert with its context, and what mutes it now (silences, inhibition)."""
    rt = alerting_runtime(request)
    a = _visible(await in_thread(rt.store.get_alert, alert_id), caller)
    muted = await in_thread(rt.engine.muted, [a], rt.store.now())
    mutings = await in_thread(rt.engine.mutings, [a]) if a.state != "resolved" else {}
    twins = await in_thread(rt.engine.twins, [a])
    out = _alert(a, rt.engine.base_url, mutings.get(a.fingerprint), twins.get(a.id or 0))
    out["muted_by"] = muted.get(a.fingerprint)
    return out


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, tags=["alerts"])
async def acknowledge(alert_id: Id, request: Request, caller: Engineer) -> dict[str, Any]:
    """Acknowledge a firing alert (records who and when; PagerDuty gets ``acknowledge``)."""
    rt = alerting_runtime(request)
    _visible(await in_thread(rt.store.get_alert, alert_id), caller)
    a = await in_thread(rt.engine.acknowledge, alert_id, caller.actor)
    return _alert(a, rt.engine.base_url)


# ---------------------------------------------------------------------------- silences
class MatcherIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=1024)
    op: Literal["=", "!=", "=~", "!~"] = "="


class SilenceIn(BaseModel):
    matchers: list[MatcherIn] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=2000)
    ends_at: AwareWhen = Field(description="In the future, after starts_at.")
    starts_at: AwareWhen | None = Field(None, description="Default: now.")


@router.get("/silences", response_model=list_of(SilenceViewOut), tags=["silences"])
async def list_silences(
    request: Request, caller: SharedViewer, expired: bool = False
) -> list[dict[str, Any]]:
    """Silences (active ones unless ``expired=true``) with the alerts each mutes now."""
    rt = alerting_runtime(request)
    views = await in_thread(rt.engine.silences, expired)
    return [silence_view(v, rt.engine.base_url) for v in views]


@router.post("/silences", status_code=201, response_model=SilenceOut, tags=["silences"])
async def create_silence(
    body: SilenceIn, request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    rt = alerting_runtime(request)
    now = rt.store.now()
    starts = body.starts_at or now
    if body.ends_at <= max(starts, now):
        raise ValidationFailed(
            f"ends_at: {body.ends_at.isoformat()} must be in the future and after starts_at "
            f"({starts.isoformat()}); a silence that already ended would mute nothing"
        )
    rec = await in_thread(
        rt.engine.silence,
        [m.model_dump() for m in body.matchers],
        body.reason,
        caller.actor,
        body.ends_at,
        body.starts_at,
    )
    return jsonable(asdict(rec))


@router.delete("/silences/{silence_id}", response_model=SilenceOut, tags=["silences"])
async def expire_silence(
    silence_id: Id, request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    """Expire a silence now."""
    rt = alerting_runtime(request)
    return jsonable(asdict(await in_thread(rt.engine.expire_silence, silence_id, caller.actor)))


# ------------------------------------------------------------- channels, deliveries
# in monitor/api/routes_channels.py; included here so the routes keep their place
router.include_router(routes_channels.router)


# ---------------------------------------------------------------------------- rules
class BacktestIn(BaseModel):
    start: AwareWhen = Field(alias="from")
    end: AwareWhen = Field(alias="to", description="At most max_range_days after from.")


def _rule_out(rec: Any) -> dict[str, Any]:
    return jsonable(asdict(rec))


@router.get("/rules", response_model=list_of(RuleOut), tags=["rules"])
async def list_rules(request: Request, caller: SharedViewer) -> list[dict[str, Any]]:
    return [_rule_out(r) for r in await in_thread(alerting_runtime(request).store.list_rules)]


@router.post("/rules", status_code=201, response_model=RuleOut, tags=["rules"])
async def create_rule(
    body: dict[str, Any], request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    """Create or replace a rule from its JSON form (the YAML of ``driftwatch apply``)."""
    rt = alerting_runtime(request)
    if not isinstance(body, dict):
        raise ValidationFailed("a rule must be a JSON object")
    rule = await in_thread(rt.engine.put_rule, body, caller.actor)
    return _rule_out(await in_thread(rt.store.get_rule, rule.name))


@router.get("/rules/{rule}", response_model=RuleOut, tags=["rules"])
async def get_rule(rule: str, request: Request, caller: SharedViewer) -> dict[str, Any]:
    rec = await in_thread(alerting_runtime(request).store.get_rule, rule)
    if rec is None:
        raise NotFoundError(f"alert rule {rule!r} not found")
    return _rule_out(rec)


@router.put("/rules/{rule}", response_model=RuleOut, tags=["rules"])
async def put_rule(
    rule: str, body: dict[str, Any], request: Request, caller: SharedEngineer
) -> dict[str, Any]:
    rt = alerting_runtime(request)
    if not isinstance(body, dict):
        raise ValidationFailed("a rule must be a JSON object")
    if body.get("name", rule) != rule:
        raise ValidationFailed(f"body name {body.get('name')!r} differs from the URL's {rule!r}")
    await in_thread(rt.engine.put_rule, {**body, "name": rule}, caller.actor)
    return _rule_out(await in_thread(rt.store.get_rule, rule))


@router.delete("/rules/{rule}", response_model=StatusOut, tags=["rules"])
async def delete_rule(rule: str, request: Request, caller: SharedEngineer) -> dict[str, str]:
    await in_thread(alerting_runtime(request).store.delete_rule, rule, caller.actor)
    return {"status": "deleted"}


@router.post("/rules/{rule}/backtest", response_model=BacktestOut, tags=["rules"])
async def backtest_rule(
    rule: str, body: BacktestIn, request: Request, caller: SharedViewer
) -> dict[str, Any]:
    """Replay the rule over stored results in ``[from, to)``: the alerts it would have fired.
    Nothing is stored and nobody is notified."""
    check_range(
        body.start, body.end, request.app.state.settings.max_range_days, fields=("from", "to")
    )
    report = await in_thread(alerting_runtime(request).backtest, rule, body.start, body.end)
    return report.to_dict()


# ---------------------------------------------------------------------------- metrics
def _service_families(c: Components) -> list[Family]:
    services = c.services
    counters = dict(services.counters)
    # log-store writes: appends that stored rows, and the commits that stored them (with
    # group commit several appends share one; appends / commits is the group size)
    stats = services.logstore.commit_stats()
    counters["ingest_appends"] = stats["appends"]
    counters["ingest_commits"] = stats["commits"]
    fams = [
        Family(
            f"driftwatch_{name}_total",
            f"{name.replace('_', ' ').capitalize()} since the process started.",
            "counter",
            [(f"driftwatch_{name}_total", {}, float(value))],
        )
        for name, value in sorted(counters.items())
    ]
    return fams + c.alerting.metric_families() + c.health()


@router.get("/metrics", response_class=PlainTextResponse, tags=["health"])
async def metrics(request: Request) -> PlainTextResponse:
    """Driftwatch's metrics in the Prometheus text format (scrape without a key): its own
    operation (alerts, deliveries, ingest, runs) and model health (the newest value,
    threshold and status of every monitor metric and KPI per tenant, within the bounds of
    the ``metrics_max_*`` settings; ``monitor.health_metrics``)."""
    c = components(request)
    text = await run_in_threadpool(lambda: REGISTRY.render(_service_families(c)))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
