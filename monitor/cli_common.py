"""Options and helpers every ``driftwatch`` command module shares (local data dir or ``--url``).

Errors talking to a server end a command with one line on stderr and exit code 1, never a
traceback: :func:`check_response` for answers the server gave (its error message, or what a
server that is not Driftwatch answered), :func:`network_error_line` for a server that could
not be reached (``monitor.cli.main`` catches those for every command).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from monitor.errors import DriftwatchError
from monitor.settings import Settings, load_settings
from storage.types import leaf_diff

if TYPE_CHECKING:
    from monitor.core_backend import CoreBackend
    from monitor.service import Services
    from storage.metadata import MetadataStore

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

B = TypeVar("B")  # a command's backend (local or over HTTP)


def settings_for(data_dir: Path | None = None, **more: Any) -> Settings:
    """The settings of a local command (``--data-dir`` over the environment). An invalid one
    is one line naming its variable and the problem (exit 2), not a traceback."""
    from pydantic import ValidationError

    try:
        return load_settings(data_dir=data_dir, **more)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = "".join(str(part) for part in e["loc"][:1])
            where = f"DRIFTWATCH_{loc.upper()}: " if loc else ""
            problems.append(where + str(e["msg"]).removeprefix("Value error, "))
        Console(stderr=True, soft_wrap=True).print(
            "[red]error:[/] invalid setting: " + escape("; ".join(problems))
        )
        raise typer.Exit(2) from None


def data_dir_error(settings: Settings, exc: OSError) -> typer.Exit:
    """One line (exit 2) for a data dir that cannot be opened: not a folder, not writable, a
    missing parent mount... naming the path the operating system refused and why."""
    where = exc.filename or settings.data_dir
    Console(stderr=True, soft_wrap=True).print(
        f"[red]error:[/] cannot open the data dir {escape(str(settings.data_dir))}: "
        f"{escape(exc.strerror or type(exc).__name__)}: {escape(str(where))} (--data-dir or "
        "DRIFTWATCH_DATA_DIR must name a folder this user can write)"
    )
    return typer.Exit(2)


def open_services(settings: Settings) -> Services:
    """Open the local stores (what local mode works on); a DuckDB file held by a running
    server ends the command with one line (exit 2) that says to use ``--url``, and so does a
    data dir that cannot be opened."""
    from monitor.service import Services

    try:
        return Services.open(settings)
    except OSError as exc:
        raise data_dir_error(settings, exc) from exc
    except Exception as exc:  # the usual cause: the server holds the DuckDB file
        if "lock" in str(exc).lower() or "already open" in str(exc).lower():
            Console(stderr=True, soft_wrap=True).print(
                f"[red]error:[/] {settings.duckdb_path} is in use by another process "
                "(is `driftwatch serve` running?). Send data through --url instead."
            )
            raise typer.Exit(2) from exc
        raise


def open_metadata(settings: Settings) -> MetadataStore:
    """Only the metadata store (migrated): for commands that never touch the log store, so they
    also work while a server holds the DuckDB file."""
    from storage.metadata import MetadataStore
    from storage.private import private_dir

    try:
        private_dir(settings.data_dir)
        store = MetadataStore(settings.metadata_url)
        store.upgrade()
    except OSError as exc:
        raise data_dir_error(settings, exc) from exc
    return store


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


# How every HTTP client of the CLI reaches ``--url``: ``None`` is the network. Tests set it to
# the API app in process (``tests.support.AppTransport``) to run ``--url`` commands without a
# server; nothing else changes it.
TRANSPORT: httpx.BaseTransport | None = None


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
        transport=TRANSPORT,
    )


@contextmanager
def open_core(url: str | None, api_key: str | None, data_dir: Path | None) -> Iterator[CoreBackend]:
    """The backend of ``models register``, ``references upload``, ``ingest`` and ``profile``:
    the server's API (the Python client) with ``--url``, else the local data dir
    (``monitor.core_backend``). ``--url`` without a key ends the command, exit 2."""
    from monitor.core_backend import HttpCore, LocalCore

    if url:
        from monitor.client import Client

        if not api_key:
            Console(stderr=True, soft_wrap=True).print(
                "[red]error:[/] --url needs --api-key (or DRIFTWATCH_API_KEY)"
            )
            raise typer.Exit(2)
        # one request per ingest chunk (the client's batching: repeated text dictionary-encoded,
        # a body over 48 MiB halved), so a chunk of DuckDB's row-group size is one append
        with Client(url, api_key, batch_rows=1 << 62, transport=TRANSPORT) as client:
            yield HttpCore(client)
        return
    services = open_services(settings_for(data_dir))
    try:
        yield LocalCore(services)
    finally:
        services.close()


@contextmanager
def service_errors(err: Console) -> Iterator[None]:
    """An error of the service (:class:`DriftwatchError`) ends the command with one line on
    ``err``, exit 1."""
    try:
        yield
    except DriftwatchError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(1) from exc


@contextmanager
def open_backend(
    url: str | None,
    api_key: str | None,
    data_dir: Path | None,
    http: Callable[[httpx.Client], B],
    local: Callable[[Services], B],
    err: Console,
) -> Iterator[B]:
    """A command's backend: ``http`` over the server's API with ``--url``, else ``local`` over
    the local data dir; an error of the service ends the command (:func:`service_errors`)."""
    if url:
        with api_client(url, api_key) as c, service_errors(err):
            yield http(c)
        return
    services = open_services(settings_for(data_dir))
    try:
        with service_errors(err):
            yield local(services)
    finally:
        services.close()


def follow_job(client: httpx.Client, job: dict, progress: Any, label: str) -> dict:
    """Show a server job's progress until it ends; Ctrl-C cancels it (``DELETE``) and exits
    with 130. Returns the finished job."""
    import time

    task = progress.add_task(label, total=max(1, int(job.get("total") or 1)))
    try:
        while job["state"] in ("queued", "running"):
            time.sleep(0.5)
            job = check_response(client.get(f"/jobs/{job['id']}"))
            progress.update(task, completed=job["done"], total=max(1, job["total"]))
    except KeyboardInterrupt:
        client.delete(f"/jobs/{job['id']}")
        Console(stderr=True).print(f"[yellow]job {job['id']} cancelled[/]")
        raise typer.Exit(130) from None
    return job


def stamp(value: datetime | None) -> str:
    """A time as the CLI's tables print it (minutes, no zone), ``-`` for none."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line (whitespace collapsed), clipped to ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` (one line, markup escaped) on stderr; raise what returns."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/] {escape(one_line(message, 400))}")
    return typer.Exit(code)


