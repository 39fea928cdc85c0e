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

from redis.exceptions import NoScriptError, RedisError

from apps.gateway.redis_support import redis_unavailable
from core.domain.gateway.ratelimit import RateDecision
from core.domain.gateway.route import RateLimitPolicy

# Also returns the route's circuit fields (KEYS[2]) so the breaker can admit a call on a closed
# circuit without a round trip of its own (see RedisCircuitBreaker.admit).
_SLIDING_WINDOW = """
local circuit = redis.call('HMGET', KEYS[2], 's', 'f')
local state = circuit[1] or 'closed'
local fails = circuit[2] or '0'
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
  return {1, limit - count, tonumber(oldest[2]) + window - now, state, fails}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now, state, fails}
"""


class CircuitHints:
    """What the limiter's script read of a route's circuit, for the same request's breaker."""

    def __init__(self) -> None:
        self._local = threading.local()

    def remember(self, route: str, now: float, state: Any, failures: int) -> None:
        text = state.decode() if isinstance(state, bytes) else str(state)
        self._local.hint = (route, now, text, failures)

    def closed_failures(self, route: str, now: float) -> int | None:
        """Failures of a circuit read closed by this request's limiter call, else None."""
        hint = getattr(self._local, "hint", None)
        self._local.hint = None
        if hint is None or hint[0] != route or hint[1] != now or hint[2] != "closed":
            return None
        return int(hint[3])


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
        self,
        client: Any,
        prefix: str,
        fallback: InProcessSlidingWindowLimiter | None = None,
        circuits: CircuitHints | None = None,
    ) -> None:
        self._client = client
        self._script = client.register_script(_SLIDING_WINDOW)
        self._prefix = f"{prefix}rl:"
        self._circuit_prefix = f"{prefix}cb:"
        self._circuits = circuits
        self._fallback = fallback or InProcessSlidingWindowLimiter()
        self._ids = itertools.count()
        self._pid = os.getpid()

    def _run(self, *keys_and_args: Any) -> Any:
        # EVALSHA straight on the client: redis-py's Script wrapper costs more than the script.
        try:
            return self._client.evalsha(self._script.sha, 2, *keys_and_args)
        except NoScriptError:
            return self._script(keys=list(keys_and_args[:2]), args=list(keys_and_args[2:]))

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        now_ms = int(now * 1000)
        member = f"{now_ms}:{self._pid}:{next(self._ids)}"
        route = subject.split(":", 1)[0]  # subjects start with the route name (no ':' in it)
        try:
            allowed, remaining, reset_ms, state, failures = self._run(
                self._prefix + subject,
                self._circuit_prefix + route,
                now_ms,
                policy.window_seconds * 1000,
                policy.requests,
                member,
            )
        except RedisError as error:
            redis_unavailable("rate_limit", error)
            return self._fallback.hit(subject, policy, now)
        if self._circuits is not None:
            self._circuits.remember(route, now, state, int(failures))
        return RateDecision(bool(allowed), policy.requests, int(remaining), int(reset_ms) / 1000)
