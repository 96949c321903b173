"""What a backfill asks once instead of once per window.

A backfill evaluates hundreds of windows of one monitor in a row. Which reference versions a
model has (``LogReader.list_references``, to resolve "the latest version") and whether its hours
are pushed by a lake job (``ProfileEngine.lake_fed``) were read from DuckDB on every window and
check, a few milliseconds each. :func:`backfill_env` gives the backfill a :class:`CheckEnv` whose
readers answer those two questions once per model and pass every other call through; the whole
backfill then sees one reference listing and one lake mode (a version uploaded or a first day
pushed meanwhile is seen by the next run, not midway through this one).
"""

from __future__ import annotations

from typing import Any

from monitor.checks.base import CheckEnv
from monitor.lake_mode import LakeGuard
from monitor.ports import LogReader, ProfileEngine

__all__ = ["backfill_env"]


class _LakeFedOnce:
    """A profile engine whose ``lake_fed`` is read once per model."""

    def __init__(self, engine: ProfileEngine) -> None:
        self._engine = engine
        self._lake_fed: dict[str, bool] = {}

    def lake_fed(self, model: str) -> bool:
        if model not in self._lake_fed:
            self._lake_fed[model] = self._engine.lake_fed(model)
        return self._lake_fed[model]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class _ListedOnce:
    """A log reader whose ``list_references`` is read once per model."""

    def __init__(self, logs: LogReader) -> None:
        self._logs = logs
        self._listed: dict[str, list[tuple[str, int, int]]] = {}

    def list_references(self, model: str) -> list[tuple[str, int, int]]:
        if model not in self._listed:
            self._listed[model] = self._logs.list_references(model)
        return list(self._listed[model])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logs, name)


def backfill_env(env: CheckEnv, logs: LogReader) -> CheckEnv:
    """``env`` for one backfill: the same profile engine, raw-log reads (``logs``, unguarded)
    and caches, with the reference listing and the lake mode read once per model."""
    profiles = _LakeFedOnce(env.profiles)
    guarded = _ListedOnce(LakeGuard(logs, profiles))
    return CheckEnv(profiles, guarded, env.caches, env.sample_size)
