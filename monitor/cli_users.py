"""``driftwatch users create|list|disable``: dashboard log-ins.

Works on the metadata database only, so it is safe while ``driftwatch serve`` runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from monitor.settings import load_settings
from storage.private import private_dir

if TYPE_CHECKING:
    from monitor.accounts import Accounts
    from storage.metadata import MetadataStore

users_app = typer.Typer(help="Dashboard users: create, list, disable.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default $DRIFTWATCH_DATA_DIR or ./data)."),
]


# Kept in step with monitor.accounts.USER_ROLES (tested); not imported so that every CLI start
# does not load SQLAlchemy and argon2.
USER_ROLES = ("admin", "engineer", "oncall", "executive")


def _metadata_error() -> type[Exception]:
    from storage.metadata import MetadataError

    return MetadataError


def _accounts(data_dir: Path | None) -> tuple[Accounts, MetadataStore]:
    from monitor.accounts import Accounts
    from storage.metadata import MetadataStore

    settings = load_settings(data_dir=data_dir)
    private_dir(settings.data_dir)
    store = MetadataStore(settings.metadata_url)
    store.upgrade()
    return Accounts(store), store


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Log-in name (lower case).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(USER_ROLES)}.")] = "engineer",
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Limit the user to this tenant (repeat for several)."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="DRIFTWATCH_USER_PASSWORD",
            help="Password (at least 8 characters); prompted for when omitted.",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a dashboard user."""
    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    accounts, store = _accounts(data_dir)
    try:
        account = accounts.create(username, password, role, tenant or None)
    except (ValueError, _metadata_error()) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.dispose()
    scope = ", ".join(account.tenants) if account.tenants else "all tenants"
    console.print(f"created user {account.username!r} ({account.role}, {scope})")


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """List dashboard users."""
    accounts, store = _accounts(data_dir)
    try:
        users = accounts.list()
    finally:
        store.dispose()
    table = Table("username", "role", "tenants", "disabled", "created", "last login")
    for u in users:
        table.add_row(
            u.username,
            u.role,
            ", ".join(u.tenants) if u.tenants else "all",
            "yes" if u.disabled else "no",
            u.created_at.strftime("%Y-%m-%d %H:%M"),
            u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
        )
    console.print(table)


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="Log-in name.")],
    data_dir: DataDir = None,
) -> None:
    """Disable a user: they cannot log in and their open sessions stop working."""
    accounts, store = _accounts(data_dir)
    try:
        accounts.disable(username)
    except _metadata_error() as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.dispose()
    console.print(f"disabled user {username!r}")


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="Log-in name.")],
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="DRIFTWATCH_USER_PASSWORD",
            help="New password (at least 8 characters); prompted for when omitted.",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Change a user's password; every open session of the user stops working."""
    if password is None:
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    accounts, store = _accounts(data_dir)
    try:
        accounts.set_password(username, password, actor="cli")
    except (ValueError, _metadata_error()) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        store.dispose()
    console.print(f"password of {username!r} changed; their sessions were ended")
