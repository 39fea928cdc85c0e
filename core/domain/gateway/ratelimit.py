"""What a rate-limit check answers, and the headers it puts on every response."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from core.domain.gateway.route import LimitKey, RateLimitPolicy


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One check of a sliding window: allowed or not, what is left, when a slot frees."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float

    @classmethod
    def standing(cls, limit: int, used: int, reset_seconds: float) -> RateDecision:
        """The window as it stands, counting nothing: `used` calls in it, the oldest leaving
        in `reset_seconds` (0 when empty); `allowed` says whether a call now would pass."""
        return cls(used < limit, limit, limit - used, reset_seconds)

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The `RateLimit-*` fields, and `Retry-After` when the limiter refused the call."""
        items = self.quota_headers()
        if self.allowed:
            return items
        return (*items, ("Retry-After", str(max(1, math.ceil(self.reset_seconds)))))

    def quota_headers(self) -> tuple[tuple[str, str], ...]:
        """The three `RateLimit-*` fields alone: what an answer refused for another reason
        (401, 403, 405...) carries, since waiting would not help it."""
        return (
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", str(max(0, self.remaining))),
            ("RateLimit-Reset", str(max(0, math.ceil(self.reset_seconds)))),
        )


def limit_subject(
    route: str, policy: RateLimitPolicy, *, user_id: str | None, client_ip: str
) -> str:
    """Whom this call counts against: the user when known and asked for, else the client IP."""
    if policy.key is LimitKey.USER and user_id:
        return f"{route}:user:{user_id}"
    return f"{route}:ip:{client_network(client_ip)}"


def client_network(client_ip: str) -> str:
    """What an IP limit counts: an IPv4 address, or the /64 of an IPv6 one. A single IPv6
    host is usually handed a whole /64, so counting its addresses one by one would give it
    2^64 budgets (the accounts' per-IP limits, django-ratelimit, mask IPv6 to /64 too)."""
    if ":" not in client_ip:
        return client_ip
    try:
        address = ipaddress.IPv6Address(client_ip)
    except ValueError:
        return client_ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return f"{ipaddress.IPv6Network((address, 64), strict=False).network_address}/64"
