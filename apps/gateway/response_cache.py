"""Response caches: Redis (shared by every worker) and an in-process twin for embedded mode.

Keys come from `core.domain.gateway.caching.cache_key` (they include the caller's user id).
A fill lock (`SET NX PX`) lets one caller per key go upstream on a miss while the others wait
for its answer, so a burst of misses makes at most a couple of upstream calls. When Redis is
unreachable every lookup is a BYPASS (counted), never an error.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

from redis.exceptions import RedisError

from apps.gateway.redis_support import redis_unavailable
from core.usecases.gateway.ports import CacheResult, StoredResponse

_POLL_SECONDS = 0.01


def encode(response: StoredResponse) -> bytes:
    meta = json.dumps([response.status, [list(pair) for pair in response.headers]])
    return meta.encode() + b"\n" + response.body


def decode(blob: bytes) -> StoredResponse:
    meta, _, body = blob.partition(b"\n")
    status, headers = json.loads(meta)
    return StoredResponse(int(status), tuple((str(k), str(v)) for k, v in headers), body)


class RedisResponseCache:
    """`ResponseCache` in Redis."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}rc:"

    def lookup(self, key: str) -> tuple[CacheResult, StoredResponse | None]:
        try:
            blob = self._client.get(self._prefix + key)
        except RedisError as error:
            redis_unavailable("response_cache", error)
            return CacheResult.BYPASS, None
        if blob is None:
            return CacheResult.MISS, None
        return CacheResult.HIT, decode(blob)

    def claim_fill(self, key: str, ttl_seconds: float) -> bool:
        try:
            return bool(
                self._client.set(
                    f"{self._prefix}lock:{key}", b"1", nx=True, px=int(ttl_seconds * 1000)
                )
            )
        except RedisError as error:
            redis_unavailable("response_cache", error)
            return True

    def wait_for(self, key: str, timeout_seconds: float) -> StoredResponse | None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            try:
                blob, locked = self._client.mget([self._prefix + key, f"{self._prefix}lock:{key}"])
            except RedisError as error:
                redis_unavailable("response_cache", error)
                return None
            if blob is not None:
                return decode(blob)
            if locked is None:
                return None  # the filler finished without a cacheable answer
        return None

    def store(self, key: str, response: StoredResponse, ttl_seconds: int) -> None:
        try:
            self._client.set(self._prefix + key, encode(response), px=ttl_seconds * 1000)
        except RedisError as error:
            redis_unavailable("response_cache", error)

    def release_fill(self, key: str) -> None:
        try:
            self._client.delete(f"{self._prefix}lock:{key}")
        except RedisError as error:
            redis_unavailable("response_cache", error)


class InProcessResponseCache:
    """`ResponseCache` in this process's memory, bounded (least recently stored goes first)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()
        self._filling: set[str] = set()
        self._changed = threading.Condition()
        self._max = max_entries

    def lookup(self, key: str) -> tuple[CacheResult, StoredResponse | None]:
        found = self._fresh(key)
        return (CacheResult.HIT, found) if found else (CacheResult.MISS, None)

    def _fresh(self, key: str) -> StoredResponse | None:
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def claim_fill(self, key: str, ttl_seconds: float) -> bool:
        with self._changed:
            if key in self._filling:
                return False
            self._filling.add(key)
            return True

    def wait_for(self, key: str, timeout_seconds: float) -> StoredResponse | None:
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while key in self._filling:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
        return self._fresh(key)

    def store(self, key: str, response: StoredResponse, ttl_seconds: int) -> None:
        with self._changed:
            self._entries[key] = (time.monotonic() + ttl_seconds, response)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def release_fill(self, key: str) -> None:
        with self._changed:
            self._filling.discard(key)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
