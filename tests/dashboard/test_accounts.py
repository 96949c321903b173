"""Accounts (argon2, roles, scope) and ``driftwatch users``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.accounts import Accounts, can_open
from monitor.cli import app
from storage.metadata import MetadataStore


def test_authenticate_and_disable(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    accounts = Accounts(store)
    acct = accounts.create("eve", "correct horse", "executive", ["acme"])
    assert accounts.list()[0].password_hash.startswith("$argon2id$")
    assert accounts.authenticate("eve", "wrong password") is None
    assert accounts.authenticate("nobody", "correct horse") is None
    ok = accounts.authenticate("EVE ", "correct horse")
    assert ok == acct and ok.sees_tenant("acme") and not ok.sees_tenant("globex")
    assert accounts.load(acct.id) == acct
    accounts.disable("eve")
    assert accounts.authenticate("eve", "correct horse") is None
    assert accounts.load(acct.id) is None
    with pytest.raises(ValueError, match="at least 8"):
        accounts.create("short", "x", "engineer")
    store.dispose()


def test_roles() -> None:
    # the executive's overview is the business one (/kpis); "/" redirects there
    assert can_open("executive", "kpis") and not can_open("executive", "overview")
    assert not can_open("executive", "model") and not can_open("executive", "alerts")
    assert can_open("oncall", "alerts") and can_open("oncall", "model")
    assert not can_open("oncall", "kpis") and not can_open("oncall", "monitors")
    assert all(can_open("engineer", p) for p in ("model", "alerts", "kpis", "monitors"))
    assert not can_open("admin", "no-such-page")


def test_users_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    r = runner.invoke(
        app,
        [
            "users",
            "create",
            "olga",
            "--role",
            "oncall",
            "--tenant",
            "acme",
            "--password",
            "s3cret-pass",
            *base,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "olga" in r.output and "acme" in r.output
    r = runner.invoke(app, ["users", "create", "olga", "--password", "s3cret-pass", *base])
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(
        app, ["users", "create", "x", "--role", "boss", "--password", "s3cret-pass", *base]
    )
    assert r.exit_code == 1 and "role" in r.output
    r = runner.invoke(app, ["users", "disable", "olga", *base])
    assert r.exit_code == 0
    r = runner.invoke(app, ["users", "list", *base])
    assert "olga" in r.output and "yes" in r.output
    r = runner.invoke(app, ["users", "disable", "nobody", *base])
    assert r.exit_code == 1
