"""``row_segments``: the segment masks of a window's rows, from Arrow's dictionary codes, are
those of comparing each row's strings (the former implementation, kept for columns with nulls)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from monitor.checks.common import _row_segments_objects, row_segments
from monitor.monitors import MonitorConfig


def _cfg(segments: list[str], by_version: bool) -> MonitorConfig:
    return MonitorConfig(
        name="m", model="m", kind="performance", segments=segments, by_version=by_version
    )


def _same(got: list[Any], want: list[Any]) -> None:
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert a.dtype == bool and a.tolist() == b.tolist()


def _tables() -> list[pa.Table]:
    rng = np.random.default_rng(3)
    names = ["b", "a", "ünï", "B", "a ", ""]
    out = []
    for n in (0, 1, 7, 500):
        t = [names[i] for i in rng.integers(0, 5, n)]
        v = [["v2", "v10", None, ""][i] for i in rng.integers(0, 4, n)]
        out.append(pa.table({"tenant_id": t, "model_version": v}))
        out.append(pa.table({"tenant_id": t, "model_version": [x or "v1" for x in v]}))
    chunked = pa.concat_tables([out[-1], out[-1].slice(3, 100)])
    large = chunked.cast(
        pa.schema([("tenant_id", pa.large_string()), ("model_version", pa.string())])
    )
    return [*out, chunked, large]


@pytest.mark.parametrize("segments", [["all", "tenant"], ["all"], ["tenant"]])
@pytest.mark.parametrize("by_version", [True, False])
def test_masks_equal_a_string_comparison(segments: list[str], by_version: bool) -> None:
    cfg = _cfg(segments, by_version)
    for table in _tables():
        _same(row_segments(cfg, table), _row_segments_objects(cfg, table))


def test_sorted_keys_and_versions_with_missing_as_empty() -> None:
    table = pa.table({"tenant_id": ["b", "a", "b", "c"], "model_version": ["2", None, "", "1"]})
    got = row_segments(_cfg(["all", "tenant"], True), table)
    assert [(k, m.tolist()) for k, m in got] == [
        (("*", "*"), [True] * 4),
        (("*", ""), [False, True, True, False]),
        (("*", "1"), [False, False, False, True]),
        (("*", "2"), [True, False, False, False]),
        (("a", "*"), [False, True, False, False]),
        (("b", "*"), [True, False, True, False]),
        (("c", "*"), [False, False, False, True]),
    ]
