"""The row-needing monitors' mergeable hourly forms, computed by the profile kernel in the same
pass as the profiles: a bottom-k sample per (hour, tenant, model version) keyed by a portable
hash of ``request_id``, and label aggregates per (hour, tenant, model version) from the labels
joined to the rows. A lake-fed model's sample-based drift, multivariate drift, CBPE/DLE and
realized performance read these instead of raw rows (docs/scale-out.md, "Every monitor kind").

The sample key
--------------
``sample_hash(id, seed)`` is a fixed, documented function that any engine (and any user) can
recompute: FNV-1a 64 of the UTF-8 bytes of ``id + "#" + str(seed)``, then MurmurHash3's 64-bit
finaliser (``fmix64``) so every bit of the result depends on every byte. It is computed here, by
the kernel, never by an engine's built-in ``hash()`` (DuckDB's and Spark's differ from each other
and between versions). The stored ``sample_key`` is that unsigned hash minus 2^63, so the signed
int64 order every engine sorts by equals the unsigned order. Ties (never seen, but possible)
break by ``request_id``.

Why bottom-k: the k rows with the smallest keys of a set are a uniform sample of it (the hash
of distinct ids is uniform), and the bottom-k of a union is the bottom-k of its parts' bottom-k.
So each hour keeps the bottom-k of each (tenant, version) and a window's sample, of all tenants
or one, is the bottom-n (n <= k) of its hours' samples: identical whichever engine computed the
hours and however the rows were split into batches, files or tasks. The embedded store's
``LogReads.sample`` picks the same rows (the same key over the window's rows), so a lake-fed
model's sample-based results equal the embedded ones. Rows without a ``request_id`` (possible in
a lake file, never in the embedded store) have no key: they are left out of the sample and
counted (the ``no_id`` label aggregate, :data:`NO_ID`).

Label aggregates
----------------
Long format (:data:`LABEL_SCHEMA`): per (hour, tenant, version, name) a count ``n`` and a float
``value``; partials merge by adding both. What the realized-performance metrics need, computed
as :mod:`detectors.performance` computes them (rows with a missing label, prediction or score
are left out of the metrics as it leaves them out):

=====================  ======================================================================
name                   n / value
=====================  ======================================================================
``labelled``           labelled rows / sum of label delays (s, received_at - ts)
``no_id``              rows without a request_id (not sampled, never labelled) / 0
``bin:tp|fp|fn|tn``    binary confusion counts / 0
``bin:log_loss``       rows / sum of the clipped log loss terms
``bin:brier``          rows / sum of (score - label)^2
``ece:<b>``            rows in ECE bin b (10 equal-width bins, as the detector) / sum of scores
``ece_y:<b>``          same rows / sum of labels
``bin:invalid``        labels or predictions other than 0/1 / 0
``cm:<label>|<pred>``  multiclass confusion cell (values as strings, JSON-encoded pair) / 0
``reg:err``            regression rows / sum of (prediction - target)
``reg:abs``, ``reg:sq``, ``reg:ape``, ``reg:y``, ``reg:y2``   same rows / sums of |e|, e^2,
                       |e| / max(|y|, eps), y, y^2
=====================  ======================================================================

Rank metrics (``roc_auc``, ``pr_auc``) need every labelled row's score: they have no mergeable
form here, and a lake-fed model's results for them say so.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "LABEL_SCHEMA",
    "NO_ID",
    "SAMPLE_BASE",
    "LabelAccumulator",
    "LabelSpec",
    "SampleAccumulator",
    "merge_labels",
    "merge_samples",
    "sample_hash",
    "sample_keys",
    "sort_labels",
    "sort_samples",
]

TS = pa.timestamp("us", tz="UTC")
NO_ID = "no_id"
_EPS = float(np.finfo(np.float64).eps)  # detectors.performance clips and divides with this
ECE_BINS = 10

# the columns every sample row starts with; the sampled columns follow
SAMPLE_BASE = pa.schema(
    [
        ("hour", TS),
        ("tenant_id", pa.string()),
        ("segment_version", pa.string()),  # model_version, NULL as "": the group key
        ("sample_key", pa.int64()),
        ("request_id", pa.string()),
        ("ts", TS),
        ("model_version", pa.string()),
    ]
)
_SAMPLE_GROUP = ("hour", "tenant_id", "segment_version")

LABEL_SCHEMA = pa.schema(
    [
        ("hour", TS),
        ("tenant_id", pa.string()),
        ("model_version", pa.string()),  # NULL as "", as in the profile rows
        ("name", pa.string()),
        ("n", pa.int64()),
        ("value", pa.float64()),
    ]
)
_LABEL_KEY = ("hour", "tenant_id", "model_version", "name")

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _hash_strings(
    offsets: npt.NDArray[Any], data: npt.NDArray[Any], suffix: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    n = offsets.size - 1
    out = np.empty(n, np.uint64)
    prime = np.uint64(0x100000001B3)
    for i in range(n):
        h = np.uint64(0xCBF29CE484222325)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * prime
        for j in range(suffix.size):
            h = (h ^ np.uint64(suffix[j])) * prime
        # MurmurHash3 fmix64
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB93FE53E1A85)
        h ^= h >> np.uint64(33)
        out[i] = h
    return out


@functools.cache
def _compiled_hash() -> Callable[..., npt.NDArray[Any]]:
    """The compiled hash loop (numba imported when first sampling, as the profile loops)."""
    import numba

    fn: Callable[..., npt.NDArray[Any]] = numba.njit(nogil=True, cache=True)(_hash_strings)
    return fn


def sample_hash(request_id: str, seed: int = 0) -> int:
    """The documented sample hash of one id (pure Python; the reference for the compiled
    one): ``fmix64(fnv1a64(utf8(request_id + "#" + str(seed))))``, an unsigned 64-bit int."""
    mask = (1 << 64) - 1
    h = int(_FNV_OFFSET)
    for b in f"{request_id}#{int(seed)}".encode():
        h = ((h ^ b) * int(_FNV_PRIME)) & mask
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB93FE53E1A85) & mask
    h ^= h >> 33
    return h


def sample_keys(ids: pa.Array | pa.ChunkedArray, seed: int = 0) -> npt.NDArray[Any]:
    """``sample_hash`` of every id minus 2^63 as int64 (NULL ids: any value; mask them)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    if not pa.types.is_large_string(ids.type):
        ids = ids.cast(pa.large_string())  # one offsets width for the compiled loop
    if len(ids) == 0:
        return np.zeros(0, np.int64)
    _, off_buf, data_buf = ids.buffers()
    offsets = np.frombuffer(off_buf, np.int64)[ids.offset : ids.offset + len(ids) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    suffix = np.frombuffer(f"#{int(seed)}".encode(), np.uint8)
    h = _compiled_hash()(np.ascontiguousarray(offsets), data, suffix)
    return (h ^ np.uint64(1 << 63)).view(np.int64)


def _sorted_bottom_k(table: pa.Table, k: int, group: Sequence[str]) -> pa.Table:
    """The ``k`` rows with the smallest (sample_key, request_id) of each group, sorted by
    group, sample_key, request_id."""
    if table.num_rows == 0:
        return table
    order = [(g, "ascending") for g in group] + [
        ("sample_key", "ascending"),
        ("request_id", "ascending"),
    ]
    table = table.take(pc.sort_indices(table, order))
    codes = []
    for g in group:
        col = table.column(g)
        if pa.types.is_timestamp(col.type):
            codes.append(col.cast(pa.int64()).to_numpy())
        else:
            enc = col.combine_chunks().dictionary_encode()
            codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64))
    n = table.num_rows
    new = np.ones(n, bool)
    new[1:] = np.any(np.stack([c[1:] != c[:-1] for c in codes]), axis=0)
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    rank = np.arange(n) - start
    if (rank < k).all():
        return table
    return table.filter(pa.array(rank < k))


