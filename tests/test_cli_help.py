"""What ``driftwatch --help`` and each command's ``--help`` show a new user: no reST markup
(the docstrings' ``--dry-run`` printed with its double backquotes, as in "Create or update the
monitors of a YAML file by name (``--dry-run``: show the diff)"), and ``serve`` says it
serves the dashboard."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from monitor.cli import app


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        out += _commands(sub, (*path, name))
    return out


def test_no_help_page_prints_rest_markup() -> None:
    runner = CliRunner()
    paths = _commands(typer.main.get_command(app))
    assert ("apply",) in paths and ("alerts", "deliveries") in paths
    shown = {}
    for path in paths:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0, (path, r.output)
        shown[" ".join(path)] = r.output
    marked = {p: [ln.strip() for ln in out.splitlines() if "``" in ln] for p, out in shown.items()}
    # control: apply, init, backfill, references upload, alerts deliveries, quarantine list
    assert {p: lines for p, lines in marked.items() if lines} == {}
    assert "(--dry-run: show the diff)" in shown["apply"]
    # serve says it serves the dashboard (control: "API under /api, OpenAPI docs at /docs")
    assert "the dashboard at /" in shown["serve"]
