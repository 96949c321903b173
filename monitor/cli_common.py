"""Options and helpers every ``driftwatch`` command module shares (local data dir or ``--url``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default $DRIFTWATCH_DATA_DIR or ./data)."),
]
Url = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="DRIFTWATCH_URL", help="Server URL; omit to use the local data dir."
    ),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="DRIFTWATCH_API_KEY", help="API key for --url.")
]


def parse_when(value: str) -> datetime:
    """ISO date or datetime from the command line; naive means UTC."""
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO date or datetime") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def api_client(url: str, api_key: str | None, timeout: float = 600) -> httpx.Client:
    """An HTTP client for ``/api/v1`` of ``url``; exits with code 2 without a key."""
    if not api_key:
        Console(stderr=True).print(
            "[red]error:[/] --api-key (or DRIFTWATCH_API_KEY) is required with --url"
        )
        raise typer.Exit(2)
    return httpx.Client(
        base_url=url.rstrip("/") + "/api/v1",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    )