def _fast_bottom_k(
    gids: npt.NDArray[Any], keys: npt.NDArray[Any], k: int
) -> npt.NDArray[Any] | None:
    """Positions of the ``k`` smallest keys of each group (integer sort only), or None when
    two rows of a group share a key (the tie must be broken by request_id: the caller then
    sorts with the strings)."""
    n = gids.size
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((keys, gids))
    g, kk = gids[order], keys[order]
    same_g = g[1:] == g[:-1]
    if np.any(same_g & (kk[1:] == kk[:-1])):
        return None
    new = np.ones(n, bool)
    new[1:] = ~same_g
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    keep = order[(np.arange(n) - start) < k]
    return np.sort(keep)


class SampleAccumulator:
    """The bottom-``k`` rows (by :func:`sample_keys`, seed 0) of each (hour, tenant, version)
    of a stream of batches, with the ``columns`` a batch has. Memory stays near k x groups.

    Why integer sorts: the group numbers (the profile accumulator's) and the int64 keys order
    the rows by one ``np.lexsort``; sorting by the group's strings and ``request_id`` with Arrow
    cost 20x the profile itself. A row whose key is above its group's current k-th key is
    dropped before anything is copied. Strings break ties only when two keys of a group are
    equal (a repeated request_id, or a 64-bit collision)."""

    def __init__(self, k: int, columns: Sequence[str]) -> None:
        self.k = int(k)
        self.columns = list(columns)
        self._parts: list[pa.Table] = []
        self._held = 0
        self._limit = 4 * max(self.k, 1 << 16)  # rows held before compacting
        self._threshold = np.zeros(0, np.int64)

    def add(
        self,
        batch: pa.RecordBatch | pa.Table,
        hours: pa.Array,
        version: pa.Array,
        gids: npt.NDArray[Any],
        n_groups: int,
    ) -> None:
        """Add one batch; ``hours`` (timestamp), ``version`` (NULL as "") and ``gids`` (the
        group numbers, ``n_groups`` so far) are its rows'."""
        names = batch.schema.names
        if "request_id" not in names:
            raise ValueError(f"profile batch: column 'request_id' is missing (have {names})")
        ids = batch.column(names.index("request_id"))
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        ids = ids.cast(pa.string())
        keys = sample_keys(ids)
        gids = np.asarray(gids, np.int64)
        if self._threshold.size < n_groups:
            grown = np.full(max(n_groups, 2 * self._threshold.size), np.iinfo(np.int64).max)
            grown[: self._threshold.size] = self._threshold
            self._threshold = grown
        cand = keys <= self._threshold[gids]
        if ids.null_count:
            cand &= np.asarray(ids.is_valid().to_numpy(zero_copy_only=False), bool)
        pos = np.flatnonzero(cand)
        keep = _fast_bottom_k(gids[pos], keys[pos], self.k)
        if keep is not None:
            pos = pos[keep]
        take = pa.array(pos)
        cols: dict[str, Any] = {
            "hour": hours.take(take),
            "tenant_id": batch.column(names.index("tenant_id")).take(take).cast(pa.string()),
            "segment_version": version.take(take),
            "sample_key": pa.array(keys[pos]),
            "request_id": ids.take(take),
            "ts": batch.column(names.index("ts")).take(take).cast(TS),
            "model_version": (
                batch.column(names.index("model_version")).take(take).cast(pa.string())
                if "model_version" in names
                else pa.nulls(pos.size, pa.string())
            ),
        }
        for c in self.columns:
            if c in names and c not in cols:
                cols[c] = batch.column(names.index(c)).take(take)
        cols["__g"] = pa.array(gids[pos])
        self._parts.append(pa.table(cols))
        self._held += pos.size
        if self._held > self._limit and len(self._parts) > 1:
            self._compact()

    def _kept(self) -> pa.Table:
        """The bottom-k of everything held (with the ``__g`` group column)."""
        table = pa.concat_tables(self._parts, promote_options="permissive")
        gids = table.column("__g").to_numpy()
        keys = table.column("sample_key").to_numpy()
        keep = _fast_bottom_k(gids, keys, self.k)
        if keep is None:  # a tie: exact, with the strings
            return _sorted_bottom_k(table, self.k, _SAMPLE_GROUP)
        return table.take(pa.array(keep))

    def _compact(self) -> None:
        table = self._kept()
        self._parts = [table]
        self._held = table.num_rows
        self._limit = max(self._limit, 2 * self._held)  # amortised when most rows are kept
        # a group holding k rows: later rows above its k-th key cannot enter
        gids = table.column("__g").to_numpy()
        keys = table.column("sample_key").to_numpy()
        order = np.lexsort((keys, gids))
        g, kk = gids[order], keys[order]
        last = np.ones(g.size, bool)
        last[:-1] = g[1:] != g[:-1]
        counts = np.bincount(g, minlength=self._threshold.size)
        full = last & (counts[g] >= self.k)
        self._threshold[g[full]] = kk[full]

    def rows(self) -> pa.Table:
        """The sample rows (any order; :func:`sort_samples` orders them)."""
        if not self._parts:
            return SAMPLE_BASE.empty_table()
        return self._kept().drop_columns(["__g"])


