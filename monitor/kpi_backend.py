"""What the KPI commands of the CLI need, behind one interface: the local data dir or a
server's API. Both answer the same JSON-ready values (the API's shapes), so each command is
written once against :class:`KpiBackend` (``monitor.cli_kpis``), as the alerting commands are
against ``monitor.alerting_backend``.

- :class:`HttpKpis`: a running server, through its API (``--url``, ``--api-key``); a KPI's
  computation is a server job whose progress is followed.
- :class:`LocalKpis`: the KPI service over the local data dir (the server must not be running:
  it owns the DuckDB file).

A failure the command reports is a ``DriftwatchError`` (its message is the one line printed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import httpx

from monitor.errors import DriftwatchError
from monitor.http_backend import HttpRoutes

__all__ = ["HttpKpis", "KpiBackend", "LocalKpis"]

Json = Any  # dicts and lists as the API answers them


class KpiBackend(Protocol):
    def apply(self, items: list[dict[str, Any]], dry_run: bool) -> list[Json]: ...
    def kpis(self) -> list[Json]: ...
    def show(self, name: str, tenant: str | None) -> tuple[dict[str, Any], list[Json]]: ...
    def compute(
        self, names: list[str] | None, start: datetime, end: datetime, progress: Any
    ) -> int: ...


class HttpKpis(HttpRoutes):
    """The KPI routes of a server's API (``check`` ends the command on an error answer,
    ``follow`` shows a job's progress until it ends: ``monitor.cli_common``)."""

    def __init__(self, client: httpx.Client, check: Any, follow: Any) -> None:
        super().__init__(client, check)
        self.follow = follow

    def apply(self, items: list[dict[str, Any]], dry_run: bool) -> list[Json]:
        body = {"kpis": items, "dry_run": dry_run}
        return list(self._api("POST", "/kpis/apply", json=body)["changes"])

    def kpis(self) -> list[Json]:
        return list(self._api("GET", "/kpis"))

    def show(self, name: str, tenant: str | None) -> tuple[dict[str, Any], list[Json]]:
        spec = self._api("GET", f"/kpis/{name}")["definition"]
        series = (
            self._api("GET", f"/kpis/{name}/results", params={"tenant_id": tenant})
            if tenant
            else []
        )
        return spec, list(series)

    def compute(
        self, names: list[str] | None, start: datetime, end: datetime, progress: Any
    ) -> int:
        # each KPI is a job on the server (cancelled on Ctrl-C); we follow its progress
        rows = 0
        with progress:
            for n in names or [k["name"] for k in self.kpis()]:
                params = {"start": start.isoformat(), "end": end.isoformat()}
                job = self.follow(
                    self.client, self._api("POST", f"/kpis/{n}/compute", params=params), progress, n
                )
                if job["state"] != "done":
                    raise DriftwatchError(f"{n}: {job['state']}: {job['error']}")
                rows += int((job.get("result") or {}).get("results", 0))
        return rows


class LocalKpis:
    """The KPI service of the local data dir (``service``: a ``monitor.kpis.service``
    ``KpiService``)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def apply(self, items: list[dict[str, Any]], dry_run: bool) -> list[Json]:
        return [
            {"name": c.name, "action": c.action, "diff": c.diff}
            for c in self.service.apply(items, "cli", dry_run=dry_run)
        ]

    def kpis(self) -> list[Json]:
        return [
            {"name": r.name, "definition": r.spec, "version": r.version, "enabled": r.enabled}
            for r in self.service.list()
        ]

    def show(self, name: str, tenant: str | None) -> tuple[dict[str, Any], list[Json]]:
        rows = self.service.series(name, tenant) if tenant else []
        return self.service.get(name).spec, [
            {
                "window_start": r.window_start.isoformat(),
                "value": r.value,
                "status": r.status,
                "details": r.details,
            }
            for r in rows
        ]

    def compute(
        self, names: list[str] | None, start: datetime, end: datetime, progress: Any
    ) -> int:
        from monitor import windows as kinds
        from monitor.jobs import KPI_CHUNK_WINDOWS
        from monitor.kpis.compute import windows_between

        svc = self.service
        total = 0
        with progress:
            for n in names or [k.name for k in svc.list() if k.enabled]:
                d = svc.definition(n)
                windows = windows_between(start, end, d.window)
                task = progress.add_task(n, total=max(1, len(windows)))
                for i in range(0, len(windows), KPI_CHUNK_WINDOWS):
                    chunk = windows[i : i + KPI_CHUNK_WINDOWS]
                    stop = kinds.window(d.window).end(chunk[-1])
                    total += svc.compute(chunk[0], stop, [n], trigger="backfill")
                    progress.advance(task, len(chunk))
        return total
