"""The ``driftwatch`` command line.

Commands work on the local data dir (``--data-dir`` / ``DRIFTWATCH_DATA_DIR``) or, for ingest,
against a running server (``--url`` + ``--api-key``, or ``DRIFTWATCH_URL`` /
``DRIFTWATCH_API_KEY``). Only one process may open the DuckDB file: while ``driftwatch serve``
runs, send data through ``--url``.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# The commands' modules below build a few hundred thousand objects and free almost none: the
# cyclic collector's passes over them find nothing and cost ~15 % of a start-up (issue 17).
# Off while importing them, on again at the end of this module; ``serve`` does the same until
# its port is open.
_GC_WAS_ON = gc.isenabled()
gc.disable()

from monitor import cli_models  # noqa: E402
from monitor.cli_common import (  # noqa: E402
    DataDir,
    open_metadata,
    open_services,
    settings_for,
    stamp,
)
from monitor.errors import DriftwatchError  # noqa: E402
from storage.private import private_dir  # noqa: E402

app = typer.Typer(help="Driftwatch: monitor ML models in production.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Metadata database migrations.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo scenario.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(cli_models.models_app, name="models")
app.add_typer(demo_app, name="demo")
app.add_typer(cli_models.references_app, name="references")

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

if _GC_WAS_ON:
    gc.enable()

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
    ingest_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve the API on this port, from a process of its own that reads and "
            "validates JSON ingest (for many small writers; DRIFTWATCH_INGEST_PORT)."
        ),
    ] = None,
) -> None:
    """Run the server: the dashboard at /, the API under /api/v1, its docs at /docs."""
    # as while importing this module: building the app (imports, routes, schemas) allocates
    # much and frees little, so the collector is off until the port is open
    gc.disable()
    import uvicorn

    from monitor.api import create_app

    settings = _settings(data_dir, host=host, port=port, ingest_port=ingest_port)
    console.print(f"Driftwatch starting on {settings.base_url} ...")
    # the scheduler and the delivery worker start once the port is open (after the dashboard
    # build, so the first page is not kept waiting by them)
    api = create_app(settings, start_after_ready=True)
    config = uvicorn.Config(
        api,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        workers=1,  # one process owns the DuckDB file
        # requests still running this long after SIGTERM are cut off; jobs, the scheduler
        # and the delivery worker are told to stop by the app's shutdown
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    server = _server(config)
    fronts: list[Any] = []  # the ingest front's process (settings.ingest_port), once started
    failed: list[str] = []

    def serving() -> None:
        # said once the socket listens and the app's start-up (stores opened, migrations run,
        # scheduler started) is done: a browser opened on this line gets the page
        console.print(
            f"Driftwatch serving on {settings.base_url}  (API docs: {settings.base_url}/docs)"
            + (f"; ingest also on port {settings.ingest_port}" if fronts else "")
        )

    stopping = threading.Event()

    def front_ready() -> None:
        # on a thread: the front takes a second or two to import and bind
        from monitor.api import FrontProcess

        try:
            fronts[0].wait_accepting()
        except RuntimeError as exc:
            failed.append(str(exc))
            server.should_exit = True
            return
        serving()
        # then it watches the front: one that dies (a crash, the OOM killer) is started
        # again; meanwhile its port refuses connections and nothing it answered is lost
        while True:
            code = fronts[0].proc.wait()
            if stopping.is_set():
                return
            err.print(f"[yellow]the ingest front exited with code {code}; starting it again[/]")
            fronts[0].stop()
            time.sleep(1.0)
            if stopping.is_set():
                return
            try:
                fronts[0] = FrontProcess(api, settings)
                fronts[0].wait_accepting()
            except (OSError, RuntimeError) as exc:
                err.print(f"[red]error:[/] the ingest front did not start again: {exc}")
                return

    def ready() -> None:
        gc.enable()
        from monitor import ingest

        # validation's first-call cost last: the dashboard's build (a person's first page)
        # and the scheduler's start go first, and the warm-up does not slow them
        _after_ready([*api.state.after_ready, ingest.warm_up])
        if settings.ingest_port is None:
            serving()
            return
        from monitor.api import FrontProcess

        try:
            fronts.append(FrontProcess(api, settings))
        except OSError as exc:
            failed.append(f"could not start the ingest front: {exc}")
            server.should_exit = True
            return
        threading.Thread(target=front_ready, name="ingest-front-start", daemon=True).start()

    def stop_fronts() -> None:
        stopping.set()
        for front in fronts:
            front.stop()

    server.on_ready = ready
    # the front first, while this process still stores what it sends: its requests in
    # flight are answered before it exits (uvicorn's graceful shutdown there)
    server.before_shutdown = stop_fronts
    try:
        server.run()
    finally:
        stop_fronts()
    if failed:
        _fail(RuntimeError(failed[0]))


def _after_ready(work: list[Any]) -> None:
    """Run the app's after-ready work (building the dashboard) in a daemon thread, off the
    event loop: requests are answered meanwhile, and one that needs the work waits for it."""
    import logging
    import threading

    def run() -> None:
        for job in work:
            try:
                job()
            except Exception:  # logged; the request that needs it tries again and answers 500
                logging.getLogger("driftwatch").exception("after-ready work %r failed", job)

    threading.Thread(target=run, name="driftwatch-after-ready", daemon=True).start()


SHUTDOWN_GRACE_SECONDS = 4
SHUTDOWN_DEADLINE_SECONDS = 9.0


def _server(config: Any) -> Any:
    """uvicorn's server with a deadline: SIGTERM (or Ctrl-C) stops ``driftwatch serve``
    within :data:`SHUTDOWN_DEADLINE_SECONDS` whatever is running. Work in progress stops at
    its next check point (a window); what is committed is in the stores' logs already, so a
    forced exit at the deadline loses nothing committed."""
    import asyncio
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
        before_shutdown: Any = None

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            # uvicorn has run the lifespan start-up and bound the socket by now (it returns
            # early, with should_exit set, when either failed)
            if self.started and not self.should_exit and self.on_ready is not None:
                self.on_ready()

        async def shutdown(self, sockets: Any = None) -> None:
            if self.before_shutdown is not None:
                await asyncio.to_thread(self.before_shutdown)
            await super().shutdown(sockets)

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
            stamp(k.created_at),
            stamp(k.expires_at),
            stamp(k.revoked_at),
            stamp(k.last_used_at),
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


# models register|infer|list, ingest, references upload: monitor/cli_models.py
app.command()(cli_models.ingest)


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
