"""Import directions of docs/architecture.md, checked on the source (ast), not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("detectors", "storage", "alerts", "monitor", "dashboard")

# package -> project packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "detectors": set(),
    "storage": set(),
    "alerts": {"storage"},
    "monitor": {"detectors", "storage", "alerts"},
    "dashboard": {"monitor"},
}
# third-party modules confined to one place (STYLE.md, principle 6 and 4)
CONFINED: dict[str, tuple[str, ...]] = {
    "duckdb": ("storage/",),
    "sqlalchemy": ("storage/",),
    "alembic": ("storage/",),
    "alibi_detect": ("detectors/alibi_adapter.py",),
    "apscheduler": ("monitor/scheduler",),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources() -> list[Path]:
    return [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]


def test_every_package_exists() -> None:
    for pkg in PACKAGES:
        assert (ROOT / pkg / "__init__.py").is_file(), pkg


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_import_directions(path: Path) -> None:
    own = path.relative_to(ROOT).parts[0]
    for name in _imports(path):
        top = name.split(".")[0]
        if top in PACKAGES and top != own:
            assert top in ALLOWED[own], (
                f"{path.relative_to(ROOT)} imports {name}: {own} may not import {top}"
            )
        if top in CONFINED:
            rel = str(path.relative_to(ROOT))
            assert rel.startswith(CONFINED[top]), (
                f"{rel} imports {top}, allowed only in {CONFINED[top]}"
            )


def test_nothing_imports_dashboard() -> None:
    for path in _sources():
        if path.relative_to(ROOT).parts[0] == "dashboard":
            continue
        assert not any(n.split(".")[0] == "dashboard" for n in _imports(path)), path
