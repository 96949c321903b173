"""The profile kernel: Arrow record batches in, partial hourly profile rows out, and the merge of
partials. Every engine (DuckDB on the embedded store, DuckDB on a Parquet lake, Apache Spark)
holds no profile semantics of its own: it reads rows and runs this.

A profile row (:data:`PROFILE_SCHEMA`) describes one column in one (hour, tenant, model version)
for one set of bin edges (``bins_key``; ``""`` for categorical columns and the rows pseudo
column): non-missing ``count``, ``missing``, ``n_finite``, ``min``/``max``/``sum``/``sum_sq``
over finite values, histogram ``counts`` on right-closed bins (bucket ``i`` counts values in
``(e_{i-1}, e_i]``, found by :class:`detectors.bucket_grid.BucketGrid` as for in-memory
profiles and counted by the compiled loops of :mod:`storage.profile_kernels`) or, for a
categorical column, the count of every category (``categories``, sorted by UTF-8 bytes; any
vocabulary and top-K limit is applied later, when a window is read). NaN and NULL are missing;
+-inf are counted (end buckets) but are not finite. Booleans are categories ``true``/``false``.

Why nothing is binned in SQL: dialects differ on NULL and NaN (Spark's ``isnan(NULL)`` is false,
DuckDB's is NULL) and on edge closure (Spark's Bucketizer is ``[a, b)``); one binary-search loop
over float64 values decides every bucket the same way everywhere.

Partials merge by (hour, tenant, version, column, bins key): counts add, min/max take the
extremes, sums add (float sums may differ in the last bits with the order of addition; compare
them with a relative tolerance of 1e-12), category counts add per name.

Example
-------
>>> import pyarrow as pa
>>> from datetime import datetime, UTC
>>> spec = ProfileSpec({"x": ((0.0, 1.0),)}, ("plan",))
>>> batch = pa.table({"ts": pa.array([datetime(2026, 1, 1, 5, tzinfo=UTC)] * 2),
...                   "tenant_id": ["a", "a"], "model_version": [None, None],
...                   "x": [1.0, 2.0], "plan": ["free", None]})
>>> rows = profile_batch(batch, spec)
>>> sorted(rows.column("column_name").to_pylist())
['__rows__', 'plan', 'x']
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from detectors.bucket_grid import BucketGrid
from storage.row_kernel import LabelAccumulator, LabelSpec, SampleAccumulator

__all__ = [
    "PROFILE_SCHEMA",
    "ROWS_COLUMN",
    "NumericCounter",
    "ProfileAccumulator",
    "ProfileSpec",
    "edges_key",
    "merge_profiles",
    "numeric_rows",
    "profile_batch",
    "segment_rows",
    "sort_profiles",
]

HOUR = timedelta(hours=1)
ROWS_COLUMN = "__rows__"  # pseudo column: count = rows, min/max = first/last ts (epoch seconds)
TS = pa.timestamp("us", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000
KEY_COLUMNS = ("hour", "tenant_id", "model_version", "column_name", "bins_key")

PROFILE_SCHEMA = pa.schema(
    [
        ("hour", TS),
        ("tenant_id", pa.string()),
        ("model_version", pa.string()),
        ("column_name", pa.string()),
        ("bins_key", pa.string()),
        ("count", pa.int64()),
        ("missing", pa.int64()),
        ("n_finite", pa.int64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("sum", pa.float64()),
        ("sum_sq", pa.float64()),
        ("counts", pa.list_(pa.int64())),
        ("categories", pa.list_(pa.string())),
    ]
)


@functools.lru_cache(maxsize=4096)
def _edges_key(edges: tuple[float, ...]) -> str:
    blob = ",".join(repr(float(e)) for e in edges)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def edges_key(edges: Sequence[float]) -> str:
    """Stable key of a set of bin edges (floats round-trip exactly through ``repr``)."""
    if isinstance(edges, tuple):
        return _edges_key(edges)
    blob = ",".join(repr(float(e)) for e in edges)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ProfileSpec:
    """What to profile for a model: numeric columns with their bin edge sets, categorical
    columns (any type; values compared as strings, booleans as ``true``/``false``)."""

    numeric: dict[str, tuple[tuple[float, ...], ...]] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    # spec format 2 (storage.row_kernel): a bottom-k sample per (hour, tenant, version) with
    # these columns, and label aggregates from the labels joined to the rows
    sample_k: int = 0
    sample_columns: tuple[str, ...] = ()
    labels: LabelSpec | None = None

    @functools.cached_property
    def key(self) -> str:
        content: dict[str, Any] = {
            "n": {c: sorted(edges_key(e) for e in es) for c, es in sorted(self.numeric.items())},
            "c": sorted(self.categorical),
        }
        if self.sample_k:  # format-1 specs keep their keys
            content["s"] = [self.sample_k, sorted(self.sample_columns)]
        if self.labels is not None:
            content["l"] = self.labels.to_json()
        blob = json.dumps(content, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    @property
    def format(self) -> int:
        """1: profiles only; 2: also the sample and label aggregates."""
        return 2 if self.sample_k or self.labels is not None else 1

    def merged(self, other: ProfileSpec) -> ProfileSpec:
        numeric = {c: tuple(es) for c, es in self.numeric.items()}
        for c, es in other.numeric.items():
            have = {edges_key(e) for e in numeric.get(c, ())}
            numeric[c] = numeric.get(c, ()) + tuple(e for e in es if edges_key(e) not in have)
        cats = tuple(dict.fromkeys((*self.categorical, *other.categorical)))
        return ProfileSpec(
            numeric,
            cats,
            max(self.sample_k, other.sample_k),
            tuple(dict.fromkeys((*self.sample_columns, *other.sample_columns))),
            self.labels if self.labels is not None else other.labels,
        )

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON (edges as floats: ``repr`` round-trips them exactly; +-inf as
        strings), for the spec endpoint and a job's command line."""
        out: dict[str, Any] = {
            "key": self.key,
            "format": self.format,
            "numeric": {
                c: [[_float_json(e) for e in edges] for edges in es]
                for c, es in self.numeric.items()
            },
            "categorical": list(self.categorical),
        }
        if self.sample_k:
            out["sample"] = {"k": self.sample_k, "columns": list(self.sample_columns)}
        if self.labels is not None:
            out["labels"] = self.labels.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProfileSpec:
        """The inverse of :meth:`to_json`; raises ``ValueError`` naming the bad field."""
        try:
            numeric = {
                str(c): tuple(tuple(float(e) for e in edges) for edges in es)
                for c, es in dict(data.get("numeric") or {}).items()
            }
            cats = tuple(str(c) for c in data.get("categorical") or ())
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"profile spec: numeric edges must be lists of numbers: {exc}"
            ) from exc
        sample = data.get("sample") or {}
        try:
            k = int(sample.get("k", 0))
            sample_columns = tuple(str(c) for c in sample.get("columns") or ())
            labels = LabelSpec.from_json(data["labels"]) if data.get("labels") else None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ValueError(f"profile spec: bad sample or labels: {exc}") from exc
        if k < 0:
            raise ValueError(f"profile spec: sample.k must be >= 0, not {k}")
        spec = cls(numeric, cats, k, sample_columns, labels)
        if "key" in data and data["key"] != spec.key:
            raise ValueError(f"profile spec: key {data['key']!r} does not match its content")
        return spec


