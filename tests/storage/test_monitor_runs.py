"""``MonitoringStore.record_runs``: a batch of finished runs and their results in one
transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest
from sqlalchemy import Table, delete

from storage.metadata import MetadataStore
from storage.metadata.models_monitoring import MetricResultRow, MonitorRunRow
from storage.metadata.monitoring import FinishedRun, MonitoringStore, ResultQuery, _finite
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
        "dq",
        "m",
        T0 + day * DAY,
        T0 + (day + 1) * DAY,
        "backfill",
        1,
        status,
        error="boom" if status == "error" else None,
        rows_scanned=10,
        results=results,
        duration_s=0.5,
    )


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


def _raw(store: MetadataStore, table: str) -> list[tuple[object, ...]]:
    """The stored rows as the driver returns them (SQLite: the datetime text as written)."""
    with store.reading() as s:
        return [
            tuple(r) for r in s.connection().exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
        ]


def test_record_runs_stores_the_rows_a_core_insert_stores(clocked_store: MetadataStore) -> None:
    """The driver-level insert of :mod:`storage.metadata.bulk` writes, value for value, what
    SQLAlchemy's Core ``insert()`` wrote: datetimes in another zone and with microseconds,
    NaN/inf as NULL, ints as floats, NULL model, unicode and nested details; ids in row order."""
    plus2 = timezone(timedelta(hours=2))
    when = datetime(2026, 3, 1, 2, 30, 0, 123456, tzinfo=plus2)
    results = [
        MetricResult(
            source="monitor",
            source_name="dq",
            kind="data_quality",
            model=None if i % 3 == 0 else "m",
            window_start=when + (i // 4) * DAY,
            window_end=when + (i // 4 + 1) * DAY,
            tenant_id=f"t{i % 4}",
            model_version="*",
            column=f"c{i}",
            metric="null_rate",
            value=[0.25, float("nan"), 3, None][i % 4],
            threshold=[float("inf"), 0.5, None, -1e300][i % 4],
            status="ok",
            details={"n": i, "note": "café ✓", "nested": {"q": [1.5, None, "x"]}},
            definition_version=2,
            computed_at=None if i % 2 else when,
        )
        for i in range(12)
    ]
    runs = [_run(0), _run(1, "error", 0), _run(2)]
    runs[0] = FinishedRun(**{**runs[0].__dict__, "window_start": when, "duration_s": None})
    ms = MonitoringStore(clocked_store)
    ms.record_runs(runs, results)
    got_results, got_runs = (
        _raw(clocked_store, "metric_results"),
        _raw(clocked_store, "monitor_runs"),
    )
    ids = [r[0] for r in got_results]
    assert ids == sorted(ids) and len(set(ids)) == 12
    assert [r[9] for r in got_results] == [f"c{i}" for i in range(12)]  # row order kept

    # the same rows through the Core insert the store used before (fresh tables, same ids)
    now = clocked_store.now()
    with clocked_store.writing() as s:
        s.execute(delete(MetricResultRow))
        s.execute(delete(MonitorRunRow))
    with clocked_store.writing() as s:
        s.execute(
            cast(Table, MetricResultRow.__table__).insert(),
            [
                {
                    "id": ids[i],
                    "source": r.source,
                    "source_name": r.source_name,
                    "kind": r.kind,
                    "model": r.model,
                    "window_start": r.window_start,
                    "window_end": r.window_end,
                    "tenant_id": r.tenant_id,
                    "model_version": r.model_version,
                    "column_name": r.column,
                    "metric": r.metric,
                    "value": _finite(r.value),
                    "threshold": _finite(r.threshold),
                    "status": r.status,
                    "details": r.details,
                    "definition_version": r.definition_version,
                    "computed_at": r.computed_at or now,
                }
                for i, r in enumerate(results)
            ],
        )
        s.execute(
            cast(Table, MonitorRunRow.__table__).insert(),
            [
                {
                    "id": got[0],
                    "monitor": r.monitor,
                    "model": r.model,
                    "window_start": r.window_start,
                    "window_end": r.window_end,
                    "trigger": r.trigger,
                    "definition_version": r.definition_version,
                    "started_at": now,
                    "finished_at": now,
                    "status": r.status,
                    "error": r.error,
                    "rows_scanned": r.rows_scanned,
                    "results": r.results,
                    "duration_s": r.duration_s,
                }
                for got, r in zip(got_runs, runs, strict=True)
            ],
        )

    assert _raw(clocked_store, "metric_results") == got_results
    assert _raw(clocked_store, "monitor_runs") == got_runs


def test_record_runs_refuses_a_naive_datetime_and_stores_nothing(
    metadata_store: MetadataStore,
) -> None:
    ms = MonitoringStore(metadata_store)
    naive = MetricResult(**{**_result(1, 2.0).__dict__, "window_end": datetime(2026, 3, 3)})
    with pytest.raises(ValueError, match="naive datetime"):
        ms.record_runs([_run(0), _run(1)], [_result(0, 1.0), naive])
    assert ms.list_runs(monitor="dq")[1] == 0
    assert ms.query_results(ResultQuery(source_name="dq"))[1] == 0
