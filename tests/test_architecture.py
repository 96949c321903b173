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
# Modules of another package a package may import although the table above does not allow
# that package, each with its reason: importer -> {module: why}.
ALLOWED_MODULES: dict[str, dict[str, str]] = {
    "storage": {
        "detectors.bucket_grid": "the one numeric bucketing: stored profiles equal in-memory ones",
        "detectors.profile_kernels": "its compiled loop, which the profile build counts with",
    },
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
        if top in PACKAGES and top != own and name not in ALLOWED_MODULES.get(own, {}):
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


# ---------------------------------------------------------------- private reach-ins
# ``x._name`` where ``_name`` is not defined in the same file: reaching into another module's
# object (STYLE.md: make the interface public or move the code). A file's own private names are
# what it defines: ``def _f``/``class _C``, ``_x = ...`` at any level, ``self._x``/``cls._x``.
# The namedtuple API is public despite its underscore.
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}
# Deliberate exceptions, each with its reason: file -> {attribute: why}.
ALLOWED_REACH_INS: dict[str, dict[str, str]] = {
    "monitor/cli.py": {"_exit": "os._exit: leave at once after the fork's child work"},
    "dashboard/auth.py": {
        "_path_to_page": "Dash's page registry has no public lookup from a path to its page"
    },
}
# Reach-ins that predate this check, each to be removed by its owner. The list may only
# shrink: an entry that no longer occurs fails ``test_known_reach_ins_still_exist``.
KNOWN_REACH_INS: dict[str, set[str]] = {}


def _own_private_names(tree: ast.AST) -> set[str]:
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            own.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
    return {n for n in own if n.startswith("_")}


def _reach_ins(path: Path) -> set[str]:
    """Private attributes ``path`` reads or writes on objects it does not define, and private
    names it imports from another project module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = _own_private_names(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if (
                name.startswith("_")
                and not name.startswith("__")
                and name not in PUBLIC_UNDERSCORE
                and name not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                found.add(name)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] in PACKAGES
        ):
            found.update(
                a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
            )
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_reach_ins(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    allowed = set(ALLOWED_REACH_INS.get(rel, {})) | KNOWN_REACH_INS.get(rel, set())
    bad = _reach_ins(path) - allowed
    assert not bad, (
        f"{rel} uses private names of another module's objects: {sorted(bad)}; make them "
        "public (a documented method) or move the code to the module that owns them"
    )


def test_known_reach_ins_still_exist() -> None:
    """The debt list shrinks as the reach-ins go: remove an entry once its file is clean."""
    for rel, names in KNOWN_REACH_INS.items():
        gone = names - _reach_ins(ROOT / rel)
        assert not gone, f"{rel} no longer reaches into {sorted(gone)}: drop it from the list"


def test_reach_in_check_catches_a_reach_in(tmp_path: Path) -> None:
    """Control: the check sees ``self._ls._wlock``-style reach-ins and private imports."""
    src = tmp_path / "m.py"
    src.write_text(
        "from storage.logstore import _quote\n"
        "class P:\n"
        "    def __init__(self, ls):\n"
        "        self._ls = ls\n"
        "    def w(self):\n"
        "        with self._ls._wlock:\n"
        "            return self._ls.table('m')\n"
    )
    assert _reach_ins(src) == {"_quote", "_wlock"}


# ---------------------------------------------------------------- import circles
def _module_names() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in _sources():
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def _module_graph() -> dict[str, set[str]]:
    """Project module -> project modules it imports, at any level (an import inside a function
    still ties the two modules together; it only hides the circle from the interpreter)."""
    mods = _module_names()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                out.update(m for a in node.names if (m := owner(a.name)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = name.split(".") if is_pkg else name.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                for a in node.names:
                    m = owner(f"{base}.{a.name}") if f"{base}.{a.name}" in mods else owner(base)
                    if m:
                        out.add(m)
        out.discard(name)
        graph[name] = out
    return graph


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(frozenset(comp))
    return found


# Circles that predate this check, each to be broken by its owner (none left). May only
# shrink: a circle that is gone fails the test below until its entry is removed; a new one
# fails at once.
KNOWN_CIRCLES: set[frozenset[str]] = set()


def test_no_new_import_circles() -> None:
    circles = set(_circles(_module_graph()))
    new = [sorted(c) for c in circles - KNOWN_CIRCLES]
    assert not new, f"import circles between modules: {new}"
    gone = [sorted(c) for c in KNOWN_CIRCLES - circles]
    assert not gone, f"these circles are gone (or changed): drop them from KNOWN_CIRCLES: {gone}"


def test_circle_check_finds_a_circle() -> None:
    """Control for the Tarjan walk: a -> b -> c -> a is one circle, d hangs off it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert _circles(graph) == [frozenset({"a", "b", "c"})]