def _float_json(v: float) -> float | str:
    return v if np.isfinite(v) else ("inf" if v > 0 else "-inf")


def hour_of(index: int) -> datetime:
    return EPOCH + int(index) * HOUR


class NumericCounter:
    """Histogram counts and moments of numeric columns per group number, counted batch by batch
    by the compiled loops (the one counting path of every engine).

    ``hists[(column, bins key)]`` is ``[group, bucket]``; ``moments[column]`` the accumulators
    of :func:`storage.profile_kernels.new_moments`.
    """

    def __init__(self, spec: ProfileSpec, numeric: Sequence[str]) -> None:
        from storage import profile_kernels as kern  # numba: imported when first profiling

        self._kern = kern
        self.numeric = list(numeric)
        self.ekeys = {c: [edges_key(e) for e in spec.numeric[c]] for c in self.numeric}
        self.grids = {
            (c, k): _grid(tuple(edges))
            for c in self.numeric
            for edges, k in zip(spec.numeric[c], self.ekeys[c], strict=True)
        }
        self.hists = {
            key: np.zeros((8, g.edges.size + 1), np.int64) for key, g in self.grids.items()
        }
        self.moments = {c: kern.new_moments(8) for c in self.numeric}
        self._scratch = np.empty(0, np.int32)

    def add(
        self, columns: Sequence[pa.Array | pa.ChunkedArray], gids: npt.NDArray[Any], n_groups: int
    ) -> None:
        """Count ``columns`` (one per numeric column, in order) of rows in groups ``gids``;
        ``n_groups`` is the number of groups so far (the arrays grow to it)."""
        kern = self._kern
        gids = np.ascontiguousarray(gids, dtype=np.intp)
        if self._scratch.size < gids.size:
            self._scratch = np.empty(gids.size, np.int32)
        for c, col in zip(self.numeric, columns, strict=True):
            ints, floats = self.moments[c]
            if ints.shape[0] < n_groups:
                rows = max(n_groups, 2 * ints.shape[0])
                self.moments[c] = ints, floats = kern.grown_moments(ints, floats, rows)
            x = col.to_numpy(zero_copy_only=False)
            x = np.ascontiguousarray(x, dtype=np.float64).view()
            x.setflags(write=False)  # one compiled variant (Arrow's are read-only)
            for i, k in enumerate(self.ekeys[c]):
                arr = self.hists[(c, k)]
                if arr.shape[0] < n_groups:
                    rows = max(n_groups, 2 * arr.shape[0])
                    grown = np.zeros((rows, arr.shape[1]), np.int64)
                    grown[: arr.shape[0]] = arr
                    self.hists[(c, k)] = arr = grown
                kern.count_column(
                    x, gids, self.grids[(c, k)], arr, ints, floats, i == 0, self._scratch
                )


