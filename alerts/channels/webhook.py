"""Generic signed JSON webhook: Alertmanager's webhook v4 body plus Driftwatch's context,
signed per Standard Webhooks (``alerts.signing``)."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.channels.base import ChannelType, register
from alerts.formats import dumps, generic_body
from storage.types import AlertRecord, ChannelRecord, GroupRecord


@register
class Webhook(ChannelType):
    kind = "webhook"
    description = "signed generic JSON (Alertmanager webhook v4 + driftwatch context)"
    signed = True

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
        body = generic_body(
            group_key=group.group_key,
            status=status,
            receiver=channel.name,
            group_labels=group.labels,
            alerts=alerts,
            base_url=base_url,
            notification_reason=reason,
            announced=announced,
        )
        return [(status, dumps(body))]
