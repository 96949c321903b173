"""SSRF rules at save and send time, and the connection going to the vetted address."""

from __future__ import annotations

import pytest

from alerts.ssrf import Allowlist, UnsafeURL, vet_url


def fixed(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "172.16.1.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "169.254.10.10",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "64:ff9b::a00:1",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeURL, match="resolves to"):
        vet_url("https://hooks.example.com/x", Allowlist(), fixed(address))


def test_one_bad_address_among_good_ones_is_enough_to_refuse() -> None:
    with pytest.raises(UnsafeURL):
        vet_url("https://hooks.example.com/x", Allowlist(), fixed("8.8.8.8", "10.0.0.1"))


def test_global_https_is_allowed_and_pinned_to_the_vetted_address() -> None:
    t = vet_url("https://hooks.example.com:8443/a/b?c=d", Allowlist(), fixed("93.184.216.34"))
    assert t.address == "93.184.216.34" and t.host == "hooks.example.com"
    assert t.connect_url == "https://93.184.216.34:8443/a/b?c=d"
    assert t.host_header == "hooks.example.com:8443"
    v6 = vet_url("https://h.example/", Allowlist(), fixed("2606:4700::1111"))
    assert v6.connect_url == "https://[2606:4700::1111]:443/"


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "scheme"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https:///nohost", "no host"),
        ("http://127.0.0.1:8080/x", "https"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
    ],
)
def test_url_rules(url: str, message: str) -> None:
    with pytest.raises(UnsafeURL, match=message):
        vet_url(url, Allowlist(), fixed("93.184.216.34"))


def test_allowlist_by_host_address_and_network() -> None:
    assert vet_url("http://127.0.0.1:9/x", Allowlist.parse(["127.0.0.1"])).address == "127.0.0.1"
    internal = Allowlist.parse(["hooks.internal"])
    assert vet_url("http://hooks.internal/x", internal, fixed("10.1.2.3")).address == "10.1.2.3"
    net = Allowlist.parse(["10.1.0.0/16"])
    assert vet_url("https://a.example/x", net, fixed("10.1.2.3")).address == "10.1.2.3"
    with pytest.raises(UnsafeURL):
        vet_url("https://a.example/x", net, fixed("10.2.0.1"))


def test_dns_rebinding_cannot_switch_the_address() -> None:
    # The resolver answers a public address first and a private one afterwards; the target
    # keeps the vetted address and the sender connects there.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    t = vet_url("https://rebind.example/x", Allowlist(), lambda h, p: next(answers))
    assert t.connect_url.startswith("https://93.184.216.34:443/")


def test_channels_are_checked_at_save_time(alerting) -> None:
    with pytest.raises(UnsafeURL):
        alerting.engine.create_channel("bad", "webhook", "http://10.0.0.1/hook")
    assert alerting.store.list_channels() == []
