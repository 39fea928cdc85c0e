"""Circuit breakers: Redis-held state shared by every worker, and an in-process twin.

Both follow `core.domain.gateway.breaker` (the Redis one in Lua, atomically). Two shortcuts keep
the proxy path cheap without changing behaviour: a worker that saw a circuit OPEN until T
answers 503 locally until T (nothing can close it earlier), and a success on a circuit that
had no failures writes nothing. /metrics reads every route's state at scrape time (`states`),
so the proxy path records no gauge.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from apps.gateway.limiter import CircuitHints
from apps.gateway.redis_support import redis_unavailable
from core.domain.gateway import breaker as rules
from core.domain.gateway.breaker import Admission, Circuit, CircuitState
from core.domain.gateway.route import BreakerPolicy

_ADMIT = """
local h = redis.call('HMGET', KEYS[1], 's', 'f', 'o', 'p')
local state = h[1] or 'closed'
if state == 'closed' then return {1, tonumber(h[2] or '0'), 0, ''} end
local now = tonumber(ARGV[1])
local started = tonumber(h[3] or '0')
if state == 'half_open' then started = tonumber(h[4] or '0') end
local opens_at = started + tonumber(ARGV[2])
if now < opens_at then
  local wait = math.ceil(opens_at - now)
  if wait < 1 then wait = 1 end
  if state == 'open' then return {0, 0, wait, tostring(opens_at)} end
  return {0, 0, wait, ''}
end
redis.call('HSET', KEYS[1], 's', 'half_open', 'p', ARGV[1])
return {2, 0, 0, 'half_open'}
"""

_RECORD = """
local h = redis.call('HMGET', KEYS[1], 's', 'f')
local state = h[1] or 'closed'
local failures = tonumber(h[2] or '0')
if ARGV[3] == '1' then
  if ARGV[4] == '1' or state == 'closed' then
    if state ~= 'closed' or failures > 0 then redis.call('DEL', KEYS[1]) end
    return 'closed'
  end
  return state
end
if state == 'half_open' then
  if ARGV[4] ~= '1' then return state end
  redis.call('HSET', KEYS[1], 's', 'open', 'f', failures + 1, 'o', ARGV[1])
  return 'open'
end
if state == 'open' then return state end
failures = failures + 1
if failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 's', 'open', 'f', failures, 'o', ARGV[1])
  return 'open'
end
redis.call('HSET', KEYS[1], 'f', failures)
return 'closed'
"""


class InProcessCircuitBreaker:
    """`CircuitBreaker` for one process (embedded mode, or Redis unreachable); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, Circuit] = {}

    def admit(self, route: str, policy: BreakerPolicy, now: float) -> tuple[Admission, int]:
        with self._lock:
            circuit = self._circuits.get(route, Circuit())
            after, admission = rules.admit(circuit, policy, now)
            self._circuits[route] = after
        if admission is Admission.DENIED:
            return admission, circuit.retry_after(policy, now)
        return admission, 0

    def record(
        self, route: str, policy: BreakerPolicy, now: float, *, success: bool, probe: bool
    ) -> None:
        with self._lock:
            before = self._circuits.get(route, Circuit())
            self._circuits[route] = rules.record(before, policy, now, success=success, probe=probe)

    def snapshot(self, route: str) -> Circuit:
        with self._lock:
            return self._circuits.get(route, Circuit())

    def circuits(self, routes: Sequence[str]) -> dict[str, Circuit]:
        """Each route's circuit (for /metrics)."""
        with self._lock:
            return {route: self._circuits.get(route, Circuit()) for route in routes}

    def forget(self, route: str) -> None:
        with self._lock:
            self._circuits.pop(route, None)


