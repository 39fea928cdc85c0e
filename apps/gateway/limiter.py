"""Sliding-window rate limiters and the edge's revocation check: Redis (one atomic Lua call
per request) and in-process.

The window is a log of call times (a sorted set in Redis), so exactly `requests` calls pass
per `window_seconds`, never one more under concurrency. The same script first reads the token's
revocation facts (the keys and rule of `apps.common.tokens`), so a revoked token is refused
before it is counted and the proxy pays one round trip, not two. If Redis is unreachable the
limiter falls back to its in-process twin (per-worker limits) and revocation fails open, as
everywhere on the platform; both are counted.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from typing import Any

from django.core.cache import cache
from redis.exceptions import NoScriptError, RedisError

from apps.common.tokens import REVOCATION_LOOKUP_FAILURES, CacheTokenRevocations
from apps.common.tokens import REVOKED_JTI_KEY as REVOKED_JTI
from apps.common.tokens import USER_CUTOFF_KEY as VALID_AFTER
from apps.gateway.redis_support import redis_unavailable
from core.domain.gateway.ratelimit import RateDecision
from core.domain.gateway.route import RateLimitPolicy
from core.domain.shared.identity import Principal, is_revoked
from core.usecases.gateway.ports import EdgeVerdict

# KEYS: window, circuit, denied-jti, user cut-off. ARGV: now_ms, window_ms, limit (0: none),
# member, iat (-1: anonymous), 1 to read the circuit (0: nobody uses it). Returns {revoked} or
# {0, allowed, remaining, reset_ms, circuit state, failures}: the circuit fields let the breaker
# admit a call on a closed circuit without a round trip of its own (RedisCircuitBreaker.admit).
_SLIDING_WINDOW = """
if ARGV[5] ~= '-1' then
  local facts = redis.call('MGET', KEYS[3], KEYS[4])
  if facts[1] then return {1} end
  if facts[2] and tonumber(ARGV[5]) < tonumber(facts[2]) then return {1} end
end
local limit = tonumber(ARGV[3])
if limit == 0 then return {0} end
local state, fails = 'closed', '0'
if ARGV[6] == '1' then
  local circuit = redis.call('HMGET', KEYS[2], 's', 'f')
  state = circuit[1] or 'closed'
  fails = circuit[2] or '0'
end
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, 1, limit - count, tonumber(oldest[2]) + window - now, state, fails}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, 0, tonumber(oldest[2]) + window - now, state, fails}
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
            return self._client.evalsha(self._script.sha, 4, *keys_and_args)
        except NoScriptError:
            return self._script(keys=list(keys_and_args[:4]), args=list(keys_and_args[4:]))

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        """`RateLimiter`: one sliding-window check."""
        decision = self.check(None, subject, policy, now).decision
        assert decision is not None
        return decision

    def check(
        self,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
    ) -> EdgeVerdict:
        """`EdgeChecks`: revocation facts, then the limit, in one EVALSHA."""
        now_ms = int(now * 1000)
        route = subject.split(":", 1)[0] if subject else ""  # subjects start with the route
        keys = [
            self._prefix + (subject or ""),
            self._circuit_prefix + route,
            cache.make_key(REVOKED_JTI.format(principal.token_id)) if principal else "",
            cache.make_key(VALID_AFTER.format(principal.user_id)) if principal else "",
        ]
        args = [
            now_ms,
            policy.window_seconds * 1000 if policy else 0,
            policy.requests if policy else 0,
            f"{now_ms}:{self._pid}:{next(self._ids)}",
            int(principal.issued_at.timestamp()) if principal else -1,
            1 if self._circuits is not None else 0,
        ]
        try:
            reply = self._run(*keys, *args)
        except RedisError as error:
            redis_unavailable("rate_limit", error)
            if principal is not None:
                REVOCATION_LOOKUP_FAILURES.inc()  # fail open, as the platform's verifier does
            if subject is None or policy is None:
                return EdgeVerdict(revoked=False)
            return EdgeVerdict(False, self._fallback.hit(subject, policy, now))
        if int(reply[0]):
            return EdgeVerdict(revoked=True)
        if subject is None or policy is None:
            return EdgeVerdict(revoked=False)
        _, allowed, remaining, reset_ms, state, failures = reply
        if self._circuits is not None:
            self._circuits.remember(route, now, state, int(failures))
        decision = RateDecision(
            bool(allowed), policy.requests, int(remaining), int(reset_ms) / 1000
        )
        return EdgeVerdict(False, decision)


class NoRevocationFacts(CacheTokenRevocations):
    """Revocation reader for the edge's verifier: the facts are read by `EdgeChecks` instead,
    together with the rate limit (one round trip). Writing is unchanged."""

    def facts_for(self, token_id: str, user_id: str) -> tuple[bool, int | None]:
        return False, None


class InProcessEdgeChecks:
    """`EdgeChecks` for embedded mode: the cache's revocation facts and an in-process limiter."""

    def __init__(self, limiter: InProcessSlidingWindowLimiter | None = None) -> None:
        self._limiter = limiter or InProcessSlidingWindowLimiter()
        self._revocations = CacheTokenRevocations()

    def check(
        self,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
    ) -> EdgeVerdict:
        if principal is not None:
            denied, cutoff = self._revocations.facts_for(principal.token_id, principal.user_id)
            issued_at = int(principal.issued_at.timestamp())
            if is_revoked(issued_at=issued_at, token_denied=denied, user_valid_after=cutoff):
                return EdgeVerdict(revoked=True)
        if subject is None or policy is None:
            return EdgeVerdict(revoked=False)
        return EdgeVerdict(False, self._limiter.hit(subject, policy, now))