@functools.lru_cache(maxsize=256)
def _grid(edges: tuple[float, ...]) -> BucketGrid:
    return BucketGrid(np.asarray(edges, dtype=np.float64))


def numeric_rows(
    groups: list[tuple[datetime, str, str]],
    rows: npt.NDArray[Any],
    counter: NumericCounter,
) -> pa.Table:
    """The numeric columns' profile rows, built column-wise: one block of len(groups) rows per
    (column, bins). ``rows[i]`` is the counter's group of ``groups[i]`` (-1: none, all zero)."""
    from storage.profile_kernels import COUNT, FINITE, MAX, MIN, MISSING, SUM, SUM_SQ

    n_groups = len(groups)
    hour = pa.array([g[0] for g in groups], TS)
    tenant = pa.array([g[1] for g in groups], pa.string())
    version = pa.array([g[2] for g in groups], pa.string())
    absent = rows < 0
    take = np.where(absent, 0, rows)
    blocks = []
    for c in counter.numeric:
        ints, floats = (a[take] for a in counter.moments[c])
        ints[absent] = 0
        floats[absent] = (0.0, 0.0, np.inf, -np.inf)
        none = ints[:, FINITE] == 0  # no finite value: min and max are NULL
        lo = pa.array(floats[:, MIN], pa.float64(), mask=none)
        hi = pa.array(floats[:, MAX], pa.float64(), mask=none)
        common = [
            pa.array(ints[:, COUNT]),
            pa.array(ints[:, MISSING]),
            pa.array(ints[:, FINITE]),
            lo,
            hi,
            pa.array(floats[:, SUM]),
            pa.array(floats[:, SUM_SQ]),
        ]
        for k in counter.ekeys[c]:
            counts = counter.hists[(c, k)][take]
            counts[absent] = 0
            offsets = np.arange(0, counts.size + 1, counts.shape[1], dtype=np.int32)
            hist = pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(counts.reshape(-1), pa.int64())
            )
            blocks.append(
                pa.table(
                    [
                        hour,
                        tenant,
                        version,
                        pa.array(np.full(n_groups, c, dtype=object), pa.string()),
                        pa.array(np.full(n_groups, k, dtype=object), pa.string()),
                        *common,
                        hist,
                        pa.nulls(n_groups, pa.list_(pa.string())),
                    ],
                    schema=PROFILE_SCHEMA,
                )
            )
    return pa.concat_tables(blocks) if blocks else PROFILE_SCHEMA.empty_table()