def merge_samples(parts: pa.Table | Sequence[pa.Table], k: int) -> pa.Table:
    """The bottom-``k`` of each (hour, tenant, version) of partial samples."""
    if isinstance(parts, pa.Table):
        table = parts
    else:
        parts = [p for p in parts if p.num_rows] or list(parts[:1])
        if not parts:
            return SAMPLE_BASE.empty_table()
        table = pa.concat_tables(parts, promote_options="permissive")
    return _sorted_bottom_k(table, k, _SAMPLE_GROUP)


def sort_samples(table: pa.Table) -> pa.Table:
    """Sample rows in key order (for comparing engines' outputs)."""
    return table.sort_by([(c, "ascending") for c in (*_SAMPLE_GROUP, "sample_key", "request_id")])


@dataclass(frozen=True)
class LabelSpec:
    """What the label aggregates are computed from: the model's task, prediction column and
    score columns (binary: the positive class's score first)."""

    task: str
    prediction: str
    scores: tuple[str, ...] = ()
    days: int = 14  # label files received up to this many days after a date join its rows

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "prediction": self.prediction,
            "scores": list(self.scores),
            "days": self.days,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabelSpec:
        task = str(data.get("task"))
        if task not in ("binary", "multiclass", "regression"):
            raise ValueError(
                f"profile spec: labels.task must be binary, multiclass or regression, not {task!r}"
            )
        days = int(data.get("days", 14))
        if days < 0:
            raise ValueError(f"profile spec: labels.days must be >= 0, not {days}")
        return cls(
            task, str(data["prediction"]), tuple(str(s) for s in data.get("scores") or ()), days
        )


