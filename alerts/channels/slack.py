"""Slack incoming webhook: one message per flush (``alerts.formats.slack_body``)."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.channels.base import ChannelType, register
from alerts.formats import dumps, slack_body
from storage.types import AlertRecord, ChannelRecord, GroupRecord


@register
class Slack(ChannelType):
    kind = "slack"
    description = "Slack incoming webhook"

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
        body = slack_body(
            status=status, group_labels=group.labels, alerts=alerts, base_url=base_url
        )
        return [(status, dumps(body))]
