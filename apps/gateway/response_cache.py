"""Response caches: Redis (shared by every worker) and an in-process twin for embedded mode.

Keys come from `core.domain.gateway.caching.cache_key` (they include the caller's user id).
A fill lock (`SET NX PX`) lets one caller per key go upstream on a miss while the others wait
for its answer, so a burst of misses makes at most a couple of upstream calls. When Redis is
unreachable every lookup is a BYPASS (counted), never an error.

An entry's format (`encode`) is versioned by its keys (`KEYSPACE`): a release that changes the
format changes them, so while two releases run side by side (a rolling deploy) each reads only
the entries it wrote; the other's are misses to it, and expire with their TTL.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any

import structlog
from redis.exceptions import RedisError

from apps.gateway.redis_support import redis_unavailable
from core.usecases.gateway.ports import CacheLookup, CacheResult, StoredResponse

log = structlog.get_logger("platform.gateway")

_POLL_SECONDS = 0.01
# Version 2 keeps when an answer was stored and how old it was then (its `Age` when served).
# Version 1's entries (`rc:`, three fields) and these cannot be read by each other's decoder.
# Version 3 keeps a digest of what the request sent in the fields `Vary` names, where version 2
# kept the values (a caller's token or cookie, under `Vary: Authorization, Cookie`): each
# release reads its own, and version 2's entries expire with their TTL. Version 4 has the same
# format, but its digests are of what the upstream received (the gateway's `X-Forwarded-For`,
# `X-User-Roles`...), where version 3's were of what the client sent: a version 3 entry stored
# for one client address would still serve another's. Version 5 has the same format again, but
# a request carrying an API key or token header (`X-API-Key`, `X-Auth-Token`...) is no longer
# stored: a version 4 entry may hold an answer an upstream made for one caller's key, which
# every anonymous caller would be served until it expired.
KEYSPACE = "rc5:"


def lookup_or_claim_lua(entry: str, lock: str, fill_ms: str) -> str:
    """Lua that sets the variable `cached` to the cached answer, or to 1 when this caller now
    holds the fill lock, 0 when another does (`entry`, `lock`, `fill_ms`: KEYS/ARGV slots).
    Shared by this cache's own script and the proxy's edge call (`apps.gateway.limiter`)."""
    return f"""
cached = redis.call('GET', {entry})
if not cached then
  cached = 0
  if redis.call('SET', {lock}, '1', 'NX', 'PX', {fill_ms}) then cached = 1 end
end
"""


_LOOKUP_OR_CLAIM = (
    "local cached\n" + lookup_or_claim_lua("KEYS[1]", "KEYS[2]", "ARGV[1]") + "return cached\n"
)


def encode(response: StoredResponse) -> bytes:
    """One JSON line (status, headers, `varied_on`, `stored_at`, `initial_age`), then the body."""
    meta = json.dumps(
        [
            response.status,
            [list(pair) for pair in response.headers],
            [list(pair) for pair in response.varied_on],
            response.stored_at,
            response.initial_age,
        ]
    )
    return meta.encode() + b"\n" + response.body


def decode(blob: bytes) -> StoredResponse:
    meta, _, body = blob.partition(b"\n")
    status, headers, varied_on, stored_at, initial_age = json.loads(meta)
    return StoredResponse(
        int(status),
        _pairs(headers),
        body,
        _pairs(varied_on),
        float(stored_at),
        float(initial_age),
    )


def _readable(blob: bytes) -> StoredResponse | None:
    """`decode`, or None for an entry this release cannot read (corrupted, or written under its
    keys by something else): logged, and served as if nothing were stored, never as a 500."""
    try:
        return decode(blob)
    except (ValueError, TypeError) as error:
        log.warning("response_cache_entry_unreadable", error=type(error).__name__)
        return None


def _pairs(items: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in items)


class RedisResponseCache:
    """`ResponseCache` in Redis. The proxy's edge call usually makes the lookup itself, with
    the same keys and answer (`keys_for`, `read_lookup`): see `apps.gateway.limiter`."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix + KEYSPACE
        self._lookup = client.register_script(_LOOKUP_OR_CLAIM)

    def keys_for(self, key: str) -> tuple[str, str]:
        """The Redis keys of a cached answer and of its fill lock."""
        return self._prefix + key, f"{self._prefix}lock:{key}"

    def read_lookup(self, reply: Any, entry_key: str) -> CacheLookup:
        """A lookup script's reply: the stored answer, or 1/0 for a MISS with/without the lock.
        An entry that cannot be read is a BYPASS, and is removed so the next call refills it."""
        if isinstance(reply, int):
            return CacheLookup(CacheResult.MISS, filling=bool(reply))
        stored = _readable(reply)
        if stored is None:
            self._forget(entry_key)
            return CacheLookup(CacheResult.BYPASS)
        return CacheLookup(CacheResult.HIT, stored)

    def lookup(self, key: str, fill_seconds: float) -> CacheLookup:
        entry, lock = self.keys_for(key)
        try:
            reply = self._lookup(keys=[entry, lock], args=[int(fill_seconds * 1000)])
        except RedisError as error:
            redis_unavailable("response_cache", error)
            return CacheLookup(CacheResult.BYPASS)
        return self.read_lookup(reply, entry)

    def _forget(self, entry_key: str) -> None:
        try:
            self._client.delete(entry_key)
        except RedisError as error:
            redis_unavailable("response_cache", error)

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
                return _readable(blob)  # None: the waiter calls the upstream itself
            if locked is None:
                return None  # the filler finished without a cacheable answer
        return None

    def store(self, key: str, response: StoredResponse, ttl_seconds: int) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.set(self._prefix + key, encode(response), px=ttl_seconds * 1000)
            pipe.delete(f"{self._prefix}lock:{key}")
            pipe.execute()
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

    def lookup(self, key: str, fill_seconds: float) -> CacheLookup:
        found = self._fresh(key)
        if found is not None:
            return CacheLookup(CacheResult.HIT, found)
        with self._changed:
            if key in self._filling:
                return CacheLookup(CacheResult.MISS)
            self._filling.add(key)
            return CacheLookup(CacheResult.MISS, filling=True)

    def _fresh(self, key: str) -> StoredResponse | None:
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

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
            self._filling.discard(key)
            self._changed.notify_all()

    def release_fill(self, key: str) -> None:
        with self._changed:
            self._filling.discard(key)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
