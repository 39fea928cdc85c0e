"""Rate limits of the accounts endpoints, on django-ratelimit: per client IP, or per user.

Rates are read from `ACCOUNTS_RATE_LIMITS` at request time; a blocked request is counted
(`platform_accounts_rate_limited_total{endpoint}`) and raises `Ratelimited` carrying
`retry_after`, which the problem handler turns into 429 + Retry-After.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from django_ratelimit.exceptions import Ratelimited

from apps.accounts import metrics


def _user(group: str, request: Any) -> str:
    return str(request.user.principal.user_id)


def enforce(request: Any, group: str, *, per_user: bool = False) -> None:
    """Count this request against the `group` limit of its client IP (or, with `per_user`, of
    its authenticated user); raise when over it."""
    usage = get_usage(
        getattr(request, "_request", request),
        group=f"accounts.{group}",
        key=_user if per_user else "ip",
        rate=settings.ACCOUNTS_RATE_LIMITS[group],
        increment=True,
    )
    if usage is not None and usage["should_limit"]:
        metrics.RATE_LIMITED.labels(endpoint=group).inc()
        error = Ratelimited()
        error.retry_after = max(1, int(usage["time_left"]))  # type: ignore[attr-defined]
        raise error
