"""Sliding-window rate limiters and the edge's revocation check: Redis (one atomic Lua call
per request) and in-process.

The window is a log of call times (a sorted set in Redis), so exactly `requests` calls pass
per `window_seconds`, never one more under concurrency. The same script first reads the token's
revocation facts (the keys and rule of `apps.common.tokens`), so a revoked token is refused
before it is counted and the proxy pays one round trip, not two. If Redis is unreachable the
limiter falls back to its in-process twin (per-worker limits) and revocation fails open, as
everywhere on the platform; both are counted. A call refused before the limiter (401, 403,
405...) is not counted: it reads its window with a script that writes nothing (`peek`), for the
`RateLimit-*` fields every answer of a limited route carries.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import threading
from collections import deque
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from redis.exceptions import NoScriptError, RedisError

from apps.common.tokens import REVOCATION_LOOKUP_FAILURES, CacheTokenRevocations
from apps.common.tokens import REVOKED_JTI_KEY as REVOKED_JTI
from apps.common.tokens import REVOKED_SID_KEY as REVOKED_SID
from apps.common.tokens import USER_CUTOFF_KEY as VALID_AFTER
from apps.gateway.redis_support import DirectRedis, redis_unavailable
from apps.gateway.response_cache import RedisResponseCache, lookup_or_claim_lua
from core.domain.gateway.ratelimit import RateDecision
from core.domain.gateway.route import RateLimitPolicy
from core.domain.shared.identity import Principal
from core.usecases.gateway.ports import (
    CacheLookup,
    CacheProbe,
    CacheResult,
    EdgeVerdict,
    WindowPeek,
)

# The sliding window, shared by both scripts. KEYS[1]: the subject's sorted set of call times;
# ARGV: now_ms, window_ms, limit (0: none), member. Sets allowed (1/0, -1: no limit), remaining
# and reset (ms until the oldest call leaves the window).
_WINDOW = """
local allowed, remaining, reset = -1, 0, 0
local limit = tonumber(ARGV[3])
if limit > 0 then
  local now = tonumber(ARGV[1])
  local window = tonumber(ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[1])
  allowed = 0
  if count < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
    count = count + 1
    allowed = 1
    remaining = limit - count
  end
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window - now
end
"""


def _revoked_lua(jti: str, cutoff: str, sid: str, iat: str) -> str:
    """Lua that sets `revoked` (true when any revocation fact refuses the token): the keys of
    its denied jti, its user's cut-off and its revoked session, and its iat (-1: anonymous)."""
    return f"""
local revoked = false
if {iat} ~= '-1' then
  local facts = redis.call('MGET', {jti}, {cutoff}, {sid})
  revoked = (facts[1] or facts[3] or (facts[2] and tonumber({iat}) < tonumber(facts[2]))) and true
end
"""


# `RateLimiter.hit`: the window alone. Returns {allowed, remaining, reset_ms}.
_LIMIT = _WINDOW + "return {allowed, remaining, reset}\n"
# The edge call. KEYS: window, circuit, denied-jti, user cut-off, revoked session (sid), cached
# answer, fill lock ('' when unused). ARGV: the window's four, then iat (-1: anonymous), 1 to
# read the circuit, fill-lock ms. Returns {1} when the token is revoked (before it is counted),
# else {0, allowed, remaining, reset_ms, circuit state, failures, cache}: cache is the stored
# answer, 1 when this call took the fill lock, 0 when another holds it, -1 when nothing was
# looked up (no probe, or the call is refused). The circuit fields let the breaker admit a call
# on a closed circuit without a round trip of its own (RedisCircuitBreaker.admit).
_EDGE = (
    _revoked_lua("KEYS[3]", "KEYS[4]", "KEYS[5]", "ARGV[5]")
    + """
if revoked then return {1} end
local state, fails = 'closed', '0'
if ARGV[6] == '1' then
  local circuit = redis.call('HMGET', KEYS[2], 's', 'f')
  state = circuit[1] or 'closed'
  fails = circuit[2] or '0'
end
"""
    + _WINDOW
    + """
if allowed == 0 then return {0, 0, 0, reset, state, fails, -1} end
local cached = -1
if KEYS[6] ~= '' then
"""
    + lookup_or_claim_lua("KEYS[6]", "KEYS[7]", "ARGV[7]")
    + """
end
return {0, allowed, remaining, reset, state, fails, cached}
"""
)
# `EdgeChecks.peek`: a look at the window that writes nothing, for a call refused before the
# limiter. KEYS: the subject's window, the anonymous subject's (for a revoked token), denied
# jti, user cut-off, revoked session ('' when unused). ARGV: now_ms, window_ms (0: no window),
# iat (-1: anonymous), '(' .. now_ms - window_ms. Counts the calls `_WINDOW` would keep (it
# removes scores <= now - window, so those above it) and reads the oldest of them. Returns
# {revoked, calls in the window, reset_ms (0 when empty)}.
_PEEK = (
    _revoked_lua("KEYS[3]", "KEYS[4]", "KEYS[5]", "ARGV[3]")
    + """
local flag = revoked and 1 or 0
if ARGV[2] == '0' then return {flag, 0, 0} end
local key = KEYS[1]
if revoked then key = KEYS[2] end
local count = redis.call('ZCOUNT', key, ARGV[4], '+inf')
local reset = 0
if count > 0 then
  local oldest = redis.call('ZRANGEBYSCORE', key, ARGV[4], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  reset = tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1])
end
return {flag, count, reset}
"""
)
_NO_KEY = ""


