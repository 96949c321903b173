"""Contract of the alert-channel registry (alerts/channels/): every registered kind renders a
firing and a resolved notification into JSON bodies, the database accepts every kind, and the
API and the CLI offer exactly the registered kinds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from alerts.channels import ChannelType, UnknownChannelKind, channel_type, kinds, register
from alerts.formats import sample_alert
from storage.types import CHANNEL_KINDS, ChannelRecord, GroupRecord
from tests.alerts.helpers import T0


def _channel(kind: str) -> ChannelRecord:
    return ChannelRecord(
        id=7,
        name=f"{kind}-test",
        kind=kind,
        url_hint="https://example.com/…",
        enabled=True,
        disabled_reason=None,
        secret_count=1,
        options={},
        created_at=T0,
        updated_at=T0,
    )


def _group() -> GroupRecord:
    return GroupRecord(
        id=1,
        group_key="g",
        rule="r",
        labels={"rule": "r"},
        next_flush_at=None,
        last_notified_at=None,
        notified_firing=(),
        notified_resolved=(),
        created_at=T0,
    )


def test_the_database_accepts_exactly_the_registered_kinds() -> None:
    assert set(kinds()) == set(CHANNEL_KINDS)


@pytest.mark.parametrize("kind", kinds())
def test_every_kind_renders_json_for_firing_and_resolved(kind: str) -> None:
    spec = channel_type(kind)
    assert spec.kind == kind and spec.description
    firing = sample_alert(T0)
    resolved = replace(firing, state="resolved", resolved_at=T0 + timedelta(hours=1))
    for status, alert in (("firing", firing), ("resolved", resolved)):
        out = spec.render(
            _channel(kind), _group(), status, [alert], "test", frozenset(), "https://dw"
        )
        assert out, kind
        for event, body in out:
            assert event and isinstance(json.loads(body), dict)
            sent = json.loads(spec.at_send(body, "rk-123"))
            assert isinstance(sent, dict)
    ack = spec.acknowledge(firing, "https://dw")
    assert ack is None or isinstance(json.loads(ack), dict)


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(UnknownChannelKind) as exc:
        channel_type("teams")
    assert "'teams'" in str(exc.value)
    for kind in kinds():
        assert kind in str(exc.value)


def test_a_kind_is_registered_once() -> None:
    with pytest.raises(ValueError, match="twice"):

        @register
        class Again(ChannelType):
            kind = "slack"
            description = "a second slack"


def test_the_api_offers_the_registered_kinds() -> None:
    from monitor.api.routes_channels import ChannelIn

    schema = ChannelIn.model_json_schema()
    assert set(schema["properties"]["kind"]["enum"]) == set(kinds())


def test_only_pagerduty_adds_its_routing_key_at_send_time() -> None:
    body = '{"event_action":"trigger"}'
    assert json.loads(channel_type("pagerduty").at_send(body, "rk"))["routing_key"] == "rk"
    assert channel_type("webhook").at_send(body, "rk") == body
    assert channel_type("slack").at_send(body, "rk") == body
