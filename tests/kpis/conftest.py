"""Fixtures for KPI tests: real DuckDB log store and metadata store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from monitor.kpis.service import KpiService
from storage.kpi_sql import KpiQueries
from storage.logstore import LogStore
from storage.metadata import MetadataStore
from tests.storage import conftest as _db

metadata_url = _db.migrated_url  # a copy of a database migrated once per session

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAYS = 90
# weekday factors (Mon..Sun): weekends have fewer sessions and convert worse
SESSION_FACTOR = np.array([1.0, 1.05, 1.1, 1.05, 0.95, 0.55, 0.5])
CONVERSION_FACTOR = np.array([1.0, 1.0, 1.02, 1.0, 0.95, 0.75, 0.7])


@pytest.fixture
def stores(tmp_path: Path, metadata_url: str) -> Iterator[tuple[MetadataStore, LogStore]]:
    meta = MetadataStore(metadata_url)
    meta.upgrade()
    logs = LogStore(tmp_path / "logs.duckdb")
    try:
        yield meta, logs
    finally:
        logs.close()
        meta.dispose()


@pytest.fixture
def kpis(stores: tuple[MetadataStore, LogStore]) -> KpiService:
    meta, logs = stores
    return KpiService(meta, logs, queries=KpiQueries(logs))


def seasonal_events(
    tenants: dict[str, tuple[int, float]],
    *,
    days: int = DAYS,
    drops: dict[str, dict[int, float]] | None = None,
    seed: int = 0,
) -> pa.Table:
    """``session`` and ``conversion`` events: tenant -> (sessions per weekday, conversion
    rate), with weekly seasonality and ``drops[tenant][day] = factor`` on the rate."""
    rng = np.random.default_rng(seed)
    drops = drops or {}
    parts: list[pa.Table] = []
    for tenant, (base, rate) in tenants.items():
        for day in range(days):
            wd = (START + timedelta(days=day)).weekday()
            n = max(1, round(base * SESSION_FACTOR[wd] * (1 + rng.normal(0, 0.03))))
            p = rate * CONVERSION_FACTOR[wd] * drops.get(tenant, {}).get(day, 1.0)
            k = int(rng.binomial(n, p))
            day0 = int((START + timedelta(days=day)).timestamp() * 1e6)
            ts = day0 + rng.integers(0, 86_400_000_000, n + k)
            names = np.array(["session"] * n + ["conversion"] * k)
            idx = pa.array(np.arange(n + k).astype(str))
            parts.append(
                pa.table(
                    {
                        "event_id": pc.binary_join_element_wise(f"{tenant}-{day}-", idx, ""),
                        "tenant_id": pa.array([tenant] * (n + k)),
                        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                        "name": pa.array(names),
                        "value": pa.array(np.ones(n + k)),
                    }
                )
            )
    return pa.concat_tables(parts)
