"""Who the client is: the TCP peer, or (only when the peer is a configured reverse proxy) the address that
proxy reports.

A client can put any ``X-Forwarded-For`` or ``Forwarded`` header into its request; believing it would let
one client pose as any number of clients and escape every per-address limit. So:

* ``Settings.trusted_proxies`` (``TVOTE_TRUSTED_PROXIES``) lists the addresses and networks of the reverse
  proxies in front of the server (``ipaddress`` networks; empty by default: no header is believed);
* ``Settings.proxy_header`` (``TVOTE_PROXY_HEADER``) names the one header those proxies set:
  ``x-forwarded-for`` (default) or ``forwarded`` (RFC 7239, its ``for=`` parameters). The other header is
  never read, so a client cannot smuggle one past a proxy that only appends to the other;
* when the TCP peer is a trusted proxy, the header's addresses are read from the right (each proxy appends
  the address it saw) and the first one that is not a trusted proxy is the client; everything to its left
  was written by the client and is ignored. When the peer is not a trusted proxy, the header is ignored.

:class:`ClientAddressMiddleware` writes the result into the ASGI scope (``request.client.host``), so
everything downstream (the rate limits of :mod:`voting._deps`) sees one answer. Run the app with the ASGI
server's own proxy-header handling off (``uvicorn ... proxy_headers=False``, as ``tvote serve`` does):
uvicorn otherwise believes ``X-Forwarded-For`` from 127.0.0.1 before this middleware runs.

Addresses are never logged or stored: the rate limiter keeps only salted hashes of them, in memory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._errors import ConfigurationError

__all__ = ["PROXY_HEADERS", "ClientAddressMiddleware", "ProxyHeader", "TrustedProxies", "address_key"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ProxyHeader = Literal["x-forwarded-for", "forwarded"]
PROXY_HEADERS: Final[tuple[str, ...]] = ("x-forwarded-for", "forwarded")
#: an element longer than this is not an address; what a proxy reports is kept at most this long
_MAX_ELEMENT: Final[int] = 64
#: IPv6 clients are grouped by their /64: one subscriber usually holds a whole /64 and can rotate inside it
IPV6_CLIENT_PREFIX: Final[int] = 64


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _strip_port(value: str) -> str:
    """``[2001:db8::1]:443`` → ``2001:db8::1``; ``192.0.2.1:80`` → ``192.0.2.1``; anything else unchanged."""
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _forwarded_for(element: str) -> str:
    """The ``for=`` value of one RFC 7239 ``forwarded-element`` (``for=192.0.2.60;proto=https``), unquoted;
    an element without one reads as ``unknown`` (the RFC's word for an undisclosed address)."""
    for pair in element.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name.strip().lower() == "for":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"')
            return value
    return "unknown"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The reverse proxies whose client-address header is believed, and which header that is."""

    networks: tuple[IPNetwork, ...] = ()
    header: ProxyHeader = "x-forwarded-for"

    def __post_init__(self) -> None:
        if self.header not in PROXY_HEADERS:
            raise ConfigurationError(
                "config.proxy_header", "TVOTE_PROXY_HEADER is 'x-forwarded-for' or 'forwarded'"
            )
        for n in self.networks:
            if not isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network):
                raise ConfigurationError("config.trusted_proxies", "trusted proxies are IP networks")

    @classmethod
    def parse(cls, specs: Iterable[str], header: str = "x-forwarded-for") -> TrustedProxies:
        """From ``["10.0.0.5", "192.0.2.0/24", "2001:db8::/48"]``; a malformed entry, or a network with host
        bits set (``10.0.0.1/8``: which was meant?), is refused with :class:`ConfigurationError`."""
        networks: list[IPNetwork] = []
        for spec in specs:
            text = spec.strip()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=True))
            except ValueError as e:
                raise ConfigurationError(
                    "config.trusted_proxies",
                    f"TVOTE_TRUSTED_PROXIES: {text[:60]!r} is not an IP address or network ({e})",
                ) from e
        if header not in PROXY_HEADERS:
            raise ConfigurationError(
                "config.proxy_header", "TVOTE_PROXY_HEADER is 'x-forwarded-for' or 'forwarded'"
            )
        return cls(tuple(networks), header)  # type: ignore[arg-type]

    def trusts(self, host: str | None) -> bool:
        ip = _parse_address(host) if host else None
        return ip is not None and any(ip in n for n in self.networks)

    def client(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The client's address for a request from ``peer`` with these raw headers (see the module doc)."""
        if not self.networks or not self.trusts(peer):
            return peer
        name = self.header.encode()
        values = [v.decode("latin-1") for k, v in headers if k.lower() == name]
        elements = [e.strip() for e in ",".join(values).split(",") if e.strip()]
        if not elements:
            return peer  # the proxy sent nothing: the proxy itself is the client
        found: str | None = None
        for element in reversed(elements):
            value = _forwarded_for(element) if self.header == "forwarded" else element
            host = _strip_port(value.strip())
            found = host[:_MAX_ELEMENT]
            if not self.trusts(host):
                return found
        return found  # every hop is a trusted proxy: the left-most is the client


def address_key(host: str | None) -> str:
    """The rate-limit key of a client address: an IPv4 address itself, an IPv6 address its /64 (one
    subscriber's prefix), anything else (``unknown``, an obfuscated RFC 7239 identifier) as given."""
    if not host:
        return "unknown"
    ip = _parse_address(host)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip) if ip is not None else host[:_MAX_ELEMENT]


class ClientAddressMiddleware:
    """ASGI middleware: replace ``scope["client"]`` by :meth:`TrustedProxies.client` (port 0 when taken from
    a proxy header)."""

    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app, self.proxies = app, proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies.networks:
            peer = scope.get("client")
            host = peer[0] if peer else None
            client = self.proxies.client(host, scope.get("headers", ()))
            if client != host:
                scope["client"] = (client, 0)
        await self.app(scope, receive, send)
