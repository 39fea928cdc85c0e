"""The client's IP address, trusting `X-Forwarded-For` only through configured proxies.

With `TRUSTED_PROXY_COUNT = 0` (default) the socket peer is the client and a client-sent
`X-Forwarded-For` is ignored; with N trusted proxies the N-th address from the right is used.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def client_ip_from(remote_addr: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """Pure rule shared by Django views and the gateway's proxy path."""
    if trusted_proxies <= 0 or not forwarded_for:
        return remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return remote_addr
    return hops[-trusted_proxies]


def client_ip(request: Any) -> str:
    """The client IP of a Django request (also django-ratelimit's `RATELIMIT_IP_META_KEY`)."""
    meta = request.META
    return client_ip_from(
        meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"), settings.TRUSTED_PROXY_COUNT
    )
