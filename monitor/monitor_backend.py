"""What the monitor commands of the CLI need (``apply``, ``init``, ``run``, ``backfill``),
behind one interface: the local data dir or a server's API. Both answer the same JSON-ready
values (the API's shapes), so each command is written once against :class:`MonitorBackend`
(``monitor.cli_monitors``), as the alerting commands are against ``monitor.alerting_backend``.

- :class:`HttpMonitors`: a running server, through its API (``--url``, ``--api-key``); a
  backfill is a server job whose progress is followed.
- :class:`LocalMonitors`: the monitor service of the local data dir (the server must not be
  running: it owns the DuckDB file).

A failure the command reports is a ``DriftwatchError`` (its message is the one line printed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import httpx

from monitor.errors import DriftwatchError
from monitor.http_backend import HttpRoutes

__all__ = ["HttpMonitors", "LocalMonitors", "MonitorBackend"]

Json = Any  # dicts and lists as the API answers them


class MonitorBackend(Protocol):
    def apply(self, items: list[dict[str, Any]], dry_run: bool) -> list[Json]: ...
    def propose(self, model: str, reference: str | None) -> dict[str, Any]: ...
    def run(self, monitor: str, at: datetime) -> dict[str, Any]: ...
    def backfill(
        self, names: list[str] | None, start: datetime, end: datetime, progress: Any
    ) -> int: ...


class HttpMonitors(HttpRoutes):
    """The monitor routes of a server's API (``check`` ends the command on an error answer,
    ``follow`` shows a job's progress until it ends: ``monitor.cli_common``)."""

    def __init__(self, client: httpx.Client, check: Any, follow: Any) -> None:
        super().__init__(client, check)
        self.follow = follow

    def apply(self, items: list[dict[str, Any]], dry_run: bool) -> list[Json]:
        body = {"monitors": items, "dry_run": dry_run}
        return list(self._api("POST", "/monitors/apply", json=body)["changes"])

    def propose(self, model: str, reference: str | None) -> dict[str, Any]:
        params = {"reference": reference} if reference else {}
        return dict(self._api("GET", f"/models/{model}/monitor-defaults", params=params))

    def run(self, monitor: str, at: datetime) -> dict[str, Any]:
        body = {"window_start": at.isoformat()}
        return dict(self._api("POST", f"/monitors/{monitor}/run", json=body))

    def backfill(
        self, names: list[str] | None, start: datetime, end: datetime, progress: Any
    ) -> int:
        # the server runs each backfill as a job (cancelled on Ctrl-C); we follow its progress
        failed = 0
        with progress:
            names = names or [m["name"] for m in self._api("GET", "/monitors")]
            body = {"start": start.isoformat(), "end": end.isoformat()}
            for name in names:
                job = self._api("POST", f"/monitors/{name}/backfill", json=body)
                job = self.follow(self.client, job, progress, name)
                if job["state"] != "done":
                    raise DriftwatchError(f"backfill of {name} {job['state']}: {job['error']}")
                failed += int((job.get("result") or {}).get("failed", 0))
        return failed


class LocalMonitors:
    """The monitor service of the local data dir (``service``: the composition's
    ``monitors``, a ``monitor.service`` monitor service)."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def apply(self, items: list[dict[str, Any]], dry_run: bool) -> list[Json]:
        return [
            {"name": c.name, "action": c.action, "diff": c.diff}
            for c in self.service.apply(items, "cli", dry_run=dry_run)
        ]

    def propose(self, model: str, reference: str | None) -> dict[str, Any]:
        return dict(self.service.propose(model, reference))

    def run(self, monitor: str, at: datetime) -> dict[str, Any]:
        s = self.service.run(monitor, at)
        return {
            "status": s.status,
            "results": s.results,
            "error": s.error,
            "window_start": s.window_start.isoformat(),
            "duration_s": s.duration_s,
        }

    def backfill(
        self, names: list[str] | None, start: datetime, end: datetime, progress: Any
    ) -> int:
        from monitor import windows

        svc = self.service
        failed = 0
        with progress:
            for name in names or [m.name for m in svc.list()]:
                kind = windows.window(svc.get(name).config.get("window", "day"))
                task = progress.add_task(name, total=max(1, kind.count(start, end)))

                def tick(summary: Any, task: Any = task) -> None:
                    nonlocal failed
                    failed += summary.status != "ok"
                    progress.advance(task)

                svc.backfill(name, start, end, tick)
        return failed