def _floats(col: Any) -> npt.NDArray[Any]:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_boolean(col.type) or pa.types.is_integer(col.type):
        col = col.cast(pa.float64())
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


class LabelAccumulator:
    """Label aggregates (:data:`LABEL_SCHEMA`) of a stream of batches that carry the joined
    ``label`` and ``label_received_at`` columns (NULL: no label)."""

    def __init__(self, spec: LabelSpec) -> None:
        self.spec = spec
        self._parts: list[pa.Table] = []

    def add(
        self,
        batch: pa.RecordBatch | pa.Table,
        gids: npt.NDArray[Any],
        n_groups: int,
        ids_missing: npt.NDArray[Any] | None = None,
    ) -> None:
        """Aggregate one batch; ``gids`` numbers each row's (hour, tenant, version) group."""
        names = batch.schema.names
        for need in ("label", "label_received_at", self.spec.prediction):
            if need not in names:
                raise ValueError(f"profile batch: column {need!r} is missing (have {names})")
        g_all = np.asarray(gids, np.int64)
        out_g: list[npt.NDArray[Any]] = []
        out_name: list[npt.NDArray[Any]] = []
        out_n: list[npt.NDArray[Any]] = []
        out_v: list[npt.NDArray[Any]] = []

        def emit(name: Any, g: npt.NDArray[Any], n: Any, v: Any) -> None:
            size = g.size
            out_g.append(g)
            out_name.append(
                name if isinstance(name, np.ndarray) else np.full(size, name, dtype=object)
            )
            out_n.append(np.broadcast_to(np.asarray(n, np.int64), size))
            out_v.append(np.broadcast_to(np.asarray(v, np.float64), size))

        if ids_missing is not None and ids_missing.any():
            emit(NO_ID, g_all[ids_missing], 1, 0.0)
        label = batch.column(names.index("label"))
        has = np.asarray(label.is_valid().to_numpy(zero_copy_only=False), bool)
        if has.any():
            ts = batch.column(names.index("ts")).cast(TS).cast(pa.int64()).to_numpy()
            rec = _epoch_us(batch.column(names.index("label_received_at")))
            delay = np.asarray(rec - np.asarray(ts, np.int64), np.float64) / 1e6
            emit("labelled", g_all[has], 1, delay[has])
            pred = batch.column(names.index(self.spec.prediction))
            if self.spec.task == "multiclass":
                y = _strings(label)
                p = _strings(pred)
                ok = has & np.array([v is not None for v in p], bool)
                pairs = np.array(
                    [
                        "cm:" + json.dumps([a, b], ensure_ascii=False)
                        for a, b in zip(y[ok], p[ok], strict=True)
                    ],
                    dtype=object,
                )
                emit(pairs, g_all[ok], 1, 0.0)
            elif self.spec.task == "binary":
                self._binary(batch, names, label, pred, has, g_all, emit)
            else:
                y, yhat = _floats(label), _floats(pred)
                ok = has & ~np.isnan(y) & ~np.isnan(yhat)
                g, y, yhat = g_all[ok], y[ok], yhat[ok]
                err = yhat - y
                emit("reg:err", g, 1, err)
                emit("reg:abs", g, 1, np.abs(err))
                emit("reg:sq", g, 1, err**2)
                emit("reg:ape", g, 1, np.abs(err) / np.maximum(np.abs(y), _EPS))
                emit("reg:y", g, 1, y)
                emit("reg:y2", g, 1, y**2)
        if not out_g:
            return
        part = pa.table(
            {
                "g": np.concatenate(out_g),
                "name": pa.array(np.concatenate(out_name), pa.string()),
                "n": np.concatenate(out_n),
                "value": np.concatenate(out_v),
            }
        )
        self._parts.append(part.group_by(["g", "name"]).aggregate([("n", "sum"), ("value", "sum")]))
        if len(self._parts) > 64:
            self._parts = [self._compact()]

    def _binary(
        self,
        batch: Any,
        names: list[str],
        label: Any,
        pred: Any,
        has: npt.NDArray[Any],
        g_all: npt.NDArray[Any],
        emit: Any,
    ) -> None:
        if not self.spec.scores or self.spec.scores[0] not in names:
            return
        y, yhat = _floats(label), _floats(pred)
        p = _floats(batch.column(names.index(self.spec.scores[0])))
        ok = has & ~np.isnan(y) & ~np.isnan(yhat) & ~np.isnan(p)
        g, y, yhat, p = g_all[ok], y[ok], yhat[ok], p[ok]
        valid = np.isin(y, (0.0, 1.0)) & np.isin(yhat, (0.0, 1.0))
        if not valid.all():
            emit("bin:invalid", g[~valid], 1, 0.0)
        g, y, yhat, p = g[valid], y[valid], yhat[valid], p[valid]
        yb, pb = y.astype(bool), yhat.astype(bool)
        cell = np.where(yb, np.where(pb, "bin:tp", "bin:fn"), np.where(pb, "bin:fp", "bin:tn"))
        emit(cell.astype(object), g, 1, 0.0)
        pcl = np.clip(p, _EPS, 1 - _EPS)
        emit("bin:log_loss", g, 1, -(y * np.log(pcl) + (1 - y) * np.log(1 - pcl)))
        emit("bin:brier", g, 1, (p - y) ** 2)
        idx = np.clip(np.ceil(p * ECE_BINS).astype(np.int64) - 1, 0, ECE_BINS - 1)
        bins = np.array([f"ece:{b}" for b in range(ECE_BINS)], dtype=object)
        bins_y = np.array([f"ece_y:{b}" for b in range(ECE_BINS)], dtype=object)
        emit(bins[idx], g, 1, p)
        emit(bins_y[idx], g, 1, y)

    def _compact(self) -> pa.Table:
        table = pa.concat_tables(self._parts)
        return (
            table.group_by(["g", "name"])
            .aggregate([("n_sum", "sum"), ("value_sum", "sum")])
            .rename_columns(["g", "name", "n_sum", "value_sum"])
        )

    def rows(self, groups: list[tuple[Any, str, str]]) -> pa.Table:
        """The aggregates of every group (``groups[g]`` = (hour, tenant, version))."""
        if not self._parts:
            return LABEL_SCHEMA.empty_table()
        table = self._compact()
        g = table.column("g").to_numpy()
        out = pa.table(
            [
                pa.array([groups[i][0] for i in g.tolist()], TS),
                pa.array([groups[i][1] for i in g.tolist()], pa.string()),
                pa.array([groups[i][2] for i in g.tolist()], pa.string()),
                table.column("name"),
                table.column("n_sum"),
                table.column("value_sum"),
            ],
            schema=LABEL_SCHEMA,
        )
        return sort_labels(out)