def test_only_the_composition_root_builds_the_process_graph() -> None:
    """Long-lived components are built in monitor/composition.py (and the API's lifespan asks
    it to start them): no module-level locator keyed by the services, no router lifespan, no
    setting read with a default that hides a missing field."""
    for path in _sources():
        rel = str(path.relative_to(ROOT))
        text = path.read_text()
        assert "WeakKeyDictionary" not in text, f"{rel}: a locator; build it in the root"
        assert "APIRouter(lifespan" not in text, f"{rel}: start components in the root"
        assert "getattr(settings," not in text, f"{rel}: settings have typed fields"


def test_the_cli_does_not_import_api_internals() -> None:
    """The CLI talks to a server through the client and works locally through the use cases;
    of the API it only starts the app (``driftwatch serve``: ``monitor.api.create_app``)."""
    for path in sorted((ROOT / "monitor").glob("cli*.py")):
        inner = sorted(n for n in _imports(path) if n.startswith("monitor.api."))
        assert not inner, f"{path.relative_to(ROOT)} imports API internals: {inner}"


# ---------------------------------------------------------------- module size
# Issue 15: no module of the monitoring core (monitor/: use cases, read models, API, CLI), of
# detectors/ or of alerts/ above ~500 lines; a bigger one holds several responsibilities and is
# split by them, into modules whose names say what they hold. storage/ is not held to it yet
# (storage/logstore.py, storage/profiles.py ... are well above).
MAX_LINES = 500
SIZED = ("monitor", "detectors", "alerts")
# Deliberate exceptions, each with its reason: file -> why (none today).
LARGE_MODULES: dict[str, str] = {}


def _too_long(paths: list[Path], root: Path, limit: int = MAX_LINES) -> list[str]:
    """``file: N lines`` for each of ``paths`` over ``limit`` lines."""
    out = []
    for path in sorted(paths):
        n = len(path.read_text().splitlines())
        if n > limit:
            out.append(f"{path.relative_to(root)}: {n} lines")
    return out


def test_no_module_above_500_lines() -> None:
    paths = [p for pkg in SIZED for p in (ROOT / pkg).rglob("*.py")]
    long = [s for s in _too_long(paths, ROOT) if s.split(":")[0] not in LARGE_MODULES]
    assert not long, (
        f"modules over {MAX_LINES} lines: {long}; split each by responsibility into modules "
        "whose names say what they hold (or list it in LARGE_MODULES with the reason)"
    )
    for rel in LARGE_MODULES:
        assert _too_long([ROOT / rel], ROOT), f"{rel} is no longer large: drop it from the list"


def test_size_check_names_the_file_and_its_size(tmp_path: Path) -> None:
    """Control: a module one line over the limit is reported with its path and size."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "pkg" / "ok.py").write_text("x = 1\n" * MAX_LINES)
    paths = list((tmp_path / "pkg").glob("*.py"))
    assert _too_long(paths, tmp_path) == [f"pkg/big.py: {MAX_LINES + 1} lines"]
