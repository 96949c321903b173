"""CLI commands for monitors: ``apply``, ``init``, ``run``, ``backfill``.

Each works on the local data dir (the server must not be running: it owns the DuckDB file) or,
with ``--url`` and ``--api-key``, through a running server's API.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.cli_common import (
    ApiKey,
    DataDir,
    Url,
    check_response,
    check_span,
    follow_job,
    open_backend,
    parse_when,
    print_changes,
)
from monitor.monitor_backend import HttpMonitors, LocalMonitors, MonitorBackend
from monitor.settings import load_settings

if TYPE_CHECKING:
    from monitor.service import Services

__all__ = ["register"]

err = Console(stderr=True)
out = Console()


def _backend(
    url: str | None, api_key: str | None, data_dir: Path | None
) -> AbstractContextManager[MonitorBackend]:
    """The monitor backend of a command (``monitor.monitor_backend``; :func:`open_backend`)."""
    return open_backend(
        url, api_key, data_dir, lambda c: HttpMonitors(c, check_response, follow_job), _local, err
    )


def _local(services: Services) -> MonitorBackend:
    from monitor.composition import of

    return LocalMonitors(of(services).monitors)


def _load_monitors(path: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text()) or {}
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        raise typer.BadParameter(f"{path}: expected a mapping with a 'monitors' list")
    items = doc.get("monitors", [])
    if not isinstance(items, list):
        raise typer.BadParameter(f"{path}: 'monitors' must be a list")
    return items


def apply(
    file: Annotated[Path, typer.Option("-f", "--file", exists=True, dir_okay=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the changes.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Create or update the monitors of a YAML file by name (--dry-run: show the diff).

    The file's `kpis:` section goes to the KPIs and its `rules:` section (what
    `driftwatch init` proposes) to the alert rules.
    """
    items = _load_monitors(file)
    with _backend(url, api_key, data_dir) as backend:
        changes = backend.apply(items, dry_run)
    print_changes(out, "monitor", changes, dry_run)
    from monitor.cli_kpis import apply_kpis_section  # the file's kpis: section (issue 5)

    apply_kpis_section(file, dry_run, url, api_key, data_dir)
    from monitor.cli_alerts import apply_rules_section  # the file's rules: section (issue 6)

    apply_rules_section(file, dry_run, url, api_key, data_dir)


def init(
    model: Annotated[str, typer.Argument(help="A registered model.")],
    reference: Annotated[
        str | None, typer.Option(help="Reference dataset (default: the model's latest).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the YAML here (default stdout).")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Propose default monitors (and alert rules) for a model as a YAML file for `apply`."""
    with _backend(url, api_key, data_dir) as backend:
        doc = backend.propose(model, reference)
    text = yaml.safe_dump(doc, sort_keys=False)
    silent = [r["name"] for r in doc.get("rules", []) if not r.get("channels")]
    note = ""
    if silent:
        note = (
            f"note: rules without channels alert without notifying anyone: {', '.join(silent)}. "
            "Add channel names to their `channels:` (see `driftwatch channels list`); "
            "rules that exist keep their channels."
        )
        text = f"# {note}\n{text}"  # in the file too, where the channels are edited
    if output:
        output.write_text(text)
        err.print(f"wrote {output} ({len(doc.get('monitors', []))} monitors)")
        if note:
            err.print(escape(note))
    else:
        typer.echo(text, nl=False)  # plain: rich would wrap long lines and break the YAML


def run(
    monitor: Annotated[str, typer.Option("--monitor", "-m", help="Monitor name.")],
    window: Annotated[str, typer.Option(help="Any time inside the window (ISO).")],
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Evaluate one window of a monitor now (its results replace the stored ones)."""
    ts = parse_when(window)
    with _backend(url, api_key, data_dir) as backend:
        r = backend.run(monitor, ts)
    typer.echo(json.dumps(r, default=str))
    if r["status"] != "ok":
        raise typer.Exit(1)


def backfill(
    start: Annotated[str, typer.Option("--from", help="First day (ISO, UTC).")],
    end: Annotated[str, typer.Option("--to", help="End, exclusive (ISO, UTC).")],
    monitor: Annotated[
        list[str] | None,
        typer.Option("--monitor", "-m", help="Monitor(s) to backfill (repeatable)."),
    ] = None,
    all_monitors: Annotated[
        bool, typer.Option("--all", help="Backfill every monitor of every model.")
    ] = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Evaluate every window in [--from, --to) of the monitors named with --monitor (or all).

    Oldest first, with a progress bar. Results replace the stored ones; the alert engine is
    told it is a backfill."""
    lo, hi = parse_when(start), parse_when(end)
    limit = load_settings(data_dir=data_dir).max_backfill_days
    check_span(lo, hi, limit, "max_backfill_days")
    if bool(monitor) == all_monitors:
        # re-running every monitor of every model by accident is expensive: say which
        raise typer.BadParameter(
            "name the monitors to backfill with --monitor NAME (repeatable), or pass --all "
            "for every monitor"
            if not monitor
            else "--monitor and --all exclude each other",
            param_hint="--monitor / --all",
        )
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    )
    with _backend(url, api_key, data_dir) as backend:
        failed = backend.backfill(monitor, lo, hi, progress)
    if failed:
        err.print(f"[yellow]{failed} window(s) failed; see `GET /api/v1/runs?status=error`[/]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the monitor commands to the main CLI."""
    app.command("apply")(apply)
    app.command("init")(init)
    app.command("run")(run)
    app.command("backfill")(backfill)
