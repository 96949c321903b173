"""Every ``driftwatch ...`` command that the UI texts (``dashboard/``, ``monitor/``) and the docs
(``docs/``, ``README.md``) tell users to run exists in the Typer app.

The empty dashboard once told users to run ``driftwatch monitors create`` and ``driftwatch
monitors backfill``, which never existed. Mentions are read from every string constant of the
Python modules and from the code spans and code blocks of the Markdown files; each is walked
down the app's command tree (a command's arguments and options are not checked).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import typer

from monitor.cli import app

ROOT = Path(__file__).resolve().parents[1]
MENTION = re.compile(r"\bdriftwatch((?: [a-z][a-z0-9-]*)+)")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)


def command_tree() -> dict[str, Any]:
    """``{name: subtree}`` of the app; a command (no subcommands) maps to None."""

    def walk(cmd: Any) -> dict[str, Any] | None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            return None
        return {name: walk(sub) for name, sub in subs.items()}

    tree = walk(typer.main.get_command(app))
    assert tree
    return tree


def python_texts() -> list[tuple[str, str]]:
    out = []
    for folder in ("dashboard", "monitor"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    out.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.value))
    return out


def markdown_texts() -> list[tuple[str, str]]:
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for m in CODE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{path.relative_to(ROOT)}:{line}", m.group(0)))
    return out


def broken(mention: str, tree: dict[str, Any]) -> str | None:
    """Why ``driftwatch <mention>`` is no command of the app (None when it is)."""
    node: dict[str, Any] | None = tree
    path = []
    for word in mention.split():
        if node is None:
            return None  # a command's argument (`driftwatch ingest churn ...`)
        if word not in node:
            where = " ".join(["driftwatch", *path])
            return f"{where} has no command {word!r} (it has {', '.join(sorted(node))})"
        path.append(word)
        node = node[word]
    return None


def test_the_tree_walk_finds_nested_commands() -> None:
    tree = command_tree()
    assert tree["alerts"]["silence"] is None and tree["serve"] is None
    assert broken(" alerts list", tree) is None and broken(" ingest churn", tree) is None
    # the texts of issue 13 are caught
    assert "no command 'monitors'" in (broken(" monitors create", tree) or "")
    assert "no command 'create'" in (broken(" kpis create", tree) or "")


def test_every_command_named_in_ui_texts_and_docs_exists() -> None:
    tree = command_tree()
    texts = python_texts() + markdown_texts()
    seen = 0
    problems = []
    for where, text in texts:
        for m in MENTION.finditer(text):
            seen += 1
            why = broken(m.group(1), tree)
            if why:
                problems.append(f"{where}: `driftwatch{m.group(1)}`: {why}")
    assert seen > 50  # the scan reads the texts (a broken regex would find nothing)
    assert problems == []
