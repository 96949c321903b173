"""CLI commands for tenant KPIs: ``driftwatch kpis list|show|compute`` and the ``kpis:``
section of ``driftwatch apply -f``.

Each works on the local data dir (the server must not be running: it owns the DuckDB file) or,
with ``--url`` and ``--api-key``, through a running server's API.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
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
from monitor.kpi_backend import HttpKpis, KpiBackend, LocalKpis
from monitor.settings import load_settings

if TYPE_CHECKING:
    from monitor.service import Services

__all__ = ["apply_kpis_section", "kpis_app", "load_kpis"]

kpis_app = typer.Typer(help="Tenant KPIs: list, show, compute (backfill).", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _backend(
    url: str | None, api_key: str | None, data_dir: Path | None
) -> AbstractContextManager[KpiBackend]:
    """The KPI backend of a command (``monitor.kpi_backend``; :func:`open_backend`)."""
    return open_backend(
        url, api_key, data_dir, lambda c: HttpKpis(c, check_response, follow_job), _local, err
    )


def _local(services: Services) -> KpiBackend:
    from monitor.composition import of

    # the composition root's KPI service: its breaches feed alerting, as the server's do
    return LocalKpis(of(services).kpis)


def load_kpis(path: Path) -> list[dict[str, Any]]:
    """The ``kpis:`` list of a YAML file (empty when the file has none)."""
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        return []
    items = doc.get("kpis", [])
    if not isinstance(items, list):
        raise typer.BadParameter(f"{path}: 'kpis' must be a list")
    return items


def apply_kpis_section(
    file: Path,
    dry_run: bool = False,
    url: str | None = None,
    api_key: str | None = None,
    data_dir: Path | None = None,
) -> None:
    """Create or update the KPIs of the file's ``kpis:`` section by name (``driftwatch apply``
    calls this after the monitors)."""
    items = load_kpis(file)
    if not items:
        return
    with _backend(url, api_key, data_dir) as b:
        changes = b.apply(items, dry_run)
    for c in changes:  # a creation's diff is {"new": spec}: show the spec's fields
        if c["action"] == "create" and set(c.get("diff") or {}) == {"new"}:
            c["diff"] = c["diff"]["new"]
    print_changes(out, "kpi", changes, dry_run)


@kpis_app.command("list")
def kpis_list(url: Url = None, api_key: ApiKey = None, data_dir: DataDir = None) -> None:
    """List KPI definitions."""
    with _backend(url, api_key, data_dir) as b:
        rows = [(k["name"], k["definition"], k["version"], k["enabled"]) for k in b.kpis()]
    # Plain tab-separated lines: readable, and never wrapped mid-formula by a narrow terminal.
    print("name\tformula\twindow\ttarget\tversion\tenabled")
    for name, spec, version, enabled in rows:
        target = spec.get("target")
        print(
            f"{name}\t{spec['formula']}\t{spec.get('window', 'day')}\t"
            f"{'' if target is None else target}\tv{version}\t{'yes' if enabled else 'no'}"
        )


@kpis_app.command("show")
def kpis_show(
    name: Annotated[str, typer.Argument(help="KPI name.")],
    tenant: Annotated[
        str | None, typer.Option(help="Also show this tenant's latest values.")
    ] = None,
    last: Annotated[int, typer.Option(help="How many recent windows to show.")] = 7,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Show a KPI's definition (YAML) and, with --tenant, its latest windows."""
    with _backend(url, api_key, data_dir) as b:
        spec, series = b.show(name, tenant)
    print(yaml.safe_dump(spec, sort_keys=False).rstrip())
    for r in series[-last:]:
        value = "" if r["value"] is None else f"{r['value']:.6g}"
        print(f"{r['window_start']}\t{value}\t{r['status']}\t{r['details'].get('message', '')}")


@kpis_app.command("compute")
def kpis_compute(
    start: Annotated[str, typer.Option("--from", help="First window (ISO date; UTC).")],
    end: Annotated[str, typer.Option("--to", help="End of the range, exclusive (ISO date).")],
    name: Annotated[
        list[str] | None, typer.Option("--kpi", help="Only these KPIs (repeat); default all.")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Compute (backfill) KPI windows in a range for all tenants, with a progress bar;
    re-running replaces."""
    a, b = parse_when(start), parse_when(end)
    check_span(a, b, load_settings(data_dir=data_dir).max_backfill_days, "max_backfill_days")
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    )
    with _backend(url, api_key, data_dir) as backend:
        rows = backend.compute(name, a, b, progress)
    out.print(f"computed {rows} KPI result rows for {a:%Y-%m-%d} .. {b:%Y-%m-%d}")