def segment_rows(
    groups: list[tuple[datetime, str, str]],
    n: npt.NDArray[Any],
    t0_us: npt.NDArray[Any],
    t1_us: npt.NDArray[Any],
) -> pa.Table:
    """The rows pseudo column's profile rows: count = rows, min/max = first/last ts (epoch
    seconds) of each (hour, tenant, version)."""
    n = np.asarray(n, np.int64)
    size = len(groups)
    return pa.table(
        [
            pa.array([g[0] for g in groups], TS),
            pa.array([g[1] for g in groups], pa.string()),
            pa.array([g[2] for g in groups], pa.string()),
            pa.array(np.full(size, ROWS_COLUMN, dtype=object), pa.string()),
            pa.array(np.full(size, "", dtype=object), pa.string()),
            pa.array(n),
            pa.array(np.zeros(size, np.int64)),
            pa.array(n),
            pa.array(np.asarray(t0_us, np.int64) / 1e6),
            pa.array(np.asarray(t1_us, np.int64) / 1e6),
            pa.array(np.zeros(size)),
            pa.array(np.zeros(size)),
            pa.nulls(size, pa.list_(pa.int64())),
            pa.nulls(size, pa.list_(pa.string())),
        ],
        schema=PROFILE_SCHEMA,
    )


def _category_strings(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A categorical column's values as strings (NULL stays NULL): booleans ``true``/``false``
    as DuckDB's ``CAST(... AS VARCHAR)`` gives them."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
        return col.cast(pa.string())
    if pa.types.is_string(col.type):
        return col
    return col.cast(pa.string())


class ProfileAccumulator:
    """Partial hourly profiles of a stream of record batches: :meth:`add` each batch, then
    :meth:`rows`. Groups (hour, tenant, version) are numbered as they appear, across batches, so
    memory grows with the groups and categories seen, not the rows.

    A batch holds ``ts`` (a UTC timestamp, never NULL), ``tenant_id`` (string, never NULL),
    ``model_version`` (string; NULL is the version ``""``) and the spec's columns; a spec column
    missing from the batch is not profiled (as the DuckDB engine skips columns its table lacks).
    """

    def __init__(self, spec: ProfileSpec, columns: Iterable[str] | None = None) -> None:
        have = None if columns is None else set(columns)
        self.spec = spec
        self.numeric = [c for c in spec.numeric if spec.numeric[c] and (have is None or c in have)]
        self.categorical = [c for c in spec.categorical if have is None or c in have]
        self._keymap: dict[tuple[int, str, str], int] = {}
        self._n = np.zeros(0, np.int64)
        self._t0 = np.zeros(0, np.int64)
        self._t1 = np.zeros(0, np.int64)
        self._counter = NumericCounter(spec, self.numeric) if self.numeric else None
        self._cats: dict[str, list[pa.Table]] = {c: [] for c in self.categorical}
        self._sample = (
            SampleAccumulator(
                spec.sample_k, [c for c in spec.sample_columns if have is None or c in have]
            )
            if spec.sample_k
            else None
        )
        self._labels = LabelAccumulator(spec.labels) if spec.labels is not None else None

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Count one batch."""
        if batch.num_rows == 0:
            return
        names = batch.schema.names
        for need in ("ts", "tenant_id"):
            if need not in names:
                raise ValueError(f"profile batch: column {need!r} is missing (have {names})")
        ts = batch.column(names.index("ts"))
        if ts.null_count:
            raise ValueError(f"profile batch: column 'ts' has {ts.null_count} NULL values")
        if not pa.types.is_timestamp(ts.type):
            raise ValueError(f"profile batch: column 'ts' must be a timestamp, not {ts.type}")
        us = pc.cast(ts, pa.timestamp("us", tz=ts.type.tz)).cast(pa.int64())
        us_np = np.asarray(us.to_numpy(zero_copy_only=False), np.int64)
        hour = us_np // _US_PER_HOUR  # floor division: exact at every hour boundary
        tenant = batch.column(names.index("tenant_id"))
        if tenant.null_count:
            raise ValueError(
                f"profile batch: column 'tenant_id' has {tenant.null_count} NULL values"
            )
        if "model_version" in names:
            mv = pc.fill_null(_category_strings(batch.column(names.index("model_version"))), "")
        else:
            mv = pa.array([""] * batch.num_rows, pa.string())
        t_enc = _category_strings(tenant).dictionary_encode()
        v_enc = mv.dictionary_encode()
        t_code = t_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        v_code = v_enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        t_names = t_enc.dictionary.to_pylist()
        v_names = v_enc.dictionary.to_pylist()
        h0 = int(hour.min())
        nt, nv = len(t_names), len(v_names)
        combo = ((hour - h0) * nt + t_code) * nv + v_code
        uniq, inverse = np.unique(combo, return_inverse=True)
        local = np.empty(uniq.size, np.int64)
        for i, u in enumerate(uniq.tolist()):
            rest, v = divmod(u, nv)
            h, t = divmod(rest, nt)
            key = (h + h0, t_names[t], v_names[v])
            local[i] = self._keymap.setdefault(key, len(self._keymap))
        gids = local[inverse.reshape(-1)]
        n_groups = len(self._keymap)
        self._grow(n_groups)
        self._n += np.bincount(gids, minlength=self._n.size)
        seg = pa.table({"g": gids, "t": us}).group_by("g").aggregate([("t", "min"), ("t", "max")])
        g = seg.column("g").to_numpy()
        np.minimum.at(self._t0, g, seg.column("t_min").to_numpy())
        np.maximum.at(self._t1, g, seg.column("t_max").to_numpy())
        if self._counter is not None:
            self._counter.add([batch.column(names.index(c)) for c in self.numeric], gids, n_groups)
        gid_arr = pa.array(gids)
        for c in self.categorical:
            vals = _category_strings(batch.column(names.index(c)))
            counted = (
                pa.table({"g": gid_arr, "v": vals})
                .group_by(["g", "v"])
                .aggregate([([], "count_all")])
            )
            self._cats[c].append(counted)
        if self._sample is not None or self._labels is not None:
            ids_missing = None
            if "request_id" in names:
                ids = batch.column(names.index("request_id"))
                if ids.null_count:
                    ids_missing = np.asarray(ids.is_null().to_numpy(zero_copy_only=False), bool)
            if self._sample is not None:
                hours = pa.array(hour * _US_PER_HOUR, pa.int64()).cast(TS)
                self._sample.add(batch, hours, mv, gids, n_groups)
            if self._labels is not None:
                self._labels.add(batch, gids, n_groups, ids_missing)

    def samples(self) -> pa.Table:
        """The bottom-k sample rows of every group seen (``storage.row_kernel``); empty when
        the spec asks for no sample."""
        from storage.row_kernel import SAMPLE_BASE

        return SAMPLE_BASE.empty_table() if self._sample is None else self._sample.rows()

    def label_rows(self) -> pa.Table:
        """The label aggregates of every group seen (``storage.row_kernel.LABEL_SCHEMA``)."""
        from storage.row_kernel import LABEL_SCHEMA

        if self._labels is None:
            return LABEL_SCHEMA.empty_table()
        keys = sorted(self._keymap.items(), key=lambda kv: kv[1])
        return self._labels.rows([(hour_of(h), t, v) for (h, t, v), _ in keys])

    def _grow(self, n_groups: int) -> None:
        if self._n.size >= n_groups:
            return
        size = max(n_groups, 2 * self._n.size, 8)
        n, t0, t1 = self._n, self._t0, self._t1
        self._n = np.zeros(size, np.int64)
        self._t0 = np.full(size, np.iinfo(np.int64).max, np.int64)
        self._t1 = np.full(size, np.iinfo(np.int64).min, np.int64)
        self._n[: n.size], self._t0[: t0.size], self._t1[: t1.size] = n, t0, t1

    def rows(self) -> pa.Table:
        """The profile rows of every group seen (schema :data:`PROFILE_SCHEMA`)."""
        if not self._keymap:
            return PROFILE_SCHEMA.empty_table()
        keys = sorted(self._keymap.items(), key=lambda kv: kv[1])
        groups = [(hour_of(h), t, v) for (h, t, v), _ in keys]
        size = len(groups)
        parts = [segment_rows(groups, self._n[:size], self._t0[:size], self._t1[:size])]
        if self._counter is not None:
            parts.append(numeric_rows(groups, np.arange(size, dtype=np.int64), self._counter))
        for c in self.categorical:
            parts.append(_categorical_rows(c, groups, self._cats[c]))
        return pa.concat_tables(parts)


def _categorical_rows(
    column: str, groups: list[tuple[datetime, str, str]], counted: list[pa.Table]
) -> pa.Table:
    """One column's category rows, one per group, from (g, v, count_all) partial counts."""
    size = len(groups)
    table = pa.concat_tables(counted) if counted else None
    if table is not None and len(counted) > 1:
        table = (
            table.group_by(["g", "v"])
            .aggregate([("count_all", "sum")])
            .rename_columns(["g", "v", "count_all"])
        )
    g = np.zeros(0, np.int64) if table is None else table.column("g").to_numpy()
    n = np.zeros(0, np.int64) if table is None else table.column("count_all").to_numpy()
    v = pa.array([], pa.string()) if table is None else table.column("v").combine_chunks()
    is_null = v.is_null().to_numpy(zero_copy_only=False)
    missing = np.bincount(g[is_null], weights=n[is_null], minlength=size).astype(np.int64)
    present = np.bincount(g[~is_null], weights=n[~is_null], minlength=size).astype(np.int64)
    keep = ~is_null
    g, n, v = g[keep], n[keep], v.filter(pa.array(keep))
    # sort by group, then value by UTF-8 bytes (code points), as sorted() and DuckDB give
    idx = pc.sort_indices(pa.table({"g": g, "v": v}), [("g", "ascending"), ("v", "ascending")])
    ix = idx.to_numpy()
    g, n, v = g[ix], n[ix], v.take(idx)
    offsets = np.zeros(size + 1, np.int64)
    np.cumsum(np.bincount(g, minlength=size), out=offsets[1:])
    off = pa.array(offsets.astype(np.int32))
    return pa.table(
        [
            pa.array([x[0] for x in groups], TS),
            pa.array([x[1] for x in groups], pa.string()),
            pa.array([x[2] for x in groups], pa.string()),
            pa.array(np.full(size, column, dtype=object), pa.string()),
            pa.array(np.full(size, "", dtype=object), pa.string()),
            pa.array(present),
            pa.array(missing),
            pa.array(np.zeros(size, np.int64)),
            pa.nulls(size, pa.float64()),
            pa.nulls(size, pa.float64()),
            pa.array(np.zeros(size)),
            pa.array(np.zeros(size)),
            pa.ListArray.from_arrays(off, pa.array(n, pa.int64())),
            pa.ListArray.from_arrays(off, v.cast(pa.string())),
        ],
        schema=PROFILE_SCHEMA,
    )


def profile_batch(batch: pa.RecordBatch | pa.Table, spec: ProfileSpec) -> pa.Table:
    """Partial hourly profile rows of one Arrow batch (see :class:`ProfileAccumulator` for the
    columns a batch holds). Partials of several batches combine with :func:`merge_profiles`."""
    acc = ProfileAccumulator(spec, batch.schema.names)
    acc.add(batch)
    return acc.rows()


def merge_profiles(parts: pa.Table | Sequence[pa.Table]) -> pa.Table:
    """Merge partial profile rows by (hour, tenant, version, column, bins key): counts add,
    min/max take the extremes (NULL when no part has a finite value), sums add, histograms add
    bucket by bucket, category counts add by name (sorted by UTF-8 bytes)."""
    table = (
        parts
        if isinstance(parts, pa.Table)
        else pa.concat_tables(list(parts) or [PROFILE_SCHEMA.empty_table()])
    )
    table = table.cast(PROFILE_SCHEMA)
    if table.num_rows == 0:
        return table
    codes = []
    for name in KEY_COLUMNS:
        col = table.column(name)
        if name == "hour":
            codes.append(col.cast(pa.int64()).to_numpy())
        else:
            enc = col.combine_chunks().dictionary_encode()
            codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64))
    uniq, first, kid = np.unique(
        np.stack(codes, axis=1), axis=0, return_index=True, return_inverse=True
    )
    kid = kid.reshape(-1)
    if uniq.shape[0] == table.num_rows:
        return table
    k = uniq.shape[0]
    keys = table.take(pa.array(first)).select(list(KEY_COLUMNS))
    scal = (
        pa.table(
            {
                "k": kid,
                "count": table.column("count"),
                "missing": table.column("missing"),
                "n_finite": table.column("n_finite"),
                "min": table.column("min"),
                "max": table.column("max"),
                "sum": table.column("sum"),
                "sum_sq": table.column("sum_sq"),
            }
        )
        .group_by("k")
        .aggregate(
            [
                ("count", "sum"),
                ("missing", "sum"),
                ("n_finite", "sum"),
                ("min", "min"),
                ("max", "max"),
                ("sum", "sum"),
                ("sum_sq", "sum"),
            ]
        )
        .sort_by("k")
    )
    # histograms: the lists of one key have one length (one set of edges): add by position
    counts = table.column("counts").combine_chunks()
    cats = table.column("categories").combine_chunks()
    is_cat = cats.is_valid().to_numpy(zero_copy_only=False)
    has_counts = counts.is_valid().to_numpy(zero_copy_only=False)
    out_counts: list[Any] = [None] * k
    out_cats: list[Any] = [None] * k
    hist_rows = np.flatnonzero(has_counts & ~is_cat)
    if hist_rows.size:
        sub = counts.take(pa.array(hist_rows))
        parent = pc.list_parent_indices(sub).to_numpy()
        flat = pc.list_flatten(sub).to_numpy(zero_copy_only=False).astype(np.int64)
        offs = sub.offsets.to_numpy()
        pos = np.arange(flat.size) - offs[parent]
        kk = kid[hist_rows][parent]
        agg = (
            pa.table({"k": kk, "p": pos, "n": flat})
            .group_by(["k", "p"])
            .aggregate([("n", "sum")])
            .sort_by([("k", "ascending"), ("p", "ascending")])
        )
        ak = agg.column("k").to_numpy()
        an = agg.column("n_sum").to_numpy()
        bounds = np.flatnonzero(np.diff(ak)) + 1
        for kidx, seg in zip(ak[np.r_[0, bounds]], np.split(an, bounds), strict=True):
            out_counts[int(kidx)] = seg.tolist()
    cat_rows = np.flatnonzero(is_cat)
    if cat_rows.size:
        names = cats.take(pa.array(cat_rows))
        nums = counts.take(pa.array(cat_rows))
        parent = pc.list_parent_indices(names).to_numpy()
        kk = kid[cat_rows][parent]
        agg = (
            pa.table({"k": kk, "v": pc.list_flatten(names), "n": pc.list_flatten(nums)})
            .group_by(["k", "v"])
            .aggregate([("n", "sum")])
            .sort_by([("k", "ascending"), ("v", "ascending")])
        )
        for kidx in np.unique(kid[cat_rows]).tolist():
            out_cats[kidx] = []
            out_counts[kidx] = []
        ak = agg.column("k").to_numpy()
        av = agg.column("v").to_pylist()
        an = agg.column("n_sum").to_numpy().tolist()
        for kidx, v, n in zip(ak.tolist(), av, an, strict=True):
            out_cats[kidx].append(v)
            out_counts[kidx].append(n)
    return pa.table(
        [
            *keys.columns,
            scal.column("count_sum"),
            scal.column("missing_sum"),
            scal.column("n_finite_sum"),
            scal.column("min_min"),
            scal.column("max_max"),
            scal.column("sum_sum"),
            scal.column("sum_sq_sum"),
            pa.array(out_counts, pa.list_(pa.int64())),
            pa.array(out_cats, pa.list_(pa.string())),
        ],
        schema=PROFILE_SCHEMA,
    )


def sort_profiles(table: pa.Table) -> pa.Table:
    """Profile rows in key order (for comparing engines' outputs)."""
    return table.sort_by([(c, "ascending") for c in KEY_COLUMNS])