def check_response(r: httpx.Response) -> Any:
    """The JSON of a Driftwatch API answer; any other answer ends the command with one line.

    An HTTP error names the status and the API's message; an answer that is not JSON (a
    wrong ``--url``: another web server, a proxy's error page) says so instead of printing
    the page.
    """
    is_json = "json" in r.headers.get("content-type", "")
    if r.status_code >= 400:
        message = ""
        if is_json:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text
        elif r.content:
            message = f"{r.url} is not a Driftwatch API (check --url)"
        raise fail(f"HTTP {r.status_code} {r.reason_phrase}: {message}".rstrip(": "))
    if not r.content:
        return None
    if not is_json:
        ctype = r.headers.get("content-type", "no content type")
        raise fail(f"{r.url} answered {ctype}, not the Driftwatch API's JSON (check --url)")
    return r.json()


def network_error_line(exc: httpx.TransportError) -> str:
    """One line for a server that could not be reached (refused, unknown host, timeout)."""
    try:
        where = f"{exc.request.url.scheme}://{exc.request.url.netloc.decode()}"
    except RuntimeError:  # no request attached
        where = "the server"
    reason = one_line(str(exc) or type(exc).__name__)
    return f"cannot reach {where}: {reason} (check --url / DRIFTWATCH_URL)"


def print_changes(
    console: Console, kind: str, changes: Sequence[Mapping[str, Any]], dry_run: bool
) -> None:
    """What ``apply`` did (or, with ``--dry-run``, would do) to each object of a file, with
    the diff of every change: ``path: old -> new`` per changed field of an update, ``+ path:
    value`` per field of a creation. ``changes`` are ``{"name", "action", "diff"}`` with
    ``diff`` the leaf diff (update) or the new object (create)."""
    for c in changes:
        action = c["action"]
        verb = "would " if dry_run and action != "unchanged" else ""
        color = {"create": "green", "update": "yellow"}.get(action, "dim")
        label = f"{kind} {c['name']}".strip()
        console.print(f"[{color}]{verb}{action}[/] {escape(label)}")
        diff = c.get("diff") or {}
        if action == "update":
            for path, (old, new) in diff.items():
                line = f"    {path}: {json.dumps(old)} -> {json.dumps(new)}"
                console.print(escape(line), highlight=False)
        elif action == "create" and dry_run:
            for path, (_none, new) in leaf_diff({}, diff).items():
                console.print(escape(f"    + {path}: {json.dumps(new)}"), highlight=False)
