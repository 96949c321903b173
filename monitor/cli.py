"""The ``driftwatch`` command line.

Commands work on the local data dir (``--data-dir`` / ``DRIFTWATCH_DATA_DIR``) or, for ingest,
against a running server (``--url`` + ``--api-key``, or ``DRIFTWATCH_URL`` /
``DRIFTWATCH_API_KEY``). Only one process may open the DuckDB file: while ``driftwatch serve``
runs, send data through ``--url``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from monitor import cli_common, files
from monitor.cli_common import (
    ApiKey,
    DataDir,
    Url,
    open_metadata,
    open_services,
    settings_for,
)
from monitor.core_backend import CoreBackend, HttpCore, LocalCore
from monitor.errors import DriftwatchError
from storage.private import private_dir

app = typer.Typer(help="Driftwatch: monitor ML models in production.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Metadata database migrations.", no_args_is_help=True)
models_app = typer.Typer(help="Register and list models.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo scenario.", no_args_is_help=True)
references_app = typer.Typer(help="Upload baselines (references).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(demo_app, name="demo")
app.add_typer(references_app, name="references")

from monitor.cli_monitors import register as _register_monitor_commands  # noqa: E402

_register_monitor_commands(app)  # apply, init, run, backfill

from monitor.cli_demo import register as _register_demo  # noqa: E402
from monitor.cli_users import users_app  # noqa: E402

app.add_typer(users_app, name="users")
_register_demo(demo_app)  # demo build, demo receiver

from monitor.cli_alerts import cli as _alerts_cli  # noqa: E402

app.add_typer(_alerts_cli)  # driftwatch alerts|channels|rules ...

from monitor.cli_kpis import kpis_app  # noqa: E402

app.add_typer(kpis_app, name="kpis")  # driftwatch kpis list|show|compute

from monitor.cli_lake import lake_app  # noqa: E402

app.add_typer(lake_app, name="lake")  # driftwatch lake export

from monitor.cli_quarantine import quarantine_app  # noqa: E402

app.add_typer(quarantine_app, name="quarantine")  # driftwatch quarantine list

from monitor.cli_profile import register as _register_profile  # noqa: E402

_register_profile(app)  # driftwatch profile --engine duckdb|spark --lake ... --model ...

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


_settings = settings_for
_services = open_services


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/] {exc}")
    raise typer.Exit(1)


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
) -> None:
    """Run the server: API under /api, OpenAPI docs at /docs (one process)."""
    import uvicorn

    from monitor.api import create_app

    settings = _settings(data_dir, host=host, port=port)
    console.print(f"Driftwatch starting on {settings.base_url} ...")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        workers=1,  # one process owns the DuckDB file
        # requests still running this long after SIGTERM are cut off; jobs, the scheduler
        # and the delivery worker are told to stop by the app's shutdown
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = _server(config)
    # said once the socket listens and the app's start-up (stores opened, migrations run,
    # scheduler started) is done: a browser opened on this line gets the page
    server.on_ready = lambda: console.print(
        f"Driftwatch serving on {settings.base_url}  (API docs: {settings.base_url}/docs)"
    )
    server.run()


SHUTDOWN_GRACE_SECONDS = 4
SHUTDOWN_DEADLINE_SECONDS = 9.0


def _server(config: Any) -> Any:
    """uvicorn's server with a deadline: SIGTERM (or Ctrl-C) stops ``driftwatch serve``
    within :data:`SHUTDOWN_DEADLINE_SECONDS` whatever is running. Work in progress stops at
    its next check point (a window); what is committed is in the stores' logs already, so a
    forced exit at the deadline loses nothing committed."""
    import os
    import threading

    import uvicorn

    def force() -> None:
        err.print(
            f"[yellow]shutdown took over {SHUTDOWN_DEADLINE_SECONDS:.0f} s; exiting now "
            "(committed data is safe)[/]"
        )
        os._exit(0)

    class Server(uvicorn.Server):
        on_ready: Any = None

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            # uvicorn has run the lifespan start-up and bound the socket by now (it returns
            # early, with should_exit set, when either failed)
            if self.started and not self.should_exit and self.on_ready is not None:
                self.on_ready()

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:  # the first signal starts the clock
                timer = threading.Timer(SHUTDOWN_DEADLINE_SECONDS, force)
                timer.daemon = True
                timer.start()
            super().handle_exit(sig, frame)

    return Server(config)


@app.command("config")
def show_config(data_dir: DataDir = None) -> None:
    """Print the effective settings (secrets masked) with their defaults and help."""
    settings = _settings(data_dir)
    table = Table("variable", "value", "default", "help", show_lines=False)
    for name, value, default, help_text in settings.described():
        table.add_row(name, value, default, help_text)
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Migrate the metadata database to the latest schema."""
    from storage.metadata import MetadataStore

    settings = _settings(data_dir)
    private_dir(settings.data_dir)
    store = MetadataStore(settings.metadata_url)
    store.upgrade()
    console.print(f"metadata database at revision {store.current_revision()}")
    store.dispose()


