"""The client's IP address, trusting `X-Forwarded-For` only through configured proxies.

With `TRUSTED_PROXY_COUNT = 0` (default) the socket peer is the client and a client-sent
`X-Forwarded-For` is ignored; with N trusted proxies the N-th address from the right is used.
An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`: every IPv4 peer of a dual-stack socket, or a
proxy's way of writing one) is the IPv4 address it maps: the per-IP limits mask IPv6 to /64,
and as IPv6 every IPv4 client fell in one /64 (`::`), one budget for all of them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings


def client_ip_from(remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """Pure rule shared by Django views and the gateway's proxy path."""
    peer = _unmapped(remote_addr)
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return peer
    # Not an address (a proxy that writes `ip:port`, or a client's text that reached this
    # place): the rate limits' network math raised on it, a 500 on every limited endpoint.
    return _address(hops[-trusted_proxies]) or peer


def _unmapped(remote_addr: str) -> str:
    """The socket peer's address in its text form (an IPv4-mapped one as IPv4); anything that
    is no address (a test client's, a Unix socket's empty one) as it is."""
    try:
        return _text(ipaddress.ip_address(remote_addr))
    except ValueError:
        return remote_addr


def _text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def _address(hop: str) -> str | None:
    """The IP address in an `X-Forwarded-For` entry (`1.2.3.4`, `1.2.3.4:5678`, `::1`,
    `[::1]:5678`), or None when it holds none."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return _text(ipaddress.ip_address(hop))
    except ValueError:
        return None


def client_ip(request: Any) -> str:
    """The client IP of a Django request (also django-ratelimit's `RATELIMIT_IP_META_KEY`)."""
    meta = request.META
    return client_ip_from(
        meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXY_COUNT
    )


def within(ip: str, networks: Sequence[str]) -> bool:
    """Whether `ip` (as `client_ip` gives it) is in one of `networks` (IP networks in text,
    as `config.env.env_networks` reads them); text that is no address is in none."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(networks)))


@lru_cache(maxsize=8)
def _networks(
    networks: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network) for network in networks)
