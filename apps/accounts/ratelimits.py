"""Per-IP rate limits of the public accounts endpoints, on django-ratelimit.

Rates are read from `ACCOUNTS_RATE_LIMITS` at request time; a blocked request raises
`Ratelimited` carrying `retry_after`, which the problem handler turns into 429 + Retry-After.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage
from django_ratelimit.exceptions import Ratelimited


def enforce(request: Any, group: str) -> None:
    """Count this request against the client IP's `group` limit; raise when over it."""
    usage = get_usage(
        getattr(request, "_request", request),
        group=f"accounts.{group}",
        key="ip",
        rate=settings.ACCOUNTS_RATE_LIMITS[group],
        increment=True,
    )
    if usage is not None and usage["should_limit"]:
        error = Ratelimited()
        error.retry_after = max(1, int(usage["time_left"]))  # type: ignore[attr-defined]
        raise error