def _metadata(data_dir: Path | None) -> Any:
    return open_metadata(_settings(data_dir))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name saying who or what uses the key.")],
    role: Annotated[str, typer.Option(help="admin, engineer or viewer.")] = "engineer",
    tenant: Annotated[
        str | None, typer.Option(help="Scope the key to one tenant (which must exist).")
    ] = None,
    create_tenant: Annotated[
        bool, typer.Option("--create-tenant", help="Create --tenant first if it does not exist.")
    ] = False,
    expires_days: Annotated[
        int | None, typer.Option(min=1, max=36500, help="Expire after this many days.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print it once (it is stored hashed)."""
    store = _metadata(data_dir)
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    if tenant is not None and not create_tenant and store.get_tenant(tenant) is None:
        store.dispose()
        raise typer.BadParameter(
            f"tenant {tenant!r} does not exist (a typo would give a key that sees nothing); "
            "add --create-tenant to create it",
            param_hint="--tenant",
        )
    try:
        info, secret = store.create_api_key(name, role, tenant, expires, actor="cli")
    except ValueError as exc:
        _fail(exc)
    console.print(
        f"key {info.prefix} ({info.role}{', tenant ' + tenant if tenant else ''}) created:"
    )
    print(secret)
    store.dispose()


@keys_app.command("list")
def keys_list(data_dir: DataDir = None) -> None:
    """List API keys (prefixes only; secrets are never shown again)."""
    store = _metadata(data_dir)
    table = Table(
        "id", "prefix", "name", "role", "tenant", "created", "expires", "revoked", "last used"
    )
    for k in store.list_api_keys():
        table.add_row(
            str(k.id),
            k.prefix,
            k.name,
            k.role,
            k.tenant_id or "*",
            _ts(k.created_at),
            _ts(k.expires_at),
            _ts(k.revoked_at),
            _ts(k.last_used_at),
        )
    console.print(table)
    store.dispose()


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id or display prefix.")], data_dir: DataDir = None
) -> None:
    """Revoke a key; it stops working at once."""
    store = _metadata(data_dir)
    try:
        info = store.revoke_api_key(key, actor="cli")
    except Exception as exc:
        _fail(exc)
    console.print(f"key {info.prefix} revoked")
    store.dispose()


@contextmanager
def _core(url: str | None, api_key: str | None, data_dir: Path | None) -> Iterator[CoreBackend]:
    """The backend of ``models register`` and ``references upload``: the server's API (the
    Python client) with ``--url``, else the local data dir (``monitor.core_backend``)."""
    if url:
        from monitor.client import Client

        # one request per ingest chunk (the client's batching: repeated text dictionary-encoded,
        # a body over 48 MiB halved), so a chunk of DuckDB's row-group size is one append
        key = _need_key(api_key)
        with Client(url, key, batch_rows=1 << 62, transport=cli_common.TRANSPORT) as client:
            yield HttpCore(client)
        return
    services = _services(_settings(data_dir))
    try:
        yield LocalCore(services)
    finally:
        services.close()


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


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

    with _core(url, api_key, data_dir) as backend:
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
    store = _metadata(data_dir)
    table = Table("name", "task", "features", "created")
    for m in store.list_models():
        table.add_row(m.name, m.task, str(len(m.schema.features)), _ts(m.created_at))
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


def _need_key(api_key: str | None) -> str:
    if not api_key:
        err.print("[red]error:[/] --url needs --api-key (or DRIFTWATCH_API_KEY)")
        raise typer.Exit(2)
    return api_key


@app.command()
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
    """Stream a file (CSV, Parquet, JSON lines; CSV and JSON lines also .gz or .zst) into the
    log store in batches, with a progress bar and a summary.

    Memory stays flat whatever the file size. Safe to re-run: rows already stored (same
    tenant and request_id) count as duplicates.
    """
    mapping = _column_map(column_map)
    if kind not in ("inferences", "labels", "events"):
        _fail(ValueError(f"--kind must be inferences, labels or events, not {kind!r}"))
    settings = _settings(data_dir)
    rows_per_batch = batch_rows or settings.ingest_batch_rows
    fmt = files.detect_format(path)
    totals = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    errors: list[str] = []
    from monitor.client import ClientError

    with _core(url, api_key, data_dir) as backend:
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
    as a new version of reference NAME; monitors with ``reference: NAME`` compare with it."""
    mapping = _column_map(column_map)
    table = files.read_table(path)
    if table.num_rows == 0:
        _fail(ValueError(f"{path}: no rows"))
    from monitor.client import rename_columns

    try:
        table = rename_columns(table, mapping)
    except ValueError as exc:
        _fail(exc)
    with _core(url, api_key, data_dir) as backend:
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


@demo_app.command("load")
def demo_load(
    data_dir: DataDir = None,
    days: Annotated[int, typer.Option(help="Days of hourly traffic.")] = 3,
    rows_per_hour: Annotated[int, typer.Option(help="Inference rows per hour.")] = 200,
) -> None:
    """Create the demo tenants, model, traffic, labels and reference, and an admin key."""
    from monitor import demo
    from monitor.ingest import ParsedBody
    from monitor.service import Caller

    settings = _settings(data_dir)
    services = _services(settings)
    caller = Caller.local()
    try:
        if services.metadata.get_model(demo.CHURN_MODEL.name) is None:
            services.register_model(demo.CHURN_MODEL, caller)
        inferences, labels, reference = demo.demo_batches(days, rows_per_hour)
        s = services.ingest_inferences("churn", ParsedBody(table=inferences), caller)
        services.ingest_labels("churn", ParsedBody(table=labels), caller)
        if not services.logstore.list_references("churn"):
            services.put_reference("churn", "training", ParsedBody(table=reference), caller)
        _info, secret = services.metadata.create_api_key("demo-admin", "admin", actor="demo")
    finally:
        services.close()
    console.print(
        f"demo loaded: model 'churn', tenants {', '.join(demo.TENANTS)}, "
        f"{s.accepted:,} new inference rows ({s.duplicates:,} already there), "
        f"{labels.num_rows:,} labels, reference 'training'"
    )
    console.print(f"admin API key (shown once): {secret}")
    console.print(
        f"try: curl -H 'Authorization: Bearer {secret}' {settings.base_url}/api/v1/models/churn"
    )


def main() -> None:
    """The ``driftwatch`` entry point: errors end a command with one line, exit code 1."""
    import httpx

    from monitor.cli_common import network_error_line, one_line
    from monitor.client import ClientError

    try:
        app()
    except DriftwatchError as exc:
        err.print(f"[red]error:[/] {escape(one_line(str(exc), 400))}")
        sys.exit(1)
    except httpx.TransportError as exc:  # refused, unknown host, timeout: a wrong --url
        err.print(f"[red]error:[/] {escape(network_error_line(exc))}")
        sys.exit(1)
    except ClientError as exc:  # the Python client's HTTP errors (ingest, models register)
        err.print(f"[red]error:[/] {escape(one_line(str(exc), 400))}")
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
