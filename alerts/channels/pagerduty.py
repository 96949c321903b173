"""PagerDuty Events API v2: one event per alert (trigger, acknowledge, resolve); the routing key
is added at send time so it is never stored in the outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence

from alerts.channels.base import ChannelType, register
from alerts.formats import dumps, pagerduty_event
from storage.types import AlertRecord, ChannelRecord, GroupRecord


@register
class PagerDuty(ChannelType):
    kind = "pagerduty"
    description = "PagerDuty Events API v2 (needs a routing key)"
    requires_routing_key = True

    def render(
        self,
        channel: ChannelRecord,
        group: GroupRecord,
        status: str,
        alerts: Sequence[AlertRecord],
        reason: str,
        announced: frozenset[int],
        base_url: str,
    ) -> list[tuple[str, str]]:
        out = []
        for a in alerts:
            action = "trigger" if a.state == "firing" else "resolve"
            out.append((action, dumps(pagerduty_event(a, action, base_url))))
        return out

    def acknowledge(self, alert: AlertRecord, base_url: str) -> str | None:
        return dumps(pagerduty_event(alert, "acknowledge", base_url))

    def at_send(self, body: str, routing_key: str | None) -> str:
        if not routing_key:
            return body
        return json.dumps(
            {"routing_key": routing_key, **json.loads(body)},
            separators=(",", ":"),
            ensure_ascii=False,
        )
