"""Monitor use cases shared by the API, the CLI, the scheduler and the dashboard.

One :class:`MonitorService` per process, built by the composition root
(:mod:`monitor.composition`), so the API routes, the scheduler and the CLI share one runner (and
its reference cache). Its result sink (the alerting runtime) is given to it there; the runner
calls ``sink.results_written(results, backfill)`` after every run.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from monitor.errors import ConflictError, NotFoundError, ValidationFailed
from monitor.init_bounds import proposed_bounds
from monitor.monitors import MonitorConfig, check_against_model, default_monitors, parse_monitor
from monitor.ports import ProfileEngine
from monitor.runner import ResultSink, Runner, RunSummary
from monitor.service import Services
from monitor.window_histograms import WindowHistograms, window_histograms
from storage.metadata.errors import AlreadyExists, NotFound
from storage.metadata.monitoring import (
    MonitoringStore,
    MonitorRecord,
    MonitorVersion,
    ResultQuery,
    RunRecord,
)
from storage.profiles import ProfileSpec
from storage.types import MetricResult, RuleRecord, leaf_diff

__all__ = ["ApplyChange", "MonitorService", "RuleLookup"]


class RuleLookup(Protocol):
    """What :meth:`MonitorService.propose` reads of the alert rules (the alert store)."""

    def get_rule(self, name: str) -> RuleRecord | None: ...


@dataclass(frozen=True)
class ApplyChange:
    """One line of ``driftwatch apply``: what happens (or would happen) to one monitor."""

    name: str
    action: str  # create, update, unchanged
    diff: dict[str, Any]


class MonitorService:
    """Monitors CRUD with validation against the model, runs and results queries, runner."""

    def __init__(
        self,
        services: Services,
        *,
        profiles: ProfileEngine,
        sink: ResultSink | None,
        rules: RuleLookup | None,
        lateness: timedelta,
        sample_size: int,
        late_lookback: timedelta,
    ) -> None:
        self.services = services
        self.store = MonitoringStore(services.metadata)
        self.rules = rules
        self.runner = Runner(
            services.metadata,
            services.logs,
            profiles=profiles,
            store=self.store,
            sink=sink,
            lateness=lateness,
            sample_size=sample_size,
            late_lookback=late_lookback,
            clock=services.clock,
        )
        self.on_change: list[Callable[[str], None]] = []  # the scheduler reconciles its jobs

    def profile_spec(self, model: str) -> tuple[ProfileSpec, dict[str, str]]:
        """What a lake job computes for ``model`` (its enabled monitors' profiles) and the
        monitors left out with the reason."""
        from monitor.lake_mode import model_spec

        if self.services.metadata.get_model(model) is None:
            raise NotFoundError(f"model {model!r} is not registered")
        records = self.store.list_monitors(model=model, enabled=True)
        return model_spec(self.runner, model, records)

    def window_histograms(
        self, monitor: str, column: str, tenant: str, start: datetime, end: datetime
    ) -> WindowHistograms | None:
        """The reference and window histograms of ``column`` that drift ``monitor`` compares,
        from the stored hourly profiles (see :mod:`monitor.window_histograms`)."""
        record = self.store.get_monitor(monitor)
        info = self.services.metadata.get_model(record.model) if record else None
        if record is None or info is None:
            return None
        cfg = parse_monitor(record.config)
        env = self.runner.env
        return window_histograms(env, record.model, cfg, info.schema, column, tenant, start, end)

    # ------------------------------------------------------------------ definitions
    def validate(self, data: dict[str, Any]) -> MonitorConfig:
        cfg = parse_monitor(data)
        info = self.services.metadata.get_model(cfg.model)
        if info is None:
            raise ValidationFailed(
                f"monitor {cfg.name!r}: model {cfg.model!r} is not registered",
            )
        check_against_model(cfg, info.schema)
        return cfg

    def create(self, data: dict[str, Any], actor: str = "system") -> MonitorRecord:
        cfg = self.validate(data)
        try:
            rec = self.store.create_monitor(
                cfg.name, cfg.model, cfg.kind, cfg.to_json(), actor, cfg.enabled
            )
        except AlreadyExists as exc:
            raise ConflictError(str(exc)) from exc
        self._changed(cfg.name)
        return rec

    def update(self, name: str, data: dict[str, Any], actor: str = "system") -> MonitorRecord:
        data = {**data, "name": name}
        cfg = self.validate(data)
        try:
            rec = self.store.update_monitor(name, cfg.to_json(), actor, enabled=cfg.enabled)
        except NotFound as exc:
            raise NotFoundError(str(exc)) from exc
        self._changed(name)
        return rec

    def delete(self, name: str, actor: str = "system") -> None:
        try:
            self.store.delete_monitor(name, actor)
        except NotFound as exc:
            raise NotFoundError(str(exc)) from exc
        self._changed(name)

    def get(self, name: str) -> MonitorRecord:
        rec = self.store.get_monitor(name)
        if rec is None:
            raise NotFoundError(f"monitor {name!r} not found")
        return rec

    def list(self, model: str | None = None) -> list[MonitorRecord]:
        return self.store.list_monitors(model)

    def versions(self, name: str) -> builtins.list[MonitorVersion]:
        self.get(name)
        return self.store.monitor_versions(name)

    def apply(
        self, items: builtins.list[dict[str, Any]], actor: str = "system", dry_run: bool = False
    ) -> builtins.list[ApplyChange]:
        """Create or update monitors by name. Everything is validated before anything is
        written; ``dry_run`` only reports the changes."""
        configs = []
        errors = []
        for i, item in enumerate(items):
            try:
                configs.append(self.validate(item))
            except ValidationFailed as exc:
                errors.append(f"monitors[{i}]: {exc.message}")
        if errors:
            raise ValidationFailed("; ".join(errors))
        changes = []
        for cfg in configs:
            have = self.store.get_monitor(cfg.name)
            new = cfg.to_json()
            if have is None:
                changes.append(ApplyChange(cfg.name, "create", new))
            else:
                diff = leaf_diff(have.config, new)
                changes.append(ApplyChange(cfg.name, "update" if diff else "unchanged", diff))
        if dry_run:
            return changes
        for cfg, change in zip(configs, changes, strict=True):
            if change.action == "create":
                self.create(cfg.to_json(), actor)
            elif change.action == "update":
                self.update(cfg.name, cfg.to_json(), actor)
        return changes

    def propose(self, model: str, reference: str | None = None) -> dict[str, Any]:
        """Default monitors (and alert rules, from ``alerts.defaults``) for a model, as the
        YAML document ``driftwatch apply`` accepts."""
        info = self.services.metadata.get_model(model)
        if info is None:
            raise NotFoundError(f"model {model!r} is not registered")
        if reference is None:
            refs = [n for n, _, _ in self.services.logstore.list_references(model)]
            reference = refs[-1] if refs else None
        proposed = (
            proposed_bounds(self.services.logstore, model, info.schema, reference)
            if reference
            else None
        )
        monitors = default_monitors(
            model,
            info.schema,
            reference,
            bounds=proposed.bounds if proposed else None,
            bounds_note=proposed.note if proposed else "",
        )
        doc: dict[str, Any] = {"monitors": [m.to_json() for m in monitors]}
        from alerts.defaults import default_rules

        doc["rules"] = []
        for rule in default_rules(model, info.schema.task):
            spec = rule.to_dict()
            # A rule that exists keeps its channels: applying the proposal must not silently
            # stop its notifications (the defaults have none; `driftwatch init` says so).
            have = self.rules.get_rule(rule.name) if self.rules is not None else None
            if have is not None and have.spec.get("channels"):
                spec["channels"] = list(have.spec["channels"])
            doc["rules"].append(spec)
        return doc

    def _changed(self, name: str) -> None:
        for hook in list(self.on_change):
            hook(name)

    # ------------------------------------------------------------------ running
    def run(self, name: str, window_start: datetime) -> RunSummary:
        self.get(name)
        return self.runner.run_window(name, window_start)

    def backfill(
        self,
        name: str,
        start: datetime,
        end: datetime,
        progress: Callable[[RunSummary], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> builtins.list[RunSummary]:
        self.get(name)
        return self.runner.backfill(name, start, end, progress, should_stop)

    def tick(self, name: str) -> builtins.list[RunSummary]:
        return self.runner.tick(name)

    # ------------------------------------------------------------------ reads
    def runs(self, **filters: Any) -> tuple[builtins.list[RunRecord], int]:
        return self.store.list_runs(**filters)

    def results(
        self, query: ResultQuery, limit: int = 1000, offset: int = 0
    ) -> tuple[builtins.list[MetricResult], int]:
        return self.store.query_results(query, limit, offset)


def utcnow() -> datetime:
    return datetime.now(UTC)
