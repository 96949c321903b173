"""Driftwatch's own metrics in the Prometheus text exposition format (version 0.0.4).

A small registry instead of ``prometheus_client``: a handful of counters, gauges and summaries
plus collectors that read current values (alerts by state, outbox depth) at scrape time.
Other modules add their series to the process-wide :data:`REGISTRY`::

    from monitor.metrics import REGISTRY
    runs = REGISTRY.counter("driftwatch_monitor_runs_total", "Monitor runs.", ("kind", "outcome"))
    runs.inc(kind="feature_drift", outcome="ok")
    REGISTRY.summary("driftwatch_monitor_run_duration_seconds", "...", ("kind",)).observe(1.2, kind="kpi")

Asking again for a metric with the same name returns the same object (the type and labels
must match). https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Sample = tuple[dict[str, str], float]


@dataclass(frozen=True)
class Family:
    """One metric family produced by a collector at scrape time."""

    name: str
    help: str
    type: str  # counter, gauge, summary, untyped
    samples: Sequence[tuple[str, dict[str, str], float]]  # (suffixed name, labels, value)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _fmt_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


class _Metric:
    type = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(
                f"metric {self.name} takes labels {list(self.labelnames)}, got {sorted(labels)}"
            )
        return tuple(str(labels[n]) for n in self.labelnames)

    def family(self) -> Family:
        with self._lock:
            items = list(self._values.items())
        return Family(
            self.name,
            self.help,
            self.type,
            [(self.name, dict(zip(self.labelnames, k, strict=True)), v) for k, v in items],
        )


class Counter(_Metric):
    type = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"counter {self.name} can only go up (amount={amount})")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    type = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Summary(_Metric):
    """Count and sum of observations (e.g. run durations); rate(sum)/rate(count) is the mean."""

    type = "summary"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, help_text, labelnames)
        self._counts: dict[tuple[str, ...], float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + value
            self._counts[key] = self._counts.get(key, 0.0) + 1

    def family(self) -> Family:
        with self._lock:
            sums = list(self._values.items())
            counts = dict(self._counts)
        samples = []
        for k, total in sums:
            labels = dict(zip(self.labelnames, k, strict=True))
            samples.append((f"{self.name}_sum", labels, total))
            samples.append((f"{self.name}_count", labels, counts.get(k, 0.0)))
        return Family(self.name, self.help, self.type, samples)


class Registry:
    """Metrics and scrape-time collectors; :meth:`render` writes the text format."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Callable[[], Iterable[Family]]] = []
        self._lock = threading.Lock()

    def _get(self, cls: type[_Metric], name: str, help_text: str, labels: Sequence[str]) -> _Metric:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if type(existing) is not cls or existing.labelnames != tuple(labels):
                    raise ValueError(
                        f"metric {name} exists as {existing.type} with labels "
                        f"{list(existing.labelnames)}"
                    )
                return existing
            metric = cls(name, help_text, labels)
            self._metrics[name] = metric
            return metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._get(Counter, name, help_text, labels)  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get(Gauge, name, help_text, labels)  # type: ignore[return-value]

    def summary(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Summary:
        return self._get(Summary, name, help_text, labels)  # type: ignore[return-value]

    def add_collector(self, collector: Callable[[], Iterable[Family]]) -> None:
        with self._lock:
            self._collectors.append(collector)

    def remove_collector(self, collector: Callable[[], Iterable[Family]]) -> None:
        with self._lock:
            if collector in self._collectors:
                self._collectors.remove(collector)

    def families(self, extra: Iterable[Family] = ()) -> list[Family]:
        with self._lock:
            metrics = list(self._metrics.values())
            collectors = list(self._collectors)
        out = [m.family() for m in metrics]
        for c in collectors:
            out.extend(c())
        out.extend(extra)
        return out

    def render(self, extra: Iterable[Family] = ()) -> str:
        lines: list[str] = []
        for fam in sorted(self.families(extra), key=lambda f: f.name):
            lines.append(f"# HELP {fam.name} {_escape(fam.help)}")
            lines.append(f"# TYPE {fam.name} {fam.type}")
            for name, labels, value in fam.samples:
                lines.append(f"{name}{_labels(labels)} {_fmt_value(value)}")
        return "\n".join(lines) + "\n"


REGISTRY = Registry()

# Series the monitor runner reports (declared here so they are documented in one place and
# show up, at zero, before the first run).
MONITOR_RUNS = REGISTRY.counter(
    "driftwatch_monitor_runs_total",
    "Monitor and KPI runs by kind and outcome.",
    ("kind", "outcome"),
)
MONITOR_RUN_SECONDS = REGISTRY.summary(
    "driftwatch_monitor_run_duration_seconds", "Duration of monitor and KPI runs.", ("kind",)
)
