"""``driftwatch quarantine list``: the rejected rows of a model, or the rejected business events.

Works on the local data dir (the server must not be running: it owns the DuckDB file) or, with
``--url`` and ``--api-key``, through ``GET /api/v1/models/{m}/quarantine`` and ``GET
/api/v1/events/quarantine``: one backend interface, ``monitor.quarantine_backend``. What the quarantine holds is docs/ingest.md, "The quarantine".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from monitor.cli_common import (
    ApiKey,
    DataDir,
    Url,
    api_client,
    check_response,
    fail,
    one_line,
    open_services,
    settings_for,
)
from monitor.errors import DriftwatchError
from monitor.quarantine_backend import HttpQuarantine, LocalQuarantine, QuarantineBackend

__all__ = ["quarantine_app"]

quarantine_app = typer.Typer(
    help="Rejected rows and events, with the field and the reason.", no_args_is_help=True
)
out = Console(soft_wrap=True)

MAX_LIMIT = 10_000  # the API's bound on ?limit=


@contextmanager
def _backend(
    url: str | None, api_key: str | None, data_dir: Path | None
) -> Iterator[QuarantineBackend]:
    """The server's API with ``--url``, else the local data dir (``monitor.quarantine_backend``);
    an error of the service ends the command with one line, exit 1."""
    if url:
        with api_client(url, api_key) as c:
            yield HttpQuarantine(c, check_response)
        return
    services = open_services(settings_for(data_dir))
    try:
        yield LocalQuarantine(services)
    except DriftwatchError as exc:
        raise fail(exc.message) from exc
    finally:
        services.close()


def _when(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return "?"


def line(row: dict[str, Any]) -> str:
    """One quarantined row: when it was received, its tenant, kind, row and reason. A row
    rule's reason starts with its field already ("age: expected a number, ..."): the field is
    named once, not twice ("age: age: ...")."""
    where = f"row {row['row_index']}" if row.get("row_index") is not None else "row ?"
    field = row.get("field")
    reason = one_line(str(row.get("reason") or "(no reason)"), 300)
    named = not field or reason.startswith(f"{field}:")
    return (
        f"{_when(row.get('received_at'))}  tenant {row.get('tenant_id') or '-'}  "
        f"{row.get('kind') or '?'} {where}: " + (reason if named else f"{field}: {reason}")
    )


@quarantine_app.command("list")
def quarantine_list(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model whose rejected inferences/labels/references."),
    ] = None,
    events: Annotated[bool, typer.Option("--events", help="Rejected business events.")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's rows.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many rows.")
    ] = 100,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """List rejected rows, oldest first: when each was received, its tenant, kind, row index
    in its batch, the field and the reason (--model M or --events)."""
    if (model is None) == (not events):
        raise fail("name exactly one of --model M or --events", 2)
    with _backend(url, api_key, data_dir) as backend:
        rows = backend.rows(model, tenant, limit)
    what = f"model {model}" if model else "business events"
    if not rows:
        out.print(
            escape(f"no quarantined rows for {what}" + (f", tenant {tenant}" if tenant else ""))
        )
        return
    for r in rows:
        out.print(escape(line(r)), highlight=False)
    more = f" (the first {limit}; --limit N shows more)" if len(rows) >= limit else ""
    out.print(escape(f"{len(rows):,} quarantined rows for {what}{more}"), highlight=False)
