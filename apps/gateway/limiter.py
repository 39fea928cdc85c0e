"""Sliding-window rate limiters: Redis (one atomic Lua call per check) and in-process.

The window is a log of call times (a sorted set in Redis), so exactly `requests` calls pass
per `window_seconds`, never one more under concurrency. If Redis is unreachable the Redis
limiter falls back to its in-process twin (per-worker limits) and counts the fallback.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from typing import Any

from redis.exceptions import RedisError

from apps.gateway.redis_support import redis_unavailable
from core.domain.gateway.ratelimit import RateDecision
from core.domain.gateway.route import RateLimitPolicy

_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, limit - count, tonumber(oldest[2]) + window - now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


class InProcessSlidingWindowLimiter:
    """`RateLimiter` for one process (embedded mode, or Redis unreachable); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._checks = 0

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        window = float(policy.window_seconds)
        with self._lock:
            calls = self._windows.setdefault(subject, deque())
            while calls and calls[0] <= now - window:
                calls.popleft()
            allowed = len(calls) < policy.requests
            if allowed:
                calls.append(now)
            reset = calls[0] + window - now if calls else window
            remaining = policy.requests - len(calls)
            self._checks += 1
            if self._checks % 10_000 == 0:
                self._forget_idle(now)
        return RateDecision(allowed, policy.requests, remaining, reset)

    def _forget_idle(self, now: float) -> None:
        # Windows are at most a day long in practice; drop subjects idle for longer.
        for subject in [
            s for s, calls in self._windows.items() if not calls or calls[-1] < now - 86_400
        ]:
            del self._windows[subject]


class RedisSlidingWindowLimiter:
    """`RateLimiter` shared by every worker: a sorted set per subject, one EVALSHA per check."""

    def __init__(
        self, client: Any, prefix: str, fallback: InProcessSlidingWindowLimiter | None = None
    ) -> None:
        self._script = client.register_script(_SLIDING_WINDOW)
        self._prefix = f"{prefix}rl:"
        self._fallback = fallback or InProcessSlidingWindowLimiter()
        self._ids = itertools.count()
        self._pid = os.getpid()

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        now_ms = int(now * 1000)
        member = f"{now_ms}:{self._pid}:{next(self._ids)}"
        try:
            allowed, remaining, reset_ms = self._script(
                keys=[self._prefix + subject],
                args=[now_ms, policy.window_seconds * 1000, policy.requests, member],
            )
        except RedisError as error:
            redis_unavailable("rate_limit", error)
            return self._fallback.hit(subject, policy, now)
        return RateDecision(bool(allowed), policy.requests, int(remaining), int(reset_ms) / 1000)
