"""Access to Redis for the gateway's shared state, and what happens when it is unreachable.

Every Redis-backed adapter degrades instead of failing the request: it logs (at most every
few seconds) and counts the fallback, then uses its in-process twin.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings
from prometheus_client import Counter

log = structlog.get_logger("platform.gateway")

REDIS_FALLBACKS = Counter(
    "platform_gateway_redis_fallbacks_total",
    "Gateway operations that found Redis unreachable and degraded (limiter, breaker, cache).",
    ["component"],
)
_LOG_EVERY_SECONDS = 5.0
_last_logged: dict[str, float] = {}


def raw_redis() -> Any | None:
    """The raw redis-py client of the default cache, or None in embedded mode (no REDIS_URL)."""
    if not settings.REDIS_URL:
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def key_prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'platform')}:gw:"


def redis_unavailable(component: str, error: Exception) -> None:
    """Count one degraded operation and log it, rate-limited so an outage does not flood logs."""
    REDIS_FALLBACKS.labels(component).inc()
    now = time.monotonic()
    if now - _last_logged.get(component, -_LOG_EVERY_SECONDS) >= _LOG_EVERY_SECONDS:
        _last_logged[component] = now
        log.warning("gateway_redis_unavailable", component=component, error=type(error).__name__)
