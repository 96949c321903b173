"""The figures tables the benchmarks print: a row shows a target only where one applies (issue
17, item 4: the 100k-row direct append was printed against the 250k-row target and read as a
miss)."""

from __future__ import annotations

import pytest

from benchmarks.ingest import DIRECT_NOTES, TARGETS, _report


def test_a_row_without_a_target_shows_no_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    figures = _report(
        [
            ("direct append from Arrow, 100k/batch", 390_000.0, "context only", 0),
            ("direct append from Arrow, 250k/batch", 1_000_000.0, "the target", 500_000),
        ],
        naive=500.0,
    )
    lines = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    context = lines["direct append from Arrow, 100k/batch"].split()
    assert "nan" not in context
    assert context[5:8] == ["390,000", "-", "-"]  # rows/s, target, x target
    assert lines["direct append from Arrow, 250k/batch"].split()[5:8] == [
        "1,000,000",
        "500000",
        "2.00",
    ]
    assert figures["direct_append_from_arrow_100k_batch"] == 390_000


def test_only_the_issues_batch_size_is_held_to_the_direct_target() -> None:
    # issue 17 sets >= 500k rows/s for 250k-row batches; 100k-row ones are below DuckDB's row
    # group and pay their compression inside the commit (docs/architecture.md)
    assert TARGETS["direct"] == 500_000
    assert {batch for batch, (is_target, _) in DIRECT_NOTES.items() if is_target} == {250_000}
    assert "row group" in DIRECT_NOTES[100_000][1]