class RedisCircuitBreaker:
    """`CircuitBreaker` whose state is a Redis hash per route, changed only by Lua scripts."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        fallback: InProcessCircuitBreaker | None = None,
        hints: CircuitHints | None = None,
    ) -> None:
        self._client = client
        self._hints = hints
        self._admit = client.register_script(_ADMIT)
        self._record = client.register_script(_RECORD)
        self._prefix = f"{prefix}cb:"
        self._fallback = fallback or InProcessCircuitBreaker()
        self._open_until: dict[str, float] = {}
        self._local = threading.local()

    def admit(self, route: str, policy: BreakerPolicy, now: float) -> tuple[Admission, int]:
        until = self._open_until.get(route)
        if until is not None:
            if now < until:
                return Admission.DENIED, max(1, math.ceil(until - now))
            self._open_until.pop(route, None)
        known = self._hints.closed_failures(route, now) if self._hints else None
        if known is not None:  # read closed in this very request by the limiter's script
            clean = self._clean_routes()
            if known == 0:
                clean.add(route)
            else:
                clean.discard(route)
            return Admission.ALLOWED, 0
        try:
            verdict, failures, wait, extra = self._admit(
                keys=[self._prefix + route], args=[repr(now), policy.recovery_seconds]
            )
        except RedisError as error:
            redis_unavailable("circuit_breaker", error)
            return self._fallback.admit(route, policy, now)
        admission = Admission(int(verdict))
        clean = self._clean_routes()
        if admission is Admission.ALLOWED and int(failures) == 0:
            clean.add(route)
        else:
            clean.discard(route)
        if admission is Admission.DENIED:
            opens_at = _text(extra)
            if opens_at:
                self._open_until[route] = float(opens_at)
            return admission, int(wait)
        return admission, 0

    def record(
        self, route: str, policy: BreakerPolicy, now: float, *, success: bool, probe: bool
    ) -> None:
        if success and not probe and route in self._clean_routes():
            return  # closed with no failures: a success changes nothing
        try:
            state = self._record(
                keys=[self._prefix + route],
                args=[repr(now), policy.failure_threshold, int(success), int(probe)],
            )
        except RedisError as error:
            redis_unavailable("circuit_breaker", error)
            self._fallback.record(route, policy, now, success=success, probe=probe)
            return
        if _text(state) == CircuitState.OPEN:
            self._open_until[route] = now + policy.recovery_seconds

    def snapshot(self, route: str) -> Circuit:
        try:
            raw = self._client.hgetall(self._prefix + route)
        except RedisError as error:
            redis_unavailable("circuit_breaker", error)
            return self._fallback.snapshot(route)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return _circuit(fields.get("s"), fields.get("f"), fields.get("o"), fields.get("p"))

    def circuits(self, routes: Sequence[str]) -> dict[str, Circuit] | None:
        """Each route's circuit as Redis holds it, in one pipelined round trip (for /metrics);
        None when Redis cannot be read: no worker's own guess stands in for it."""
        pipeline = self._client.pipeline(transaction=False)
        for route in routes:
            pipeline.hmget(self._prefix + route, "s", "f", "o", "p")
        try:
            found = pipeline.execute()
        except RedisError as error:
            redis_unavailable("circuit_metrics", error)
            return None
        return {
            route: _circuit(*(None if v is None else _text(v) for v in fields))
            for route, fields in zip(routes, found, strict=True)
        }

    def forget(self, route: str) -> None:
        self._open_until.pop(route, None)  # other workers drop theirs on the route reload
        self._fallback.forget(route)
        try:
            self._client.delete(self._prefix + route)
        except RedisError as error:
            redis_unavailable("circuit_breaker", error)

    def forget_local(self) -> None:
        """Drop what this worker remembers (after a route change)."""
        self._open_until.clear()

    def _clean_routes(self) -> set[str]:
        routes: set[str] | None = getattr(self._local, "clean", None)
        if routes is None:
            routes = self._local.clean = set()
        return routes


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _circuit(
    state: str | None, failures: str | None, opened: str | None, probe: str | None
) -> Circuit:
    """A circuit from its hash fields as text (absent: a closed circuit's defaults)."""
    return Circuit(
        CircuitState(state or "closed"),
        int(failures or "0"),
        float(opened or "0"),
        float(probe or "0"),
    )
