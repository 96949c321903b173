"""Result shaping and Arrow conversions shared by the checks."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from monitor.monitors import MonitorConfig
from storage.types import ALL, MetricResult, ModelSchema

__all__ = [
    "feature_table",
    "floats",
    "no_data",
    "num",
    "plain",
    "ranked",
    "row_segments",
    "score_matrix",
    "strings",
]


def floats(column: Any) -> npt.NDArray[Any]:
    """A numeric or boolean Arrow column as float64, missing values NaN."""
    return np.asarray(column.cast("double").to_numpy(zero_copy_only=False), dtype=np.float64)


def strings(column: Any) -> npt.NDArray[Any]:
    """An Arrow column as an object array of strings (missing values None)."""
    return np.asarray(column.cast("string").to_pylist(), dtype=object)


def score_matrix(table: Any, scores: Iterable[str]) -> npt.NDArray[Any]:
    return np.column_stack([floats(table.column(c)) for c in scores])


def feature_table(table: Any, schema: ModelSchema, features: Iterable[str]) -> dict[str, Any]:
    """Features as DLE's table: numbers and booleans as float64 (NaN missing), categories as
    strings, the same conversion for the reference and every window."""
    out: dict[str, Any] = {}
    for name in features:
        spec = schema.feature(name)
        kind = spec.kind if spec is not None else "numeric"
        col = table.column(name)
        out[name] = floats(col) if kind in ("numeric", "boolean") else strings(col)
    return out


def _coded(column: Any, fill: str | None = None) -> tuple[list[Any], npt.NDArray[Any]] | None:
    """An Arrow string column as (sorted distinct values, each row's index among them); None
    when it holds nulls (``fill`` replaces them first) or is not a plain string column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not isinstance(column, pa.Array) or not (
        pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    ):
        return None
    if fill is not None and column.null_count:
        column = pc.fill_null(column, fill)
    if column.null_count:
        return None
    enc = column.dictionary_encode()
    names = enc.dictionary.to_pylist()
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    codes = rank[enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
    return [names[i] for i in order], codes


def row_segments(cfg: MonitorConfig, table: Any) -> list[tuple[tuple[str, str], npt.NDArray[Any]]]:
    """(tenant or "*", version or "*") -> row mask of a window's rows (a sample or the
    labelled rows), in the monitor's segmentation."""
    # each column's distinct values and row codes once (Arrow's hash table), then one integer
    # comparison per segment instead of one Python string comparison per row and segment
    tenants = _coded(table.column("tenant_id"))
    versions = _coded(table.column("model_version"), fill="")
    if tenants is None or versions is None:
        return _row_segments_objects(cfg, table)
    segs: list[tuple[tuple[str, str], npt.NDArray[Any]]] = []
    if "all" in cfg.segments:
        segs.append(((ALL, ALL), np.ones(len(tenants[1]), bool)))
        uv, vcodes = versions
        if cfg.by_version and len(uv) > 1:
            segs += [((ALL, v), vcodes == i) for i, v in enumerate(uv)]
    if "tenant" in cfg.segments:
        ut, tcodes = tenants
        segs += [((t, ALL), tcodes == i) for i, t in enumerate(ut)]
    return segs


def _row_segments_objects(
    cfg: MonitorConfig, table: Any
) -> list[tuple[tuple[str, str], npt.NDArray[Any]]]:
    """:func:`row_segments` by comparing Python strings (columns with nulls, other types)."""
    tenants = np.asarray(table.column("tenant_id").to_pylist(), dtype=object)
    versions = np.asarray(
        [v or "" for v in table.column("model_version").to_pylist()], dtype=object
    )
    segs: list[tuple[tuple[str, str], npt.NDArray[Any]]] = []
    if "all" in cfg.segments:
        segs.append(((ALL, ALL), np.ones(len(tenants), bool)))
        uv = sorted(set(versions.tolist()))
        if cfg.by_version and len(uv) > 1:
            segs += [((ALL, v), versions == v) for v in uv]
    if "tenant" in cfg.segments:
        segs += [((t, ALL), tenants == t) for t in sorted(set(tenants.tolist()))]
    return segs


def no_data(
    base: dict[str, Any], tenant: str, version: str, metric: str, details: dict[str, Any]
) -> MetricResult:
    """A model-level metric that could not be computed for this segment (the reason in
    ``details``)."""
    return MetricResult(
        **base,
        tenant_id=tenant,
        model_version=version,
        column="",
        metric=metric,
        value=None,
        threshold=None,
        status="no_data",
        details=details,
    )


def num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if np.isfinite(v) else None


def plain(value: Any) -> Any:
    """Details as plain JSON: numpy scalars to Python, NaN/inf to None."""
    # the common exact types first: every result's details pass here (~100 values a window)
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None
    if t is str or t is int or t is bool or value is None:
        return value
    if t is dict:
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if np.isfinite(f) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int):
        return value
    return str(value)


def ranked(results: Iterable[MetricResult]) -> list[MetricResult]:
    """Results sorted alert first, then warn, ok, no_data (for listings)."""
    order = {"alert": 0, "warn": 1, "ok": 2, "no_data": 3}
    return sorted(results, key=lambda r: (order[r.status], r.tenant_id, r.column, r.metric))
