"""The channel-kind interface and its registry (see :mod:`alerts.channels`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, TypeVar

from alerts.errors import AlertInputError
from storage.types import AlertRecord, ChannelRecord, GroupRecord

__all__ = ["ChannelType", "UnknownChannelKind", "channel_type", "kinds", "register"]

_REGISTRY: dict[str, ChannelType] = {}
T = TypeVar("T", bound="type[ChannelType]")


class UnknownChannelKind(AlertInputError):
    """A channel kind no module registered; the message lists the known ones."""


class ChannelType:
    """How one kind of channel turns notifications into request bodies.

    Attributes
    ----------
    kind
        The stable key (stored in ``alert_channels.kind``, given by the API and the CLI).
    description
        One line for help texts.
    signed
        Requests carry a Standard Webhooks signature: the channel gets a signing secret.
    requires_routing_key
        The channel cannot send without a routing key (kept encrypted with the channel).
    """

    kind: ClassVar[str]
    description: ClassVar[str]
    signed: ClassVar[bool] = False
    requires_routing_key: ClassVar[bool] = False

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
        """The ``(event, body)`` pairs one flush of ``group`` sends to ``channel``."""
        raise NotImplementedError

    def acknowledge(self, alert: AlertRecord, base_url: str) -> str | None:
        """The body telling the channel a firing alert was acknowledged (None: nothing)."""
        return None

    def at_send(self, body: str, routing_key: str | None) -> str:
        """The stored body as sent (secrets are added here, never stored in the outbox)."""
        return body


def register(cls: T) -> T:
    """Class decorator: make a channel kind known by its ``kind`` key."""
    if cls.kind in _REGISTRY:
        raise ValueError(f"channel kind {cls.kind!r} is registered twice")
    _REGISTRY[cls.kind] = cls()
    return cls


def kinds() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(_REGISTRY)


def channel_type(kind: str) -> ChannelType:
    """The registered channel kind ``kind``; unknown kinds name the known ones."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnknownChannelKind(
            f"channel kind {kind!r} is not one of {', '.join(_REGISTRY)}"
        ) from None