def _epoch_us(col: Any) -> npt.NDArray[Any]:
    """A timestamp column as epoch microseconds (int64; NULL: 0, masked by the caller)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    us = col.cast(TS).cast(pa.int64()).fill_null(0)
    return np.asarray(us.to_numpy(zero_copy_only=False), np.int64)


def _strings(col: Any) -> npt.NDArray[Any]:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return np.asarray(col.cast(pa.string()).to_pylist(), dtype=object)


def merge_labels(parts: pa.Table | Sequence[pa.Table]) -> pa.Table:
    """Merge partial label aggregates: ``n`` and ``value`` add per (hour, tenant, version,
    name)."""
    table = (
        parts
        if isinstance(parts, pa.Table)
        else pa.concat_tables(list(parts) or [LABEL_SCHEMA.empty_table()])
    )
    table = table.cast(LABEL_SCHEMA)
    if table.num_rows == 0:
        return table
    merged = (
        table.group_by(list(_LABEL_KEY))
        .aggregate([("n", "sum"), ("value", "sum")])
        .rename_columns([*_LABEL_KEY, "n", "value"])
    )
    return sort_labels(merged.cast(LABEL_SCHEMA))


def sort_labels(table: pa.Table) -> pa.Table:
    """Label aggregates in key order."""
    return table.sort_by([(c, "ascending") for c in _LABEL_KEY])
