"""SSRF guard for channel URLs: checked when a channel is saved and again before every send.

Rules:

- ``https`` is required; ``http`` only for hosts on the allowlist;
- no user:password in the URL (it would leak into logs and bypass the secret store);
- every address the host resolves to must be global: private (10/8, 172.16/12, 192.168/16,
  fc00::/7), loopback, link-local (169.254/16 with the cloud metadata address
  169.254.169.254, fe80::/10), CGNAT (100.64/10), multicast, reserved, unspecified and
  IPv4-mapped/translated IPv6 addresses are refused unless the host or address is allowlisted;
- the request goes to the vetted address (with the original ``Host`` header and TLS server
  name), so a DNS answer that changes between the check and the connection (rebinding) cannot
  redirect it.

Allowlist entries are host names (``hooks.internal``), addresses (``127.0.0.1``) or networks
(``10.1.0.0/16``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from alerts.errors import AlertInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = ipaddress.ip_address("169.254.169.254")


class UnsafeURL(AlertInputError):
    """A channel URL fails the SSRF rules; the message says which rule and why."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"host {host!r} does not resolve: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        hosts: set[str] = set()
        nets = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(nets))

    def host_allowed(self, host: str) -> bool:
        return host.lower() in self.hosts or self._ip_listed(host)

    def _ip_listed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def address_problem(ip: IPAddress) -> str | None:
    """Why an address may not be called, or None when it is a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None or ip.sixtofour is not None or ip.teredo is not None:
            return "an IPv4-mapped or tunnelled IPv6 address"
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return "a NAT64 address"
    if ip == _METADATA:
        return "the cloud metadata address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (100.64.0.0/10) address"
    for attr, what in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_private", "a private address"),
        ("is_multicast", "a multicast address"),
        ("is_unspecified", "the unspecified address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, attr):
            return what
    if not ip.is_global:
        return "not a global address"
    return None


@dataclass(frozen=True)
class Target:
    """A vetted URL: connect to ``address``, send ``host_header``, verify TLS for ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    host_header: str

    @property
    def connect_url(self) -> str:
        """The URL with its host replaced by the vetted address."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = f"{netloc}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def vet_url(url: str, allowlist: Allowlist, resolver: Resolver = system_resolver) -> Target:
    """Check ``url`` against the SSRF rules and pick the address to connect to.

    Raises
    ------
    UnsafeURL
        Naming the rule that failed.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"URL {url!r} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http"):
        raise UnsafeURL(f"URL scheme {scheme!r} is not allowed; use https")
    if not host:
        raise UnsafeURL(f"URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the URL are not allowed; use the channel's secret")
    host_listed = allowlist.host_allowed(host)
    if scheme == "http" and not host_listed:
        raise UnsafeURL(
            f"http:// is allowed only for allowlisted hosts; {host!r} is not: use https"
        )
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [str(literal)] if literal is not None else list(resolver(host, port))
    if not addresses:
        raise UnsafeURL(f"host {host!r} resolves to no address")
    for raw in addresses:
        ip = ipaddress.ip_address(raw.split("%", 1)[0])
        problem = address_problem(ip)
        if problem and not (host_listed or allowlist._ip_listed(str(ip))):
            raise UnsafeURL(
                f"host {host!r} resolves to {ip}, {problem}; add it to the allowlist "
                "(alert_allowed_hosts) if this is intended"
            )
    default_port = 443 if scheme == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    if literal is not None and literal.version == 6:
        host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    return Target(url, scheme, host, port, addresses[0].split("%", 1)[0], host_header)
