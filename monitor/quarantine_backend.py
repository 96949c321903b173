"""What ``driftwatch quarantine list`` needs, behind one interface: the local data dir or a
server's API. Both answer the quarantined rows as dicts with the API's fields (``received_at``
a datetime locally, its ISO text over HTTP; ``monitor.cli_quarantine`` prints both alike), so
the command is written once against :class:`QuarantineBackend`, as the alerting, KPI and
monitor commands are against their backends.

- :class:`HttpQuarantine`: a running server (``GET /api/v1/models/{m}/quarantine``, ``GET
  /api/v1/events/quarantine``; a tenant-scoped key sees its tenant's rows only).
- :class:`LocalQuarantine`: the log store of the local data dir (the server must not be
  running: it owns the DuckDB file).

A failure the command reports is a ``DriftwatchError`` (its message is the one line printed).
"""

from __future__ import annotations

from typing import Any, Protocol

from monitor.http_backend import HttpRoutes

__all__ = ["HttpQuarantine", "LocalQuarantine", "QuarantineBackend"]


class QuarantineBackend(Protocol):
    def rows(self, model: str | None, tenant: str | None, limit: int) -> list[dict[str, Any]]:
        """The rejected rows of ``model`` (inferences, labels, references), or the rejected
        business events when ``model`` is None; oldest first, at most ``limit``."""
        ...


class HttpQuarantine(HttpRoutes):
    """The quarantine routes of a server's API."""

    def rows(self, model: str | None, tenant: str | None, limit: int) -> list[dict[str, Any]]:
        path = f"/models/{model}/quarantine" if model else "/events/quarantine"
        params: dict[str, Any] = {"limit": limit}
        if tenant is not None:
            params["tenant_id"] = tenant
        return list(self._api("GET", path, params=params))


class LocalQuarantine:
    """The quarantine of the local data dir (``services``: ``monitor.service.Services``)."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def rows(self, model: str | None, tenant: str | None, limit: int) -> list[dict[str, Any]]:
        if model is not None:
            self.services.get_model(model)  # an unknown model is an error, not an empty list
        table = self.services.logstore.read_quarantine(
            model, limit=limit, tenant_id=tenant, kind=None if model else "event"
        )
        return list(table.to_pylist())
