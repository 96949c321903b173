"""``driftwatch init`` proposes performance bounds from the reference, so a 3-point accuracy
drop (0.944 → 0.911) alerts with the default monitors, realized and estimated, while the days
like the reference stay ``ok``. Real stores: DuckDB in memory, SQLite metadata."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from monitor.init_bounds import proposed_bounds
from monitor.monitors import default_monitors
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from storage.metadata.monitoring import MonitoringStore, ResultQuery
from storage.types import FeatureSpec, ModelSchema
from tests.support import duckdb_runner

T0 = datetime(2026, 5, 4, tzinfo=UTC)
DAY = timedelta(days=1)
TS = pa.timestamp("us", tz="UTC")
SCHEMA = ModelSchema("binary", (FeatureSpec("z", "numeric"),), scores=("score",))
# Logit scales whose calibrated scores give accuracy 0.944 and 0.911 (E[sigmoid(|s z|)]).
SCALE_944, SCALE_911 = 9.7516, 6.0121


def _rows(rng: np.random.Generator, n: int, scale: float) -> dict[str, np.ndarray]:
    """A calibrated model: label ~ Bernoulli(score), prediction = score >= 0.5."""
    z = rng.standard_normal(n)
    score = 1 / (1 + np.exp(-scale * z))
    return {
        "z": z,
        "score": score,
        "prediction": (score >= 0.5).astype(np.int64),
        "label": (rng.random(n) < score).astype(np.int64),
    }


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[MetadataStore, LogStore, MonitoringStore]]:
    meta = MetadataStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    meta.upgrade()
    ls = LogStore(":memory:")
    meta.create_model("loan", SCHEMA)
    ls.ensure_model("loan", SCHEMA)
    yield meta, ls, MonitoringStore(meta)
    ls.close()
    meta.dispose()


def _log_days(ls: LogStore, rng: np.random.Generator, scales: list[float], per_day: int) -> None:
    for d, scale in enumerate(scales):
        cols = _rows(rng, per_day, scale)
        label = cols.pop("label")
        ids = [f"d{d}-{i}" for i in range(per_day)]
        secs = rng.uniform(0, 86399, per_day)
        ls.append_inferences(
            "loan",
            pa.table(
                {
                    "request_id": ids,
                    "ts": pa.array([T0 + d * DAY + timedelta(seconds=float(s)) for s in secs], TS),
                    "tenant_id": ["acme"] * per_day,
                    "model_version": ["v1"] * per_day,
                    **cols,
                }
            ),
        )
        ls.append_labels("loan", pa.table({"request_id": ids, "label": label}))


def test_default_bounds_alert_on_a_three_point_accuracy_drop(env) -> None:
    meta, ls, ms = env
    rng = np.random.default_rng(14)
    ls.put_reference("loan", "base", pa.table(_rows(rng, 20_000, SCALE_944)))
    scales = [SCALE_944] * 5 + [SCALE_911] * 3
    _log_days(ls, rng, scales, per_day=2500)

    proposed = proposed_bounds(ls, "loan", SCHEMA, "base")
    assert proposed is not None
    assert set(proposed.bounds) == {"accuracy", "roc_auc", "f1"}
    lo, hi = proposed.bounds["accuracy"]
    assert hi is None and lo is not None
    # 3 standard errors of accuracy on a day of 2,500 rows below the reference's 0.944
    assert 0.944 - 3 * np.sqrt(0.944 * 0.056 / 2500) * 1.2 < lo < 0.944 - 0.01
    assert "2500 rows" in proposed.note and "median of 8 logged days" in proposed.note

    monitors = {
        m.kind: m
        for m in default_monitors(
            "loan", SCHEMA, "base", bounds=proposed.bounds, bounds_note=proposed.note
        )
    }
    perf, est = monitors["performance"], monitors["estimated_performance"]
    assert perf.bounds == est.bounds == {m: tuple(b) for m, b in proposed.bounds.items()}
    assert perf.description == proposed.note
    for cfg in (perf, est):
        ms.create_monitor(cfg.name, "loan", cfg.kind, cfg.to_json())
    runner = duckdb_runner(meta, ls)
    for cfg in (perf, est):
        runs = runner.backfill(cfg.name, T0, T0 + len(scales) * DAY)
        assert [r.status for r in runs] == ["ok"] * len(scales), [r.error for r in runs]
        rows, _ = ms.query_results(
            ResultQuery(source_name=cfg.name, tenant_id="*", metric="accuracy"), limit=100
        )
        status = {r.window_start: r.status for r in rows if r.model_version == "*"}
        expected = {T0 + d * DAY: "alert" if s == SCALE_911 else "ok" for d, s in enumerate(scales)}
        assert status == expected, cfg.kind


def test_without_logs_the_reference_is_cut_in_ten_chunks(env) -> None:
    _, ls, _ = env
    rng = np.random.default_rng(15)
    ls.put_reference("loan", "base", pa.table(_rows(rng, 5000, SCALE_944)))
    proposed = proposed_bounds(ls, "loan", SCHEMA, "base")
    assert proposed is not None and "windows of 500 rows" in proposed.note


def test_a_reference_without_labels_proposes_no_bounds(env) -> None:
    _, ls, _ = env
    rng = np.random.default_rng(16)
    rows = _rows(rng, 5000, SCALE_944)
    rows.pop("label")
    ls.put_reference("loan", "base", pa.table(rows))
    assert proposed_bounds(ls, "loan", SCHEMA, "base") is None
    monitors = {m.kind: m for m in default_monitors("loan", SCHEMA, "base")}
    assert monitors["performance"].bounds == {}
