"""What the platform's rate limits on API views share, on django-ratelimit.

`enforce` counts a request in a fixed window of the `ratelimit` cache, keyed by client IP
(`apps.common.clientip`, an IPv6 client by its /64) or by a caller's id; past the rate it calls
back (each context counts its own refusals) and raises `Ratelimited` carrying `retry_after`
(the whole seconds until the next window starts), which the problem handler turns into 429
`rate_limited` + Retry-After. Which rate and key an endpoint uses is its context's business,
not this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django_ratelimit.core import get_usage
from django_ratelimit.exceptions import Ratelimited

from core.domain.shared.rates import parse_rate

# django-ratelimit's key: "ip" (the client IP as `RATELIMIT_IP_META_KEY` tells it, IPv6 masked
# to /64), or a function of (group, request) giving the value counted.
Key = str | Callable[[str, Any], str]


def split_rate(rate: str) -> tuple[int, int]:
    """`10/m` as (10, 60), `100/5m` as (100, 300): how many per how many seconds (a rate the
    settings checked at start-up, `config.env.env_rate`)."""
    parsed = parse_rate(rate)
    if parsed is None:
        raise ValueError(f"not a rate: {rate!r}")
    return parsed


def enforce(
    request: Any, *, group: str, rate: str | None, key: Key, refused: Callable[[], None]
) -> None:
    """Count this request against `group`'s `rate` (None: no limit) for `key`; past it, call
    `refused` and raise `Ratelimited`. With the cache unreachable nothing is limited
    (`RATELIMIT_FAIL_OPEN`)."""
    if rate is None:
        return
    usage = get_usage(
        getattr(request, "_request", request), group=group, key=key, rate=rate, increment=True
    )
    if usage is not None and usage["should_limit"]:
        refused()
        error = Ratelimited()
        # Until the next window starts, in whole seconds rounded up: django-ratelimit's window
        # includes its last whole second, which `time_left` counts to from the current one, so
        # the next starts a second after that (at least 1: a cache failing closed says -1).
        error.retry_after = max(1, int(usage["time_left"]) + 1)  # type: ignore[attr-defined]
        raise error
