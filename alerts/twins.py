"""An all-tenants alert and the per-tenant alerts of the same series: its "twins".

Monitors evaluate every window for all tenants together (``tenant="*"``) and for each tenant,
so one tenant's drift usually fires twice: for that tenant and, since it moves the whole, for
``*``. The two are one problem. This module names the relation (same rule, model, monitor,
kind, metric, column and model version; ``*`` on one side), so the API and the alert page
can link the two, and :data:`ALL_TENANTS_INHIBIT` lets a firing per-tenant alert mute the
notifications of its all-tenants twin: on-call hears about globex, once, and the ``*`` alert
is still listed (inhibited by the globex alert). An all-tenants alert without a firing
per-tenant twin (a shift no single tenant shows) notifies as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.types import ALL, AlertRecord

# The labels two twins share (everything that names the series but the tenant).
TWIN_LABELS = ("alertname", "model", "monitor", "source", "kind", "metric", "column")


def twin_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What an alert and its twins have in common: every label but ``tenant`` (the same
    relation as ``monitor.alert_pages.twin_fingerprints``, which swaps the tenant label in
    the fingerprint). Rule labels and severity come with the rule, so two alerts agreeing on
    :data:`TWIN_LABELS` (what the inhibit rule compares) agree on these too."""
    return tuple(sorted((k, v) for k, v in labels.items() if k != "tenant"))


def is_all_tenants(alert: AlertRecord) -> bool:
    return alert.labels.get("tenant", alert.tenant_id) == ALL


@dataclass(frozen=True)
class Twins:
    """The relation of one alert: the all-tenants alert of its series (for a per-tenant
    alert) or the per-tenant alerts of its series (for an all-tenants alert)."""

    all_tenants: AlertRecord | None = None
    tenants: tuple[AlertRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        a = self.all_tenants
        return {
            "all_tenants_alert": None if a is None else {"id": a.id, "state": a.state},
            "tenant_alerts": [
                {"id": t.id, "tenant": t.tenant_id, "state": t.state} for t in self.tenants
            ],
        }


def relate(alerts: Iterable[AlertRecord], candidates: Sequence[AlertRecord]) -> dict[int, Twins]:
    """Alert id → its :class:`Twins` among ``candidates`` (e.g. the open alerts; the newest
    instance per fingerprint wins). Alerts without twins are left out."""
    by_key: dict[tuple[tuple[str, str], ...], list[AlertRecord]] = {}
    for c in sorted(candidates, key=lambda a: a.id or 0):
        by_key.setdefault(twin_key(c.labels), []).append(c)
    out: dict[int, Twins] = {}
    for a in alerts:
        if a.id is None:
            continue
        same = [c for c in by_key.get(twin_key(a.labels), []) if c.fingerprint != a.fingerprint]
        if is_all_tenants(a):
            newest: dict[str, AlertRecord] = {c.fingerprint: c for c in same}
            tenants = tuple(
                sorted((c for c in newest.values() if not is_all_tenants(c)), key=_tenant)
            )
            if tenants:
                out[a.id] = Twins(tenants=tenants)
        else:
            alls = [c for c in same if is_all_tenants(c)]
            if alls:
                out[a.id] = Twins(all_tenants=alls[-1])
    return out


def _tenant(a: AlertRecord) -> str:
    return a.tenant_id
