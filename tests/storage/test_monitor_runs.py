"""``MonitoringStore.record_runs``: a batch of finished runs and their results in one
transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.metadata import MetadataStore
from storage.metadata.monitoring import FinishedRun, MonitoringStore, ResultQuery
from storage.types import MetricResult

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _result(day: int, value: float) -> MetricResult:
    return MetricResult(
        source="monitor",
        source_name="dq",
        kind="data_quality",
        model="m",
        window_start=T0 + day * DAY,
        window_end=T0 + (day + 1) * DAY,
        tenant_id="*",
        model_version="*",
        column="",
        metric="row_count",
        value=value,
        threshold=None,
        status="ok",
        details={"n": int(value)},
        definition_version=1,
    )


def _run(day: int, status: str = "ok", results: int = 1) -> FinishedRun:
    return FinishedRun(
        "dq", "m", T0 + day * DAY, T0 + (day + 1) * DAY, "backfill", 1, status,
        error="boom" if status == "error" else None, rows_scanned=10, results=results,
        duration_s=0.5,
    )  # fmt: skip


def test_record_runs_replaces_ok_windows_and_keeps_a_failed_windows_results(
    metadata_store: MetadataStore,
) -> None:
    ms = MonitoringStore(metadata_store)
    ms.save_results([_result(d, 1.0) for d in range(3)])
    # day 0 and 2 re-run fine, day 1 fails: its stored result stays
    ms.record_runs([_run(0), _run(1, "error", 0), _run(2)], [_result(0, 5.0), _result(2, 7.0)])
    res, total = ms.query_results(ResultQuery(source_name="dq"))
    assert total == 3
    assert {r.window_start: r.value for r in res} == {T0: 5.0, T0 + DAY: 1.0, T0 + 2 * DAY: 7.0}
    runs, n = ms.list_runs(monitor="dq")
    assert n == 3
    by_day = {r.window_start: r for r in runs}
    assert by_day[T0 + DAY].status == "error" and by_day[T0 + DAY].error == "boom"
    assert by_day[T0].finished_at is not None and by_day[T0].rows_scanned == 10
    assert ms.last_window_end("dq") == T0 + 3 * DAY
    assert set(ms.last_runs("dq")) == {T0, T0 + DAY, T0 + 2 * DAY}


def test_record_runs_is_one_transaction(metadata_store: MetadataStore) -> None:
    ms = MonitoringStore(metadata_store)
    bad = _result(1, 2.0)
    bad = MetricResult(**{**bad.__dict__, "status": "maybe"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="maybe"):
        ms.record_runs([_run(0), _run(1)], [_result(0, 1.0), bad])
    assert ms.list_runs(monitor="dq")[1] == 0
    assert ms.query_results(ResultQuery(source_name="dq"))[1] == 0