def _sha1(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


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

    def peek(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        """The window as the next `hit` would find it, changing nothing (not even dropping the
        calls that left it)."""
        floor = now - float(policy.window_seconds)
        with self._lock:
            kept = [t for t in self._windows.get(subject, ()) if t > floor]
        reset = min(kept) + policy.window_seconds - now if kept else 0.0
        return RateDecision.standing(policy.requests, len(kept), reset)

    def _forget_idle(self, now: float) -> None:
        # Windows are at most a day long in practice; drop subjects idle for longer.
        for subject in [
            s for s, calls in self._windows.items() if not calls or calls[-1] < now - 86_400
        ]:
            del self._windows[subject]


class RedisSlidingWindowLimiter:
    """`RateLimiter` and `EdgeChecks` shared by every worker: a sorted set per subject, one
    EVALSHA per request for revocation, limit, circuit hint and (given `responses`) the
    response-cache lookup."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        fallback: InProcessSlidingWindowLimiter | None = None,
        circuits: CircuitHints | None = None,
        responses: RedisResponseCache | None = None,
    ) -> None:
        self._redis = DirectRedis(client)
        self._scripts = {script: _sha1(script) for script in (_EDGE, _LIMIT, _PEEK)}
        self._prefix = f"{prefix}rl:"
        self._circuit_prefix = f"{prefix}cb:"
        self._circuits = circuits
        self._responses = responses
        self._fallback = fallback or InProcessSlidingWindowLimiter()
        self._ids = itertools.count()
        # Names this limiter's calls in the shared log. Not the pid alone: replicas in
        # containers run workers under the same pids, and two calls of one millisecond under
        # one name are one member of the sorted set, so a call would go uncounted.
        self._instance = f"{os.getpid()}.{secrets.token_hex(6)}"
        # The revocation keys are written by the accounts through the default cache
        # (`apps.common.tokens`): its own key function makes them here too, bound once, since
        # each call through the `cache` proxy looked the alias up again (~3 µs).
        self._cache_key = caches[DEFAULT_CACHE_ALIAS].make_key

    def _run(self, script: str, keys: int, *keys_and_args: Any) -> Any:
        try:
            return self._redis.execute("EVALSHA", self._scripts[script], keys, *keys_and_args)
        except NoScriptError:  # a new or flushed Redis: load the script once, then again
            return self._redis.execute("EVAL", script, keys, *keys_and_args)

    def _revocation_keys(self, principal: Principal | None) -> tuple[str, str, str]:
        """The keys of the token's revocation facts: denied jti, user cut-off, revoked
        session ('' for each that does not apply)."""
        if principal is None:
            return _NO_KEY, _NO_KEY, _NO_KEY
        cache_key = self._cache_key
        return (
            cache_key(REVOKED_JTI.format(principal.token_id)),
            cache_key(VALID_AFTER.format(principal.user_id)),
            cache_key(REVOKED_SID.format(principal.session_id))
            if principal.session_id
            else _NO_KEY,
        )

    def _member(self, now_ms: int) -> str:
        return f"{now_ms}:{self._instance}:{next(self._ids)}"

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        """`RateLimiter`: one sliding-window check (the window script alone)."""
        now_ms = int(now * 1000)
        window_ms = policy.window_seconds * 1000
        try:
            allowed, remaining, reset_ms = self._run(
                _LIMIT,
                1,
                self._prefix + subject,
                now_ms,
                window_ms,
                policy.requests,
                self._member(now_ms),
            )
        except RedisError as error:
            redis_unavailable("rate_limit", error)
            return self._fallback.hit(subject, policy, now)
        return RateDecision(bool(allowed), policy.requests, int(remaining), int(reset_ms) / 1000)

    def check(
        self,
        route: str,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
        probe: CacheProbe | None = None,
    ) -> EdgeVerdict:
        """`EdgeChecks`: revocation facts, the limit and the cache lookup, in one EVALSHA."""
        now_ms = int(now * 1000)
        responses = self._responses if probe is not None else None
        entry, lock = responses.keys_for(probe.key) if responses and probe else (_NO_KEY, _NO_KEY)
        keys = (
            self._prefix + subject if subject and policy else _NO_KEY,
            self._circuit_prefix + route,
            *self._revocation_keys(principal),
            entry,
            lock,
        )
        args = (
            now_ms,
            policy.window_seconds * 1000 if subject and policy else 0,
            policy.requests if subject and policy else 0,
            self._member(now_ms),
            _issued_at(principal),
            1 if self._circuits is not None else 0,
            int(probe.fill_seconds * 1000) if probe else 0,
        )
        try:
            reply = self._run(_EDGE, len(keys), *keys, *args)
        except RedisError as error:
            return self._degraded(error, principal, subject, policy, now, probe)
        if int(reply[0]):
            return EdgeVerdict(revoked=True)
        _, allowed, remaining, reset_ms, state, failures, cached = reply
        if self._circuits is not None:
            self._circuits.remember(route, now, state, int(failures))
        decision = None
        if subject is not None and policy is not None:
            decision = RateDecision(
                bool(allowed), policy.requests, int(remaining), int(reset_ms) / 1000
            )
        looked_up = None
        if responses is not None and cached != -1:
            looked_up = responses.read_lookup(cached, entry)
        return EdgeVerdict(False, decision, looked_up)

    def peek(
        self, principal: Principal | None, window: WindowPeek | None, now: float
    ) -> EdgeVerdict:
        """`EdgeChecks.peek`: revocation facts and the window as it stands, in one EVALSHA
        that writes nothing."""
        now_ms = int(now * 1000)
        window_ms = window.policy.window_seconds * 1000 if window else 0
        keys = (
            self._prefix + window.subject if window else _NO_KEY,
            self._prefix + window.anonymous_subject if window else _NO_KEY,
            *self._revocation_keys(principal),
        )
        args = (
            now_ms,
            window_ms,
            _issued_at(principal),
            f"({now_ms - window_ms}",
        )
        try:
            revoked, used, reset_ms = self._run(_PEEK, len(keys), *keys, *args)
        except RedisError as error:
            # As `check` degrades: the per-process window, revocation failing open.
            redis_unavailable("rate_limit", error)
            if principal is not None:
                REVOCATION_LOOKUP_FAILURES.inc()
            if window is None:
                return EdgeVerdict(revoked=False)
            return EdgeVerdict(False, self._fallback.peek(window.subject, window.policy, now))
        if window is None:
            return EdgeVerdict(bool(revoked))
        decision = RateDecision.standing(window.policy.requests, int(used), int(reset_ms) / 1000)
        return EdgeVerdict(bool(revoked), decision)

    def _degraded(
        self,
        error: RedisError,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
        probe: CacheProbe | None,
    ) -> EdgeVerdict:
        """Redis unreachable: per-process limits, revocation fails open, the cache is bypassed;
        each counted."""
        redis_unavailable("rate_limit", error)
        if principal is not None:
            REVOCATION_LOOKUP_FAILURES.inc()  # fail open, as the platform's verifier does
        decision = None
        if subject is not None and policy is not None:
            decision = self._fallback.hit(subject, policy, now)
        looked_up = None
        if probe is not None and self._responses is not None:
            redis_unavailable("response_cache", error)
            looked_up = CacheLookup(CacheResult.BYPASS)
        return EdgeVerdict(False, decision, looked_up)

    def incr(self, key: str) -> int:
        """A bare `INCR` on the same connection as the checks (the benchmark's baseline)."""
        return int(self._redis.execute("INCR", key))


class NoRevocationFacts(CacheTokenRevocations):
    """Revocation reader for the edge's verifier: the facts are read by `EdgeChecks` instead,
    together with the rate limit (one round trip). Writing is unchanged."""

    def facts_for(
        self, token_id: str, user_id: str, session_id: str | None = None
    ) -> tuple[bool, bool, int | None]:
        return False, False, None


class InProcessEdgeChecks:
    """`EdgeChecks` for embedded mode: the cache's revocation facts and an in-process limiter."""

    def __init__(self, limiter: InProcessSlidingWindowLimiter | None = None) -> None:
        self._limiter = limiter or InProcessSlidingWindowLimiter()
        self._revocations = CacheTokenRevocations()

    def check(
        self,
        route: str,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
        probe: CacheProbe | None = None,
    ) -> EdgeVerdict:
        """`EdgeChecks`; the response cache is left to the caller."""
        if principal is not None and self._revocations.revoked(
            principal.token_id,
            principal.user_id,
            principal.session_id,
            int(principal.issued_at.timestamp()),
        ):
            return EdgeVerdict(revoked=True)
        if subject is None or policy is None:
            return EdgeVerdict(revoked=False)
        return EdgeVerdict(False, self._limiter.hit(subject, policy, now))

    def peek(
        self, principal: Principal | None, window: WindowPeek | None, now: float
    ) -> EdgeVerdict:
        """`EdgeChecks.peek`: the cache's revocation facts and the in-process window."""
        revoked = principal is not None and self._revocations.revoked(
            principal.token_id,
            principal.user_id,
            principal.session_id,
            int(principal.issued_at.timestamp()),
        )
        if window is None:
            return EdgeVerdict(revoked)
        subject = window.anonymous_subject if revoked else window.subject
        return EdgeVerdict(revoked, self._limiter.peek(subject, window.policy, now))


def _issued_at(principal: Principal | None) -> int:
    """The token's iat for the scripts' revocation check; -1: no token."""
    return int(principal.issued_at.timestamp()) if principal else -1
