"""Control for the committed golden digest (``tests/golden/dump.py``): a metadata database whose
results differ from the committed ones fails the check, naming each section that differs and
how to refresh the digests. The check itself runs on the Wednesday demo build of
``tests/monitor/test_demo_weekdays.py`` (no build of its own here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    assert "metric_results, alerts, notifications differ from demo_wed_8d.dump.json.gz" in message
    assert "python -m tests.golden.dump refresh" in message


def test_float_noise_passes_and_a_changed_verdict_does_not() -> None:
    row = {"value": 0.106743435742, "status": "ok", "summary": "x is 0.4992 (threshold 0.1728)"}
    noise = {
        **row,
        "value": 0.106743435742 * (1 + 1e-13),
        "summary": "x is 0.4993 (threshold 0.1728)",
    }
    assert golden.same(row, noise)
    assert not golden.same(row, {**row, "status": "alert"})
    assert not golden.same(row, {**row, "value": 0.1067435})
    assert not golden.same(row, {**row, "summary": "x is 0.4995 (threshold 0.1728)"})
    assert not golden.same(row, {**row, "summary": "y is 0.4992 (threshold 0.1728)"})


_DEMO_DATA_HASH = """
import hashlib, sys
from datetime import UTC, datetime
import numpy as np
from monitor import demo_scenario
if sys.argv[1] == "raw":  # the control: numpy's own exp, unrounded
    demo_scenario.sigmoid = lambda x: 1 / (1 + np.exp(-x))
h = hashlib.sha1()
for t in demo_scenario.churn_traffic(datetime(2026, 11, 18, tzinfo=UTC), days=3, scale=0.2):
    for c in t.columns:
        h.update(repr(c.to_pylist()).encode())
print(h.hexdigest())
"""
# numpy picks its exp/sin kernels by CPU; disabling AVX-512 here stands for another machine
_NO_AVX512 = "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"


def _demo_data_hash(mode: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _DEMO_DATA_HASH, mode],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip()


def _has_avx512() -> bool:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found  # numpy 2
    except ImportError:
        from numpy.core._multiarray_umath import __cpu_features__ as found  # numpy 1
    return bool(found.get("AVX512F"))


def test_the_demo_data_are_the_same_with_other_cpu_kernels() -> None:
    """The golden digest is exact, so the demo's data must not depend on the CPU: without
    AVX-512 kernels the tables are the same bytes. Control: numpy's unrounded exp differs
    (seen only on a CPU with AVX-512, where the two kernels exist)."""
    other = {"NPY_DISABLE_CPU_FEATURES": _NO_AVX512}
    assert _demo_data_hash("portable", {}) == _demo_data_hash("portable", other)
    if not _has_avx512():
        pytest.skip("no AVX-512 here: the control needs two exp kernels")
    assert _demo_data_hash("raw", {}) != _demo_data_hash("raw", other)
