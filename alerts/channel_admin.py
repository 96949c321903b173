"""Channel actions of :class:`~alerts.engine.AlertEngine` (a base class: callers keep
``AlertEngine.<method>``): a channel is checked (its kind's settings, the URL against the SSRF
rules, the signing secret) before it is stored, and a test notification goes through the
outbox like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from alerts.channels import channel_type
from alerts.errors import AlertInputError
from alerts.formats import sample_alert
from alerts.notifications import render_outbox
from alerts.signing import check_signing_secret, new_signing_secret
from alerts.ssrf import Allowlist, Resolver, vet_url
from storage.metadata import NotFound
from storage.metadata.alerting import AlertStore
from storage.types import ChannelRecord, DeliveryRecord, GroupRecord

__all__ = ["ChannelAdmin"]


class ChannelAdmin:
    """Create, change, rotate and test alert channels."""

    store: AlertStore
    base_url: str
    allowlist: Allowlist
    resolver: Resolver
    on_enqueue: Callable[[], None] | None

    def create_channel(
        self,
        name: str,
        kind: str,
        url: str,
        *,
        signing_secret: str | None = None,
        routing_key: str | None = None,
        options: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> tuple[ChannelRecord, str | None]:
        """Check the kind, its settings and the URL (SSRF rules), and store the channel.
        Signed kinds (the generic webhook) get a signing secret (generated when not given)
        that is returned once, here, and never again."""
        spec = channel_type(kind)  # UnknownChannelKind (a ValueError) names the known ones
        if spec.requires_routing_key and not routing_key:
            raise AlertInputError(f"routing_key is required for a {kind} channel")
        if signing_secret is not None:
            check_signing_secret(signing_secret)  # a bad secret would fail every delivery
        vet_url(url, self.allowlist, self.resolver)
        secret = None
        if spec.signed:
            secret = signing_secret or new_signing_secret()
        rec = self.store.create_channel(
            name,
            kind,
            url,
            [secret] if secret else [],
            options,
            routing_key,
            actor,
        )
        return rec, secret

    def update_channel_url(self, name: str, url: str, actor: str = "system") -> ChannelRecord:
        vet_url(url, self.allowlist, self.resolver)
        return self.store.update_channel(name, url=url, actor=actor)

    def rotate_secret(self, name: str, actor: str = "system") -> tuple[ChannelRecord, str]:
        secret = new_signing_secret()
        return self.store.rotate_secret(name, secret, actor), secret

    def test_channel(self, name: str) -> list[DeliveryRecord]:
        """Queue a sample notification to one channel (delivered by the worker as usual)."""
        ch = self.store.get_channel(name)
        if ch is None:
            raise NotFound(f"channel {name!r} not found")
        now = self.store.now()
        alert = sample_alert(now)
        group = GroupRecord(
            id=0,
            group_key="driftwatch-test",
            rule=alert.rule,
            labels={"tenant": alert.tenant_id, "model": alert.model, "rule": alert.rule},
            next_flush_at=None,
            last_notified_at=None,
            notified_firing=(),
            notified_resolved=(),
            created_at=now,
        )
        items = render_outbox(ch, group, "firing", [alert], "channel test", self.base_url)
        out = self.store.enqueue(items)
        if self.on_enqueue is not None:
            self.on_enqueue()
        return out
