"""Alert channels: one module per kind, registered by a stable key (what the database stores).

A channel kind says how a notification becomes request bodies (:meth:`ChannelType.render`),
whether an acknowledgement is sent on (:meth:`ChannelType.acknowledge`), whether the channel
signs its requests with a Standard Webhooks secret, which settings it requires, and what it adds
at send time (:meth:`ChannelType.at_send`, e.g. PagerDuty's routing key, a secret that is never
stored in the outbox). The engine, the delivery worker, the API and the CLI ask this registry;
none of them names a kind.

Adding a kind: a module here with a :class:`ChannelType` subclass decorated with
:func:`register`, imported below; a migration that adds the key to the ``alert_channels.kind``
check (the database keeps the list of kinds it accepts: ``storage.types.CHANNEL_KINDS``);
``tests/alerts/test_channel_registry.py`` then runs its contract.
"""

from __future__ import annotations

from alerts.channels.base import ChannelType, UnknownChannelKind, channel_type, kinds, register
from alerts.channels.pagerduty import PagerDuty
from alerts.channels.slack import Slack
from alerts.channels.webhook import Webhook

__all__ = [
    "ChannelType",
    "PagerDuty",
    "Slack",
    "UnknownChannelKind",
    "Webhook",
    "channel_type",
    "kinds",
    "register",
]
