"""Control for the committed golden digest (``tests/golden/dump.py``): a metadata database whose
results differ from the committed ones fails the check, naming each section that differs and
how to refresh the digests. The check itself runs on the Wednesday demo build of
``tests/monitor/test_demo_weekdays.py`` (no build of its own here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.metadata import MetadataStore
from tests.golden import dump as golden


def test_a_changed_database_fails_the_digest_with_the_sections_named(tmp_path: Path) -> None:
    committed = json.loads(golden.DIGEST_FILE.read_text())
    assert set(committed["sections"]) == set(golden.GATING)
    assert committed["build"]["now"] == golden.NOW.isoformat()
    db = tmp_path / "metadata.sqlite"
    store = MetadataStore(f"sqlite:///{db}")
    store.upgrade()  # the real schema, no rows: every section but the empty deliveries differs
    store.dispose()
    with pytest.raises(AssertionError) as failed:
        golden.check_digest(db)
    message = str(failed.value)
    assert "metric_results, alerts, notifications differ from demo_wed_8d.json" in message
    assert "python -m tests.golden.dump refresh" in message
