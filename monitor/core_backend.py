"""What ``models register``, ``references upload``, ``ingest`` and ``profile`` need, behind one
interface: the local data dir or a server's API (through the Python client, ``monitor.client``). Both answer the same
values, so each command is written once against :class:`CoreBackend` (``monitor.cli``), as the
alerting, KPI and monitor commands are against their backends.

- :class:`HttpCore`: a running server (``--url``, ``--api-key``); its errors are the client's
  ``ClientError`` (and httpx's transport errors for a wrong URL).
- :class:`LocalCore`: the services of the local data dir (the server must not be running: it
  owns the DuckDB file); its errors are ``DriftwatchError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from monitor.lake_job import ProfileTarget

__all__ = ["CoreBackend", "HttpCore", "LocalCore"]


class CoreBackend(Protocol):
    def register_model(self, spec: Any) -> None: ...
    def put_reference(self, model: str, name: str, table: Any) -> dict[str, Any]: ...
    def check_model(self, model: str) -> None: ...
    def ingest(self, model: str, kind: str, rows: Any, table: Any) -> dict[str, Any]: ...
    def profile_target(self) -> ProfileTarget:
        """Where a lake-mode model's profiling job gets its spec and hands its profiles
        (``monitor.lake_job``)."""
        ...


class HttpCore:
    """The API through the Python client (``client``: a ``monitor.client.Client``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def register_model(self, spec: Any) -> None:
        self.client.register_model(spec.model_dump())

    def put_reference(self, model: str, name: str, table: Any) -> dict[str, Any]:
        answer = self.client.upload_reference(model, name, table)
        # the rows' errors stay on the server (listed by `quarantine list`), as before
        return {
            "version": answer["version"],
            "rows": answer["rows"],
            "rejected": int(answer.get("rejected") or 0),
            "errors": [],
        }

    def check_model(self, model: str) -> None:
        pass  # the server checks it with the first batch

    def ingest(self, model: str, kind: str, rows: Any, table: Any) -> dict[str, Any]:
        """One batch (an Arrow ``table`` or a list of ``rows``) of ``kind``; the client sends
        it as one request when the client's ``batch_rows`` is unbounded (``monitor.cli``)."""
        data = table if table is not None else rows or []
        if kind == "inferences":
            totals = self.client.log_inferences(model, data)
        elif kind == "labels":
            totals = self.client.log_labels(model, data)
        else:
            totals = self.client.log_events(data)
        return {
            "received": totals.received,
            "accepted": totals.accepted,
            "duplicates": totals.duplicates,
            "rejected": totals.rejected,
            "errors": totals.errors,
        }

    def profile_target(self) -> ProfileTarget:
        from monitor.lake_job import HttpTarget

        return HttpTarget(self.client)


class LocalCore:
    """The services of the local data dir (``services``: ``monitor.service.Services``)."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def register_model(self, spec: Any) -> None:
        from monitor.service import Caller

        self.services.register_model(spec, Caller.local())

    def put_reference(self, model: str, name: str, table: Any) -> dict[str, Any]:
        from monitor.ingest import ParsedBody
        from monitor.service import Caller

        version, summary = self.services.put_reference(
            model, name, ParsedBody(table=table), Caller.local()
        )
        return {
            "version": version,
            "rows": summary.accepted,
            "rejected": summary.rejected,
            "errors": [
                {"row": e.row, "field": e.field, "reason": e.reason} for e in summary.errors[:20]
            ],
        }

    def check_model(self, model: str) -> None:
        self.services.get_model(model)

    def ingest(self, model: str, kind: str, rows: Any, table: Any) -> dict[str, Any]:
        from monitor.ingest import ParsedBody
        from monitor.service import Caller

        parsed = ParsedBody(rows=rows, table=table)
        caller = Caller.local()
        if kind == "inferences":
            s = self.services.ingest_inferences(model, parsed, caller)
        elif kind == "labels":
            s = self.services.ingest_labels(model, parsed, caller)
        else:
            s = self.services.ingest_events(parsed, caller)
        return {
            "received": s.received,
            "accepted": s.accepted,
            "duplicates": s.duplicates,
            "rejected": s.rejected,
            "errors": [{"row": e.row, "field": e.field, "reason": e.reason} for e in s.errors[:20]],
        }

    def profile_target(self) -> ProfileTarget:
        from monitor.lake_job import LocalTarget

        return LocalTarget(self.services)
