"""``driftwatch models register|infer|list``, ``ingest`` and ``references upload``: the
commands that bring a model and its data in.

``models register``, ``ingest`` and ``references upload`` work on the local data dir or, with
``--url`` and ``--api-key``, through a running server, behind one interface
(:mod:`monitor.core_backend`). Registered on the ``driftwatch`` app by :mod:`monitor.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from monitor import files
from monitor.cli_common import (
    ApiKey,
    DataDir,
    Url,
    open_core,
    open_metadata,
    settings_for,
    stamp,
)
from monitor.errors import DriftwatchError

__all__ = ["ingest", "models_app", "references_app"]

models_app = typer.Typer(help="Register and list models.", no_args_is_help=True)
references_app = typer.Typer(help="Upload baselines (references).", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/] {exc}")
    raise typer.Exit(1)


@models_app.command("register")
def models_register(
    spec: Annotated[Path, typer.Argument(help="YAML or JSON file with the model definition.")],
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Register a model from a YAML/JSON definition (name, task, features, prediction, scores)."""
    from pydantic import ValidationError

    from monitor.schemas import ModelIn

    data = yaml.safe_load(spec.read_text())
    try:
        body = ModelIn.model_validate(data)
    except ValidationError as exc:
        _fail(Exception(f"{spec}: {exc}"))
    from monitor.client import ClientError

    with open_core(url, api_key, data_dir) as backend:
        try:
            backend.register_model(body)
        except (ClientError, DriftwatchError) as exc:
            _fail(exc)
    console.print(f"model {body.name!r} registered")


@models_app.command("infer")
def models_infer(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV, Parquet or JSON-lines file (CSV/JSONL also .gz or .zst).",
            exists=True,
            dir_okay=False,
        ),
    ],
    name: Annotated[
        str | None, typer.Option(help="Model name (default: from the file name).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the proposal here.")
    ] = None,
    sample_rows: Annotated[int, typer.Option(min=1, help="Rows read to decide.")] = 100_000,
) -> None:
    """Propose a model definition from a data file: the role of each column from its name, the
    kind of each feature from its type and cardinality, aliases for columns whose names are not
    Driftwatch's. Read and edit it, then `driftwatch models register FILE`."""
    import pyarrow as pa

    from monitor import infer

    fmt = files.detect_format(path)
    if fmt == "csv":
        table = files.read_csv_typed(path, sample_rows)
    else:
        parts, rows = [], 0
        for chunk in files.iter_chunks(path, fmt, min(sample_rows, 50_000)):
            part = chunk.table
            if part is None:
                part = pa.Table.from_pylist([r for r in chunk.rows or [] if isinstance(r, dict)])
            parts.append(part)
            rows += part.num_rows
            if rows >= sample_rows:
                break
        table = pa.concat_tables(parts, promote_options="permissive").slice(0, sample_rows)
    if table.num_rows == 0:
        _fail(ValueError(f"{path}: no rows to infer a schema from"))
    stem = path.name.split(".")[0]
    proposal = infer.propose(table, name or infer.model_name(stem))
    lines = [f"# proposed by `driftwatch models infer {path.name}` from {table.num_rows:,} rows"]
    lines += [f"# NOTE: {n}" for n in proposal.notes]
    lines.append("# edit, then: driftwatch models register <this file>")
    text = "\n".join(lines) + "\n" + yaml.safe_dump(proposal.spec, sort_keys=False)
    if output:
        output.write_text(text)
        err.print(
            f"proposal written to {output}; edit it, then `driftwatch models register {output}`"
        )
    else:
        print(text, end="")


@models_app.command("list")
def models_list(data_dir: DataDir = None) -> None:
    """List registered models."""
    store = open_metadata(settings_for(data_dir))
    table = Table("name", "task", "features", "created")
    for m in store.list_models():
        table.add_row(m.name, m.task, str(len(m.schema.features)), stamp(m.created_at))
    console.print(table)
    store.dispose()


ColumnMap = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="Rename your columns to Driftwatch's fields: COLUMN=FIELD,... e.g. "
        "id=request_id,timestamp=ts,target=label (the model's schema aliases apply too).",
    ),
]


