"""Rate limits of the accounts endpoints, on django-ratelimit: per client IP, or per user;
and the per-address budgets of the emails anyone may ask for (`CacheEmailQuota`).

Rates are read from `ACCOUNTS_RATE_LIMITS` at request time; a blocked request is counted
(`platform_accounts_rate_limited_total{endpoint}`) and raises `Ratelimited`, which the problem
handler turns into 429 + Retry-After (`apps.common.ratelimits`). An address's spent
budget is no answer at all (the use case sends nothing and answers alike), so it lives behind
the `EmailQuota` port instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import caches
from django.utils.crypto import salted_hmac

from apps.accounts import metrics
from apps.common import ratelimits as limits
from apps.common.logging import EveryFewSeconds, EveryFewSecondsEach
from core.domain.accounts.values import Email
from core.usecases.accounts.ports import Clock

log = structlog.get_logger(__name__)
# Seconds a window's counter outlives the window, so a clock a little ahead of Redis's never
# finds it gone early (django-ratelimit keeps the same margin).
EXPIRY_MARGIN = 5


def _user(group: str, request: Any) -> str:
    return str(request.user.principal.user_id)


def enforce(request: Any, group: str, *, per_user: bool = False) -> None:
    """Count this request against the `group` limit of its client IP (or, with `per_user`, of
    its authenticated user); raise when over it."""
    limits.enforce(
        request,
        group=f"accounts.{group}",
        rate=settings.ACCOUNTS_RATE_LIMITS[group],
        key=_user if per_user else "ip",
        refused=metrics.RATE_LIMITED.labels(endpoint=group).inc,
    )


# One `email_quota_unavailable` line every 5 s per process and kind of email while the cache is
# unreachable (the counter counts every lapsed budget), as the other Redis outages' warnings.
_LOG_EVERY_SECONDS = 5.0
_LOGGED = EveryFewSecondsEach(_LOG_EVERY_SECONDS)


def email_quota_logged(kind: str) -> EveryFewSeconds:
    """The process's throttle of `kind`'s `email_quota_unavailable` lines."""
    return _LOGGED[kind]


def address_key(address: Email) -> str:
    """What an email budget's key holds of `address`: an HMAC-SHA256 under a key derived from
    `SECRET_KEY`. A plain hash let anyone who reads Redis confirm a guessed address."""
    return salted_hmac(
        "platform.accounts.email-quota", address.value, algorithm="sha256"
    ).hexdigest()


class CacheEmailQuota:
    """`EmailQuota` on fixed windows (`rate`, e.g. `5/h`; None: no budget) in django-ratelimit's
    cache (Redis). The key holds a hash of the address, never the address. An unreachable
    cache lets the email go (counted, and logged at most every few seconds), as the per-IP
    limits do (`RATELIMIT_FAIL_OPEN`)."""

    def __init__(
        self,
        kind: str,
        rate: str | None,
        *,
        clock: Clock,
        log_failure: Callable[[], bool] | None = None,
    ) -> None:
        self._kind = kind
        self._rate = limits.split_rate(rate) if rate else None
        self._clock = clock
        self._log_failure = log_failure or email_quota_logged(kind)

    def take(self, to: Email) -> bool:
        if self._rate is None:
            return True
        limit, period = self._rate
        now = int(self._clock.now().timestamp())
        key = f"accounts:email-quota:{self._kind}:{address_key(to)}:{now // period}"
        cache = caches[settings.RATELIMIT_USE_CACHE]
        try:
            if cache.add(key, 1, timeout=period - now % period + EXPIRY_MARGIN):
                count = 1
            else:
                count = cache.incr(key)
        except ValueError:  # gone between add and incr (an in-process cache says so)
            count = None
        if count is None:  # the ratelimit alias answers None for a cache it cannot reach
            metrics.EMAIL_BUDGETS_UNAVAILABLE.labels(kind=self._kind).inc()
            if self._log_failure():
                log.warning("email_quota_unavailable", kind=self._kind)
            return True
        return int(count) <= limit
