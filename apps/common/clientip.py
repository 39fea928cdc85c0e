"""The client's IP address, trusting `X-Forwarded-For` only through configured proxies.

With `TRUSTED_PROXY_COUNT = 0` (default) the socket peer is the client and a client-sent
`X-Forwarded-For` is ignored; with N trusted proxies the N-th address from the right is used.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def client_ip_from(remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """Pure rule shared by Django views and the gateway's proxy path."""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return remote_addr
    # Not an address (a proxy that writes `ip:port`, or a client's text that reached this
    # place): the rate limits' network math raised on it, a 500 on every limited endpoint.
    return _address(hops[-trusted_proxies]) or remote_addr


def _address(hop: str) -> str | None:
    """The IP address in an `X-Forwarded-For` entry (`1.2.3.4`, `1.2.3.4:5678`, `::1`,
    `[::1]:5678`), or None when it holds none."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


def client_ip(request: Any) -> str:
    """The client IP of a Django request (also django-ratelimit's `RATELIMIT_IP_META_KEY`)."""
    meta = request.META
    return client_ip_from(
        meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXY_COUNT
    )