def _column_map(text: str | None) -> dict[str, str]:
    from monitor.client import parse_column_map

    try:
        return parse_column_map(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--map") from exc


def _prepared(chunk: files.Chunk, column_map: dict[str, str], tenant: str | None) -> files.Chunk:
    """``chunk`` with its columns renamed by ``--map`` and ``tenant_id`` filled by
    ``--tenant`` where the file has none (a row's own tenant_id is kept)."""
    from monitor.client import rename_columns

    if chunk.table is not None:
        table = rename_columns(chunk.table, column_map)
        if tenant is not None:
            table = _with_tenant(table, tenant)
        return files.Chunk(table, None, chunk.progress)
    rows = list(rename_columns(chunk.rows or [], column_map))
    if tenant is not None:
        for row in rows:
            if isinstance(row, dict) and row.get("tenant_id") is None:
                row["tenant_id"] = tenant
    return files.Chunk(None, rows, chunk.progress)


def _with_tenant(table: Any, tenant: str) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    fill = pa.array([tenant] * table.num_rows, pa.string())
    if "tenant_id" not in table.column_names:
        return table.append_column("tenant_id", fill)
    i = table.schema.get_field_index("tenant_id")
    column = table.column(i).cast(pa.string())
    return table.set_column(i, "tenant_id", pc.coalesce(column, fill))


Tenant = Annotated[
    str | None,
    typer.Option(help="tenant_id of rows that have none (a file of one tenant, or no tenants)."),
]


def ingest(
    model: Annotated[str, typer.Argument(help="Model name (ignored for --kind events).")],
    path: Annotated[
        Path, typer.Argument(help="CSV, Parquet or JSON-lines file.", exists=True, dir_okay=False)
    ],
    kind: Annotated[str, typer.Option(help="inferences, labels or events.")] = "inferences",
    url: Url = None,
    api_key: ApiKey = None,
    batch_rows: Annotated[int | None, typer.Option(help="Rows per batch.")] = None,
    column_map: ColumnMap = None,
    tenant: Tenant = None,
    data_dir: DataDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Stream a CSV, Parquet or JSON-lines file (also .gz/.zst) into the log store in batches.

    With a progress bar and a summary.

    Memory stays flat whatever the file size. Safe to re-run: rows already stored (same
    tenant and request_id) count as duplicates.
    """
    mapping = _column_map(column_map)
    if kind not in ("inferences", "labels", "events"):
        _fail(ValueError(f"--kind must be inferences, labels or events, not {kind!r}"))
    settings = settings_for(data_dir)
    rows_per_batch = batch_rows or settings.ingest_batch_rows
    fmt = files.detect_format(path)
    totals = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    errors: list[str] = []
    from monitor.client import ClientError

    with open_core(url, api_key, data_dir) as backend:
        try:
            if kind != "events":
                backend.check_model(model)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TransferSpeedColumn()
                if fmt != "parquet"
                else TextColumn("{task.completed:,} rows"),
                TimeRemainingColumn(),
                console=err,
                disable=quiet,
            ) as progress:
                task = progress.add_task(f"{kind} {path.name}", total=files.total_size(path, fmt))
                offset = 0
                for read in files.iter_chunks(path, fmt, rows_per_batch):
                    chunk = _prepared(read, mapping, tenant)
                    answer = backend.ingest(model, kind, chunk.rows, chunk.table)
                    for k in totals:
                        totals[k] += answer[k]
                    for e in answer["errors"]:
                        if len(errors) < 20:
                            errors.append(f"row {e['row'] + offset}: {e['field']}: {e['reason']}")
                    offset += chunk.num_rows
                    progress.update(task, completed=chunk.progress)
        except (DriftwatchError, ClientError) as exc:
            _fail(exc)
    console.print(
        f"{totals['received']:,} rows read: {totals['accepted']:,} stored, "
        f"{totals['duplicates']:,} duplicates, {totals['rejected']:,} rejected (see quarantine)"
    )
    for line in errors:
        console.print(f"  {line}")
    if totals["rejected"]:
        raise typer.Exit(3)


@references_app.command("upload")
def references_upload(
    model: Annotated[str, typer.Argument(help="Model name.")],
    name: Annotated[str, typer.Argument(help="Reference name, e.g. training.")],
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV, Parquet or JSON-lines file (CSV/JSONL also .gz or .zst).",
            exists=True,
            dir_okay=False,
        ),
    ],
    column_map: ColumnMap = None,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
) -> None:
    """Upload a baseline (training or validation rows: features, prediction, scores, label)
    as a new version of reference NAME; monitors with `reference: NAME` compare with it."""
    mapping = _column_map(column_map)
    table = files.read_table(path)
    if table.num_rows == 0:
        _fail(ValueError(f"{path}: no rows"))
    from monitor.client import rename_columns

    try:
        table = rename_columns(table, mapping)
    except ValueError as exc:
        _fail(exc)
    with open_core(url, api_key, data_dir) as backend:
        answer = backend.put_reference(model, name, table)
    version, rows, rejected = answer["version"], answer["rows"], answer["rejected"]
    for e in answer["errors"]:
        console.print(f"  row {e['row']}: {e['field']}: {e['reason']}")
    console.print(
        f"reference {name!r} of model {model!r}: version {version}, {rows:,} rows"
        + (f", {rejected:,} rejected (see quarantine)" if rejected else "")
    )
    if rejected:
        raise typer.Exit(3)
