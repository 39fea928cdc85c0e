"""Revocation facts for the edge, read with one raw Redis MGET (no django-redis layers).

Same keys and values as `apps.common.tokens.CacheTokenRevocations` (the accounts context
writes them through Django's cache; integers are stored unpickled by django-redis), but the
read skips django-redis' and django-prometheus' wrappers, which cost more than the round trip
itself on the proxy path. Without Redis (embedded mode) the common class is used as is.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from apps.common.tokens import CacheTokenRevocations

JTI_KEY = "auth:revoked-jti:{}"
USER_KEY = "auth:valid-after:{}"


class RedisTokenRevocations(CacheTokenRevocations):
    """`CacheTokenRevocations` whose `facts_for` is one raw MGET on the cache's Redis."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def facts_for(self, token_id: str, user_id: str) -> tuple[bool, int | None]:
        denied, cutoff = self._client.mget(
            [cache.make_key(JTI_KEY.format(token_id)), cache.make_key(USER_KEY.format(user_id))]
        )
        return denied is not None, int(cutoff) if cutoff is not None else None
