"""The pytest-xdist groups of ``tests/conftest.py`` name files that exist: a file renamed
without its entry would lose its grouping silently (its costly fixture built in each worker)."""

from __future__ import annotations

from tests.conftest import GROUPS, read_durations
from tests.support import ROOT


def test_every_grouped_file_exists() -> None:
    missing = sorted(path for path in GROUPS if not (ROOT / path).is_file())
    assert not missing, f"GROUPS in tests/conftest.py lists files that do not exist: {missing}"


def test_every_timed_test_exists() -> None:
    """A renamed test would keep its old duration and the new name the default: the file
    must exist and define the function."""
    missing = []
    for nodeid in read_durations():
        path, name = nodeid.split("::", 1)
        function = name.split("[", 1)[0].split("::")[-1]
        file = ROOT / path
        if not file.is_file() or f"def {function}(" not in file.read_text():
            missing.append(nodeid)
    assert not missing, f"tests/durations.txt names tests that do not exist: {missing}"


def test_every_reordered_test_exists() -> None:
    """``RUN_BEFORE`` names tests by node id: a renamed one would silently run where it was."""
    from tests.conftest import RUN_BEFORE

    missing = []
    for nodeid in [*RUN_BEFORE, *RUN_BEFORE.values()]:
        path, name = nodeid.split("::", 1)
        file = ROOT / path
        if not file.is_file() or f"def {name}(" not in file.read_text():
            missing.append(nodeid)
    assert not missing, f"RUN_BEFORE in tests/conftest.py names tests that do not exist: {missing}"


def test_the_delivery_test_runs_in_the_group_of_the_test_it_precedes() -> None:
    from tests.conftest import RUN_BEFORE

    for moved, before in RUN_BEFORE.items():
        assert GROUPS.get(moved.split("::")[0]) == GROUPS.get(before.split("::")[0]) is not None
