"""``driftwatch lake ...``: move a model's logs from the embedded store into a Parquet lake.

The lake's layout (version, partitions, columns, promises) is ``storage.lake``'s docstring and
docs/scale-out.md. The command reads the local DuckDB file, so ``driftwatch serve`` must not hold
it (stop the server, or export from a copy of the data dir).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.cli_common import DataDir, fail
from monitor.settings import load_settings

if TYPE_CHECKING:
    from storage.lake import Partition

lake_app = typer.Typer(
    help="Parquet lake: export logs for other profile engines.", no_args_is_help=True
)
out = Console(soft_wrap=True)


@lake_app.command("export")
def lake_export(
    lake: Annotated[
        Path, typer.Option("--lake", help="Lake folder (created; layout version checked).")
    ],
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model whose inferences and labels to export (repeat)."),
    ] = None,
    events: Annotated[
        bool, typer.Option("--events", help="Also export every business event.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Write a model's logs from the embedded store into the lake, one Parquet file per
    (kind, model, UTC date), Hive-partitioned (model=<name>/date=<YYYY-MM-DD>). Re-running
    replaces each partition's file whole: idempotent."""
    # DuckDB loads on first use: `driftwatch --help` stays fast (tests/test_cli.py)
    from storage.lake import LakeError, export
    from storage.lake_mirror import LakeMirror
    from storage.logstore import LogStore, LogStoreError, UnknownModelError

    models = list(model or [])
    if not models and not events:
        raise fail("nothing to export: name --model M (repeatable) and/or --events", 2)
    settings = load_settings(data_dir=data_dir)
    try:
        ls = LogStore(settings.duckdb_path, memory_limit=settings.duckdb_memory_limit)
    except LogStoreError as exc:
        raise fail(
            f"{exc} (is `driftwatch serve` running? stop it or export from a copy)", 2
        ) from exc
    except Exception as exc:  # DuckDB's own lock error when another process holds the file
        if "lock" in str(exc).lower():
            raise fail(
                f"{settings.duckdb_path} is in use by another process (is `driftwatch serve` "
                "running? stop it or export from a copy of the data dir)",
                2,
            ) from exc
        raise
    try:
        if settings.lake_dir is not None:  # the server's lake copy first: batches a crash left
            LakeMirror.open(ls, settings.lake_dir)
        known = set(ls.models())
        unknown = [m for m in models if m not in known]
        if unknown:
            raise fail(f"no logs for model(s) {unknown}: models with logs are {sorted(known)}", 2)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            disable=quiet,
            console=Console(stderr=True),
        )
        with progress:
            task = progress.add_task("export", total=None)

            def planned(parts: list[Partition]) -> None:
                progress.update(task, total=sum(p.rows for p in parts))

            def wrote(part: Partition, n: int) -> None:
                name = part.kind if part.model is None else f"{part.model} {part.kind}"
                progress.update(task, advance=n, description=f"{name} {part.day.isoformat()}")

            summary = export(ls, lake, models, events=events, on_plan=planned, on_rows=wrote)
    except (LakeError, UnknownModelError) as exc:
        raise fail(str(exc), 2) from exc
    finally:
        ls.close()
    for kind, n in summary.rows.items():
        if n or summary.files[kind]:
            out.print(f"{kind}: {n:,} rows in {summary.files[kind]:,} files")
    out.print(f"lake: {lake}")
