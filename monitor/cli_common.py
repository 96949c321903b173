"""Options and helpers every ``driftwatch`` command module shares (local data dir or ``--url``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

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
    from monitor.errors import ValidationFailed
    from monitor.limits import check_when

    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO date or datetime") from exc
    try:
        return check_when(ts, value)
    except ValidationFailed as exc:
        raise typer.BadParameter(exc.message) from exc


def check_span(start: datetime, end: datetime, max_days: int, setting: str) -> None:
    """``--to`` after ``--from`` and the range within the ``setting`` limit (exit 2 if not)."""
    from monitor.errors import ValidationFailed
    from monitor.limits import check_range

    try:
        check_range(start, end, max_days, fields=("--from", "--to"), setting=setting)
    except ValidationFailed as exc:
        raise typer.BadParameter(exc.message) from exc


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


def follow_job(client: httpx.Client, job: dict, progress: Any, label: str) -> dict:
    """Show a server job's progress until it ends; Ctrl-C cancels it (``DELETE``) and exits
    with 130. Returns the finished job."""
    import time

    task = progress.add_task(label, total=max(1, int(job.get("total") or 1)))
    try:
        while job["state"] in ("queued", "running"):
            time.sleep(0.5)
            r = client.get(f"/jobs/{job['id']}")
            r.raise_for_status()
            job = r.json()
            progress.update(task, completed=job["done"], total=max(1, job["total"]))
    except KeyboardInterrupt:
        client.delete(f"/jobs/{job['id']}")
        Console(stderr=True).print(f"[yellow]job {job['id']} cancelled[/]")
        raise typer.Exit(130) from None
    return job
