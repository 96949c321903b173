"""Shared by the pages: tenant scope checks, ranges, severity, the result cache."""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from monitor import tenancy
from monitor.composition import of
from monitor.errors import PermissionDenied
from monitor.service import Services
from monitor.timerange import TimeRange, parse_time_range
from storage import reads
from storage.metadata.alerting import AlertStore
from storage.types import ALL, MetricResult

Scope = tenancy.Scope  # the one tenant-scope policy: monitor.tenancy
T = TypeVar("T")

STATUS_RANK = {"no_data": 0, "ok": 1, "warn": 2, "alert": 3}
DRIFT_KINDS = ("feature_drift",)
# performance metric shown first on the model page, when stored
PRIMARY_METRICS = ("roc_auc", "accuracy", "f1", "mae", "rmse", "mape", "r2")
LATEST_DAYS = 30  # how far back the overview looks for a monitor's newest window


_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 128


def memoised(func: Callable[..., T]) -> Callable[..., T]:
    """Memoise a read model of stored results by its arguments, the results' version and the
    current minute (ranges end "now"). Views holding alert state (which changes on ack) are
    not cached. Exceptions (AccessDenied) are not cached."""

    @functools.wraps(func)
    def wrapper(services: Services, *args: Any, **kwargs: Any) -> T:
        if kwargs.get("now") is not None:
            return func(services, *args, **kwargs)
        version = reads.results_version(services.metadata)
        minute = int(services.now().timestamp() // 60)
        key = (func.__name__, id(services), version, minute, args, tuple(sorted(kwargs.items())))
        with _CACHE_LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return _CACHE[key]
        value = func(services, *args, **kwargs)
        with _CACHE_LOCK:
            _CACHE[key] = value
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        return value

    return wrapper


class AccessDenied(PermissionDenied):
    """The caller's scope does not include the requested tenant or object."""


def worst_status(statuses: Iterable[str]) -> str:
    """The worst of ``alert > warn > ok > no_data`` (``no_data`` when empty)."""
    return max(statuses, key=lambda s: STATUS_RANK.get(s, 0), default="no_data")


def severity_score(r: MetricResult) -> float:
    """How far past its threshold a result is: value / threshold, or threshold / value for
    p-values (``details["direction"] == "below"``: smaller is worse); ≥ 1 means breached.
    Results without both numbers score by status."""
    v, t = r.value, r.threshold
    if v is not None and t is not None and t > 0 and math.isfinite(v):
        if r.details.get("direction") == "below":
            score = min(t / max(v, 1e-12), 10.0)
        else:
            score = abs(v / t)
        return max(score, 1.0) if r.status == "alert" else score
    return {"alert": 1.5, "warn": 1.0, "ok": 0.5}.get(r.status, 0.0)


def longest_window(services: Services, model: str | None = None) -> timedelta:
    """The widest window of the monitors (of ``model``), a month counted 31 days: how far
    before a range's start a window overlapping it can begin."""
    from monitor import windows
    from storage.metadata.monitoring import MonitoringStore

    widths = [timedelta(days=1)]
    for m in MonitoringStore(services.metadata).list_monitors(model=model):
        try:
            w = windows.window(str(m.config.get("window") or "day"))
        except ValueError:
            continue
        widths.append(w.width or timedelta(days=31))
    return max(widths)


def last_computed(services: Services, source: str | None = None) -> datetime | None:
    """When the newest stored result (of ``source``: monitor or kpi) was computed."""
    return reads.last_computed(services.metadata, source=source)


def visible_tenants(services: Services, scope: Scope) -> list[str]:
    return tenancy.visible(scope, [t.tenant_id for t in services.metadata.list_tenants()])


def default_tenant(scope: Scope, tenants: Sequence[str]) -> str:
    """``*`` (all tenants together) for users who see everything, else their first tenant."""
    if scope is None:
        return ALL
    return tenants[0] if tenants else ""


def page_tenant(services: Services, scope: Scope, tenant: str | None) -> tuple[list[str], str]:
    """The tenants the caller sees and the one a page shows (the one asked for, else the
    default); AccessDenied when it is outside the caller's scope."""
    tenants = visible_tenants(services, scope)
    chosen = tenant or default_tenant(scope, tenants)
    check_tenant(scope, chosen)
    return tenants, chosen


def check_tenant(scope: Scope, tenant: str) -> None:
    if tenancy.sees(scope, tenant):
        return
    if tenant == ALL:
        raise AccessDenied("results over all tenants are not in your scope")
    raise AccessDenied(f"tenant {tenant!r} is not in your scope")


def parse_range(
    value: str | TimeRange | None, now: datetime, max_days: float = 36_500
) -> tuple[str, datetime, datetime]:
    """(key, start, end) of a page's range: a :class:`~monitor.timerange.TimeRange` as given
    (``key`` "custom" for from/to), or a span back from ``now`` (``"7d"``, ``"12h"``,
    ``"4w"``; None: 30 days). An unreadable span raises
    :class:`~monitor.timerange.RangeError`, never falls back to the default."""
    if isinstance(value, TimeRange):
        return value.key, value.start, value.end
    tr = parse_time_range({"range": value} if value else {}, now, max_days)
    return tr.key, tr.start, tr.end


def alert_store(services: Services) -> AlertStore:
    """The alert store of the process's alerting runtime (shared with the API)."""
    return of(services).alerting.store
