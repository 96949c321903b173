"""Alerting inside the service: the engine, its store and the delivery worker of a process.

One :class:`AlertingRuntime` per process, built by the composition root
(``monitor.composition``: ``of(services).alerting``). What other parts of Driftwatch call:

- the monitor runner and the KPI service, after each run or backfill (their result sink):
  ``results_written(results, backfill)``;
- ``driftwatch init``: :func:`alerts.defaults.default_rules` then ``.engine.put_rule(...)``;
- the API, the CLI and the dashboard: the read and action methods below.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.backtest import BacktestReport, backtest
from alerts.delivery import DeliveryWorker, RetryPolicy
from alerts.engine import AlertEngine
from alerts.evaluate import Transition
from alerts.rules import Rule
from alerts.ssrf import Allowlist
from monitor.metrics import Family
from storage.metadata import NotFound
from storage.metadata.alerting import AlertStore
from storage.metadata.kpis import KpiStore
from storage.private import private_dir
from storage.reads import results_between
from storage.types import AlertRecord, MetricResult

log = logging.getLogger("driftwatch.alerting")
# (a model alert, the start of its window) -> {"kpis": [...]} of the KPIs that moved with it
RelatedKpis = Callable[[AlertRecord, datetime | None], dict[str, Any]]
MISSING_CHECK_SECONDS = 60.0


def secret_key(settings: Any) -> str:
    """The key encrypting channel secrets: the setting, or a key file in the data dir."""
    if settings.alert_secret_key:
        return str(settings.alert_secret_key)
    path = Path(settings.data_dir) / "alert-secret.key"
    if not path.exists():
        private_dir(path.parent)
        try:
            # O_EXCL: two processes starting at once must not write two different keys;
            # 0600 from the first byte
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text(encoding="utf-8").strip()


class AlertingRuntime:
    """The engine, store and (optionally running) delivery worker of one process."""

    def __init__(self, services: Any, *, related_kpis: RelatedKpis | None = None) -> None:
        settings = services.settings
        self.related_kpis = related_kpis
        self.settings = settings
        self.services = services
        self.allowlist = Allowlist.parse(settings.alert_allowed_hosts.split(","))
        self.store = AlertStore(services.metadata, secret_key(settings))
        self.worker: DeliveryWorker | None = None
        self.engine = AlertEngine(
            self.store,
            base_url=settings.base_url,
            allowlist=self.allowlist,
            on_enqueue=self.wake,
            enrich=self._related_kpis,
            units=self._kpi_units,
        )
        self.policy = RetryPolicy(
            give_up_after=settings.alert_give_up_hours * 3600,
            scale=settings.alert_retry_scale,
            timeout=settings.alert_delivery_timeout_seconds,
        )
        self._last_missing_check = 0.0

    def process(self, results: Iterable[MetricResult], *, notify: bool = True) -> list[Transition]:
        """Evaluate new metric results (what the runner calls after every run)."""
        out = self.engine.process(list(results), notify=notify)
        self.wake()
        return out

    def _kpi_units(self) -> dict[str, str]:
        """KPI name → its unit (a KPI alert's value is written with it)."""
        return {r.name: str(r.spec.get("unit") or "") for r in KpiStore(self.store.metadata).list()}

    def _related_kpis(self, alert: AlertRecord) -> dict[str, Any]:
        """The tenant KPIs that moved with a model alert (issue 5's link), top 5."""
        if alert.labels.get("source") == "kpi" or not alert.model or self.related_kpis is None:
            return {}
        window = alert.context.get("window") or {}
        until = datetime.fromisoformat(window["start"]) if window.get("start") else None
        found = self.related_kpis(alert, until)
        kpis = list(found.get("kpis", []))[:5]
        return {"related_kpis": kpis} if kpis else {}

    def results_written(self, results: list[MetricResult], backfill: bool) -> None:
        """``monitor.runner.ResultSink``: a backfill keeps state without paging anyone."""
        self.process(results, notify=not backfill)

    def backtest(self, rule_name: str, start: datetime, end: datetime) -> BacktestReport:
        """Replay a stored rule over the stored results of ``[start, end)``; notifies nobody."""
        rec = self.store.get_rule(rule_name)
        if rec is None:
            raise NotFound(f"alert rule {rule_name!r} not found")
        rule = Rule.from_dict(rec.spec)
        results = results_between(
            self.store.metadata, start=start, end=end, source=None, limit=1_000_000
        )
        return backtest(rule, results, start, end)

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def _turn(self, now: datetime) -> None:
        # The delivery loop also plans due groups and, once a minute, looks for series that
        # went silent (a stopped monitor produces no results that could trigger anything) and
        # for firing alerts that no change put on their group's agenda (engine.reconcile).
        if time.monotonic() - self._last_missing_check > MISSING_CHECK_SECONDS:
            self._last_missing_check = time.monotonic()
            self.engine.check_missing(now)
            self.engine.reconcile(now)
        self.engine.flush_due(now)

    def start_worker(self) -> DeliveryWorker:
        if self.worker is None:
            self.worker = DeliveryWorker(
                self.store,
                allowlist=self.allowlist,
                policy=self.policy,
                concurrency=self.settings.alert_delivery_concurrency,
                before_claim=self._turn,
            ).start()
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=3.0)  # a server must stop within seconds (SIGTERM)
            self.worker = None

    def metric_families(self) -> list[Family]:
        """Alerts by state, deliveries by status, attempts by outcome, outbox depth."""
        states = self.store.state_counts()
        deliveries = self.store.delivery_counts()
        attempts = self.store.attempt_counts()
        depth = deliveries.get("pending", 0) + deliveries.get("sending", 0)
        return [
            Family(
                "driftwatch_alerts",
                "Alert instances by state.",
                "gauge",
                [
                    ("driftwatch_alerts", {"state": s}, float(states.get(s, 0)))
                    for s in ("pending", "firing", "resolved")
                ],
            ),
            Family(
                "driftwatch_deliveries",
                "Outbox deliveries by status.",
                "gauge",
                [
                    ("driftwatch_deliveries", {"status": s}, float(deliveries.get(s, 0)))
                    for s in ("pending", "sending", "delivered", "dead", "cancelled")
                ],
            ),
            Family(
                "driftwatch_delivery_attempts_total",
                "Delivery attempts by outcome (delivered, retry, failed, dead, disabled).",
                "counter",
                [
                    ("driftwatch_delivery_attempts_total", {"outcome": o}, float(n))
                    for o, n in sorted(attempts.items())
                ],
            ),
            Family(
                "driftwatch_outbox_depth",
                "Deliveries waiting to be sent (pending or in flight).",
                "gauge",
                [("driftwatch_outbox_depth", {}, float(depth))],
            ),
        ]
