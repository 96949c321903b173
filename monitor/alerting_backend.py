"""What the alerting commands of the CLI need, behind one interface: the local data dir or a
server's API. Both answer the same JSON-ready values (the API's shapes), so each command is
written once against :class:`AlertingBackend` (``monitor.cli_alerts``).

- :class:`HttpAlerting`: a running server, through its API (``--url``, ``--api-key``).
- :class:`LocalAlerting`: the alerting runtime over the local metadata database only (the
  DuckDB file is not opened, so these commands work while a server runs on the same data
  dir); lower-layer errors map through ``monitor.errors.translate`` as in the API.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any, Protocol

from monitor.alert_views import jsonable, silence_view
from monitor.errors import DriftwatchError, translate
from monitor.http_backend import HttpRoutes

__all__ = ["AlertingBackend", "HttpAlerting", "LocalAlerting"]

Json = Any  # dicts and lists as the API answers them


class AlertingBackend(Protocol):
    def list_alerts(
        self,
        state: list[str] | None,
        rule: str | None,
        tenant: str | None,
        model: str | None,
        limit: int,
    ) -> list[Json]: ...
    def acknowledge(self, alert_id: int, actor: str) -> Json: ...
    def silence(
        self, matchers: list[dict[str, str]], reason: str, ends: datetime, actor: str
    ) -> Json: ...
    def silences(self, expired: bool) -> list[Json]: ...
    def expire_silence(self, silence_id: int, actor: str) -> None: ...
    def deliveries(self, status: list[str] | None) -> list[Json]: ...
    def retry_delivery(self, delivery_id: int, actor: str) -> None: ...
    def channels(self) -> list[Json]: ...
    def create_channel(self, body: dict[str, Any], actor: str) -> tuple[Json, str | None]: ...
    def test_channel(self, name: str) -> list[Json]: ...
    def rules(self) -> list[Json]: ...
    def rule_spec(self, name: str) -> dict[str, Any] | None: ...
    def put_rule(self, spec: dict[str, Any], actor: str) -> None: ...
    def backtest(self, rule: str, start: datetime, end: datetime) -> Json: ...


def _plain(obj: Any) -> Json:
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, list | tuple):
        return [_plain(o) for o in obj]
    return jsonable(obj)


class HttpAlerting(HttpRoutes):
    """The alerting routes of a server's API (``check`` ends the command on an error)."""

    def list_alerts(
        self,
        state: list[str] | None,
        rule: str | None,
        tenant: str | None,
        model: str | None,
        limit: int,
    ) -> list[Json]:
        params: dict[str, Any] = {"limit": limit}
        for k, v in (("rule", rule), ("tenant", tenant), ("model", model)):
            if v:
                params[k] = v
        if state:
            params["state"] = state
        return list(self._api("GET", "/alerts", params=params))

    def acknowledge(self, alert_id: int, actor: str) -> Json:
        return self._api("POST", f"/alerts/{alert_id}/ack")  # the key is the actor

    def silence(
        self, matchers: list[dict[str, str]], reason: str, ends: datetime, actor: str
    ) -> Json:
        body = {"matchers": matchers, "reason": reason, "ends_at": ends.isoformat()}
        return self._api("POST", "/silences", json=body)

    def silences(self, expired: bool) -> list[Json]:
        return list(self._api("GET", "/silences", params={"expired": expired}))

    def expire_silence(self, silence_id: int, actor: str) -> None:
        self._api("DELETE", f"/silences/{silence_id}")

    def deliveries(self, status: list[str] | None) -> list[Json]:
        return list(self._api("GET", "/deliveries", params={"status": status} if status else {}))

    def retry_delivery(self, delivery_id: int, actor: str) -> None:
        self._api("POST", f"/deliveries/{delivery_id}/retry")

    def channels(self) -> list[Json]:
        return list(self._api("GET", "/channels"))

    def create_channel(self, body: dict[str, Any], actor: str) -> tuple[Json, str | None]:
        rec = self._api("POST", "/channels", json=body)
        return rec, rec.get("signing_secret")

    def test_channel(self, name: str) -> list[Json]:
        return list(self._api("POST", f"/channels/{name}/test"))

    def rules(self) -> list[Json]:
        return list(self._api("GET", "/rules"))

    def rule_spec(self, name: str) -> dict[str, Any] | None:
        r = self.client.get(f"/rules/{name}")
        return None if r.status_code == 404 else self.check(r).get("spec")

    def put_rule(self, spec: dict[str, Any], actor: str) -> None:
        self._api("POST", "/rules", json=spec)

    def backtest(self, rule: str, start: datetime, end: datetime) -> Json:
        body = {"from": start.isoformat(), "to": end.isoformat()}
        return self._api("POST", f"/rules/{rule}/backtest", json=body)


class LocalAlerting:
    """The alerting runtime of the local data dir (``runtime``: a ``monitor.alerting``
    ``AlertingRuntime``); errors of the layers below are translated to the service's."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    @staticmethod
    def _call(fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except DriftwatchError:
            raise
        except Exception as exc:  # a lower layer's error: the one mapping the API uses
            mapped = translate(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def list_alerts(
        self,
        state: list[str] | None,
        rule: str | None,
        tenant: str | None,
        model: str | None,
        limit: int,
    ) -> list[Json]:
        found = self._call(
            self.runtime.store.list_alerts,
            state=state or None,
            rule=rule,
            tenant_id=tenant,
            model=model,
            limit=limit,
        )
        return list(_plain(found))

    def acknowledge(self, alert_id: int, actor: str) -> Json:
        return _plain(self._call(self.runtime.engine.acknowledge, alert_id, actor))

    def silence(
        self, matchers: list[dict[str, str]], reason: str, ends: datetime, actor: str
    ) -> Json:
        return _plain(self._call(self.runtime.engine.silence, matchers, reason, actor, ends))

    def silences(self, expired: bool) -> list[Json]:
        base = self.runtime.engine.base_url
        return [silence_view(v, base) for v in self._call(self.runtime.engine.silences, expired)]

    def expire_silence(self, silence_id: int, actor: str) -> None:
        self._call(self.runtime.engine.expire_silence, silence_id, actor)

    def deliveries(self, status: list[str] | None) -> list[Json]:
        found = self._call(
            self.runtime.store.list_deliveries, status=status or None, with_attempts=True
        )
        return list(_plain(found))

    def retry_delivery(self, delivery_id: int, actor: str) -> None:
        self._call(self.runtime.store.retry_delivery, delivery_id, actor)

    def channels(self) -> list[Json]:
        return list(_plain(self._call(self.runtime.store.list_channels)))

    def create_channel(self, body: dict[str, Any], actor: str) -> tuple[Json, str | None]:
        rec, secret = self._call(
            self.runtime.engine.create_channel,
            body["name"],
            body["kind"],
            body["url"],
            signing_secret=body.get("signing_secret"),
            routing_key=body.get("routing_key"),
            actor=actor,
        )
        return _plain(rec), secret

    def test_channel(self, name: str) -> list[Json]:
        return list(_plain(self._call(self.runtime.engine.test_channel, name)))

    def rules(self) -> list[Json]:
        return list(_plain(self._call(self.runtime.store.list_rules)))

    def rule_spec(self, name: str) -> dict[str, Any] | None:
        rec = self.runtime.store.get_rule(name)
        return None if rec is None else dict(rec.spec)

    def put_rule(self, spec: dict[str, Any], actor: str) -> None:
        self._call(self.runtime.engine.put_rule, spec, actor)

    def backtest(self, rule: str, start: datetime, end: datetime) -> Json:
        return self._call(self.runtime.backtest, rule, start, end).to_dict()
