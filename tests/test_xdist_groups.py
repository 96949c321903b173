"""The pytest-xdist groups of ``tests/conftest.py`` name files that exist: a file renamed
without its entry would lose its grouping silently (its costly fixture built in each worker)."""

from __future__ import annotations

from tests.conftest import GROUPS
from tests.support import ROOT


def test_every_grouped_file_exists() -> None:
    missing = sorted(path for path in GROUPS if not (ROOT / path).is_file())
    assert not missing, f"GROUPS in tests/conftest.py lists files that do not exist: {missing}"
