"""What checks keep across windows: references (bins, profiles, a bounded sample) and models
fitted on a reference (CBPE/DLE estimators, domain classifiers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from detectors.profiles import ColumnProfile, ReferenceBins, profile_categorical, profile_numeric
from monitor.monitors import MonitorConfig, monitored_columns
from storage.types import ModelSchema

__all__ = ["Caches", "Reference", "reference_from_table"]

T = TypeVar("T")


@dataclass
class Reference:
    """A monitor's reference: bins per column, and for dataset / fixed-range references
    their profiles and values."""

    bins: dict[str, ReferenceBins]
    profiles: dict[str, ColumnProfile]
    table: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


def reference_from_table(table: Any, cols: dict[str, str], profiles: bool = True) -> Reference:
    """Bins (and profiles) of the columns ``cols`` (name -> kind) of an Arrow table."""
    bins: dict[str, ReferenceBins] = {}
    profs: dict[str, ColumnProfile] = {}
    values: dict[str, npt.NDArray[Any]] = {}
    for c, kind in cols.items():
        if c not in table.column_names:
            continue
        arr = table.column(c)
        if kind == "numeric":
            x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
            bins[c] = ReferenceBins.numeric(x)
            if profiles:
                profs[c] = profile_numeric(x, bins[c])
            values[c] = x
        else:
            arr = arr.cast("string") if str(arr.type) != "string" else arr
            bins[c] = ReferenceBins.categorical(arr)
            if profiles:
                profs[c] = profile_categorical(arr, bins[c])
            values[c] = np.asarray(arr.to_pylist(), dtype=object)
    return Reference(bins, profs, values)


class Caches:
    """References and fitted models by what they were computed from. Not thread-safe by
    itself: the runner runs one window of a monitor at a time, and a race between two
    monitors computes the same value twice."""

    def __init__(self) -> None:
        self.references: dict[tuple[Any, ...], Reference] = {}
        self.fitted: dict[tuple[Any, ...], Any] = {}

    def fit(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """The model fitted for ``key``, fitted by ``build()`` the first time."""
        if key not in self.fitted:
            self.fitted[key] = build()
        # one cache for models of several types: the key (kind, monitor, reference...) says
        # which, and the same key was always built by the same ``build``
        return cast(T, self.fitted[key])

    def reference(
        self, logs: Any, model: str, cfg: MonitorConfig, schema: ModelSchema
    ) -> Reference:
        """Bins (and, for dataset / fixed references, profiles) of the monitor's reference;
        computed once per reference and cached."""
        assert cfg.reference is not None
        ref = cfg.reference
        cols = monitored_columns(cfg.model_copy(update={"columns": None}), schema)
        refs = self.references
        if ref.dataset:
            versions = [v for n, v, _ in logs.list_references(model) if n == ref.dataset]
            if not versions:
                raise KeyError(f"reference {ref.dataset!r} of model {model!r} not found")
            version = ref.version or max(versions)
            # the columns are part of the key: monitors of other kinds share the dataset
            key: tuple[Any, ...] = ("dataset", model, ref.dataset, version, tuple(sorted(cols)))
            if key not in refs:
                table = logs.read_reference(model, ref.dataset, version)
                refs[key] = reference_from_table(table, cols)
            return refs[key]
        if ref.start and ref.end:
            key = ("fixed", model, ref.start, ref.end, tuple(sorted(cols)))
            if key not in refs:
                sample = logs.sample(model, ref.start, ref.end, list(cols), 200_000)
                refs[key] = reference_from_table(sample, cols)
            return refs[key]
        # relative: bins from a repeatable sample of the model's first week of logs, so that
        # every window's reference and current profiles share the same (stable) bins
        key = ("relative", model, tuple(sorted(cols)))
        if key not in refs:
            first = logs.first_ts(model)
            if first is None:
                raise LookupError(f"model {model!r} has no logs to take reference bins from")
            sample = logs.sample(model, first, first + timedelta(days=7), list(cols), 200_000)
            refs[key] = reference_from_table(sample, cols, profiles=False)
        return refs[key]
