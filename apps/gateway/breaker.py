"""Circuit breakers: Redis-held state shared by every worker, and an in-process twin.

Both follow `core.domain.gateway.breaker` (the Redis one in Lua, atomically). Two shortcuts keep
the proxy path cheap without changing behaviour: a worker that saw a circuit OPEN until T
answers 503 locally until T (nothing can close it earlier), and a success on a circuit that
had no failures writes nothing.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from redis.exceptions import RedisError

from apps.gateway.limiter import CircuitHints
from apps.gateway.redis_support import redis_unavailable
from core.domain.gateway import breaker as rules
from core.domain.gateway.breaker import Admission, Circuit, CircuitState
from core.domain.gateway.route import BreakerPolicy
from core.usecases.gateway.ports import GatewayMetrics

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

    def __init__(self, metrics: GatewayMetrics | None = None) -> None:
        self._lock = threading.Lock()
        self._circuits: dict[str, Circuit] = {}
        self._metrics = metrics

    def admit(self, route: str, policy: BreakerPolicy, now: float) -> tuple[Admission, int]:
        with self._lock:
            circuit = self._circuits.get(route, Circuit())
            after, admission = rules.admit(circuit, policy, now)
            self._circuits[route] = after
        if admission is Admission.DENIED:
            return admission, circuit.retry_after(policy, now)
        if admission is Admission.PROBE and self._metrics:
            self._metrics.circuit(route, after)
        return admission, 0

    def record(
        self, route: str, policy: BreakerPolicy, now: float, *, success: bool, probe: bool
    ) -> None:
        with self._lock:
            before = self._circuits.get(route, Circuit())
            after = rules.record(before, policy, now, success=success, probe=probe)
            self._circuits[route] = after
        if after.state is not before.state and self._metrics:
            self._metrics.circuit(route, after)

    def snapshot(self, route: str) -> Circuit:
        with self._lock:
            return self._circuits.get(route, Circuit())

    def forget(self, route: str) -> None:
        with self._lock:
            self._circuits.pop(route, None)
        if self._metrics:  # the gauge shows the fresh closed circuit, not the one forgotten
            self._metrics.circuit(route, Circuit())


class RedisCircuitBreaker:
    """`CircuitBreaker` whose state is a Redis hash per route, changed only by Lua scripts."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        metrics: GatewayMetrics | None = None,
        fallback: InProcessCircuitBreaker | None = None,
        hints: CircuitHints | None = None,
    ) -> None:
        self._client = client
        self._hints = hints
        self._admit = client.register_script(_ADMIT)
        self._record = client.register_script(_RECORD)
        self._prefix = f"{prefix}cb:"
        self._metrics = metrics
        self._fallback = fallback or InProcessCircuitBreaker(metrics)
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
        if admission is Admission.PROBE and self._metrics:
            self._metrics.circuit(route, Circuit(CircuitState.HALF_OPEN))
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
        new_state = CircuitState(_text(state))
        if new_state is CircuitState.OPEN:
            self._open_until[route] = now + policy.recovery_seconds
        if self._metrics and (new_state is not CircuitState.CLOSED or probe or not success):
            self._metrics.circuit(route, Circuit(new_state))

    def snapshot(self, route: str) -> Circuit:
        try:
            raw = self._client.hgetall(self._prefix + route)
        except RedisError as error:
            redis_unavailable("circuit_breaker", error)
            return self._fallback.snapshot(route)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return Circuit(
            CircuitState(fields.get("s", "closed")),
            int(fields.get("f", "0")),
            float(fields.get("o", "0")),
            float(fields.get("p", "0")),
        )

    def forget(self, route: str) -> None:
        self._open_until.pop(route, None)  # other workers drop theirs on the route reload
        self._fallback.forget(route)
        try:
            self._client.delete(self._prefix + route)
        except RedisError as error:
            redis_unavailable("circuit_breaker", error)
        if self._metrics:  # the most recent value of every worker's gauge: closed
            self._metrics.circuit(route, Circuit())

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
