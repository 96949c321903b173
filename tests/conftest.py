"""Session-wide fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.storage.conftest import Templates


@pytest.fixture(scope="session")
def metadata_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """Metadata databases migrated once per session (``migrated_url`` copies them)."""
    with ExitStack() as stack:
        yield Templates(tmp_path_factory.mktemp("metadata-template"), stack)
