"""In-memory fakes of the gateway's ports, for unit tests of its use cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from core.domain.gateway import breaker as rules
from core.domain.gateway.breaker import Admission, Circuit
from core.domain.gateway.matching import RouteTable
from core.domain.gateway.ratelimit import RateDecision
from core.domain.gateway.route import BreakerPolicy, RateLimitPolicy, Route
from core.domain.shared.identity import Principal, TokenError
from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.ports import (
    CacheLookup,
    CacheProbe,
    CacheResult,
    EdgeVerdict,
    RouteWrite,
    StoredResponse,
    UpstreamFailure,
    UpstreamRequest,
    WindowPeek,
)
from core.usecases.gateway.route_status import TrafficSummary
from tests.fakes.clock import FakeClock, FakeMonotonic
from tests.fakes.random_ids import FakeRandomHex


class InMemoryRouteRepository:
    """Routes in a dict, unique by name and prefix like the table. `concurrently`, when set,
    runs once just before the next write or locked read (`get_for_update`), whichever comes
    first: another writer's change landing after a use case's lock-free reads and checks. A
    use case that locks the route first meets it there, as it would wait for that writer."""

    def __init__(self, *routes: Route) -> None:
        self.routes = {route.name: route for route in routes}
        self.concurrently: Callable[[InMemoryRouteRepository], None] | None = None
        self.writes = 0

    def all(self) -> list[Route]:
        return list(self.routes.values())

    def get(self, name: str) -> Route | None:
        return self.routes.get(name)

    def get_for_update(self, name: str) -> Route | None:
        self._interleave()
        return self.routes.get(name)

    def name_taken(self, name: str) -> bool:
        return name in self.routes

    def prefix_owner(self, prefix: str) -> str | None:
        return next((r.name for r in self.routes.values() if r.path_prefix == prefix), None)

    def add(self, route: Route) -> RouteWrite:
        self._interleave()
        if route.name in self.routes:
            return RouteWrite.NAME_TAKEN
        if self.prefix_owner(route.path_prefix) is not None:
            return RouteWrite.PREFIX_TAKEN
        self.routes[route.name] = route
        return RouteWrite.DONE

    def update(self, route: Route) -> RouteWrite:
        self.writes += 1
        self._interleave()
        if route.name not in self.routes:
            return RouteWrite.NOT_FOUND
        if self.prefix_owner(route.path_prefix) not in (None, route.name):
            return RouteWrite.PREFIX_TAKEN
        self.routes[route.name] = route
        return RouteWrite.DONE

    def _interleave(self) -> None:
        change, self.concurrently = self.concurrently, None
        if change is not None:
            change(self)

    def delete(self, name: str) -> bool:
        return self.routes.pop(name, None) is not None


class FakeNotifier:
    def __init__(self) -> None:
        self.changes = 0

    def routes_changed(self) -> None:
        self.changes += 1


class FakeRouteSource:
    def __init__(self, *routes: Route) -> None:
        self.table = RouteTable(routes)

    def current(self) -> RouteTable:
        return self.table


class FakeTokenVerifier:
    """Tokens are `user:<id>:<role+role>`, `expired`, `revoked`; anything else is invalid."""

    def verify(self, raw_token: str) -> Result[Principal, TokenError]:
        if raw_token == "expired":
            return Err(TokenError.EXPIRED)
        if raw_token == "revoked":
            return Err(TokenError.REVOKED)
        parts = raw_token.split(":")
        if len(parts) != 3 or parts[0] != "user":
            return Err(TokenError.INVALID)
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        roles = frozenset(r for r in parts[2].split("+") if r)
        return Ok(Principal(parts[1], roles, "jti", moment, moment))


class FakeRateLimiter:
    """Counts calls per subject in a fixed window (enough to drive the use case)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def hit(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        used = self.calls.get(subject, 0)
        allowed = used < policy.requests
        if allowed:
            self.calls[subject] = used + 1
        remaining = policy.requests - self.calls.get(subject, 0)
        return RateDecision(allowed, policy.requests, remaining, policy.window_seconds)

    def peek(self, subject: str, policy: RateLimitPolicy, now: float) -> RateDecision:
        used = self.calls.get(subject, 0)
        return RateDecision.standing(policy.requests, used, policy.window_seconds if used else 0)


class FakeEdgeChecks:
    """Revocation by token id (`revoked_ids`), a `FakeRateLimiter`, and the cache lookup when
    given a `cache` (like the Redis edge) or left to the caller (like the in-process one)."""

    def __init__(
        self, limiter: FakeRateLimiter | None = None, cache: InMemoryResponseCache | None = None
    ) -> None:
        self.limiter = limiter or FakeRateLimiter()
        self.cache = cache
        self.revoked_ids: set[str] = set()
        self.calls = 0
        self.peeks = 0
        self.routes: list[str] = []

    def check(
        self,
        route: str,
        principal: Principal | None,
        subject: str | None,
        policy: RateLimitPolicy | None,
        now: float,
        probe: CacheProbe | None = None,
    ) -> EdgeVerdict:
        self.calls += 1
        self.routes.append(route)
        if principal is not None and principal.token_id in self.revoked_ids:
            return EdgeVerdict(revoked=True)
        decision = None
        if subject is not None and policy is not None:
            decision = self.limiter.hit(subject, policy, now)
            if not decision.allowed:
                return EdgeVerdict(False, decision)
        cached = None
        if probe is not None and self.cache is not None:
            cached = self.cache.lookup(probe.key, probe.fill_seconds)
        return EdgeVerdict(False, decision, cached)

    def peek(
        self, principal: Principal | None, window: WindowPeek | None, now: float
    ) -> EdgeVerdict:
        self.peeks += 1
        revoked = principal is not None and principal.token_id in self.revoked_ids
        if window is None:
            return EdgeVerdict(revoked)
        subject = window.anonymous_subject if revoked else window.subject
        return EdgeVerdict(revoked, self.limiter.peek(subject, window.policy, now))


class FakeCircuitBreaker:
    """The domain rules, in a dict."""

    def __init__(self) -> None:
        self.circuits: dict[str, Circuit] = {}

    def admit(self, route: str, policy: BreakerPolicy, now: float) -> tuple[Admission, int]:
        circuit = self.circuits.get(route, Circuit())
        after, admission = rules.admit(circuit, policy, now)
        self.circuits[route] = after
        wait = circuit.retry_after(policy, now) if admission is Admission.DENIED else 0
        return admission, wait

    def record(
        self, route: str, policy: BreakerPolicy, now: float, *, success: bool, probe: bool
    ) -> None:
        circuit = self.circuits.get(route, Circuit())
        self.circuits[route] = rules.record(circuit, policy, now, success=success, probe=probe)

    def snapshot(self, route: str) -> Circuit:
        return self.circuits.get(route, Circuit())

    def forget(self, route: str) -> None:
        self.circuits.pop(route, None)


class InMemoryResponseCache:
    def __init__(
        self,
        *,
        unavailable: bool = False,
        busy: bool = False,
        clock: FakeMonotonic | None = None,
        waits: float = 0.0,
        lookup_takes: float = 0.0,
        wall_clock: FakeClock | None = None,
    ) -> None:
        self.entries: dict[str, StoredResponse] = {}
        self.clock, self.waits = clock, waits  # how long a waiter waits for the filler
        self.wall_clock = wall_clock  # moved by a wait too, when given
        self.lookup_takes = lookup_takes  # how long a lookup takes (a slow cache server)
        self.filling: set[str] = set()
        self.unavailable = unavailable
        self.busy = busy  # another caller always holds the fill lock
        self.arrives: StoredResponse | None = None  # what a waiter receives
        self.released: list[str] = []
        self.lookups = 0

    def lookup(self, key: str, fill_seconds: float) -> CacheLookup:
        self.lookups += 1
        if self.clock is not None:
            self.clock.now += self.lookup_takes
        if self.unavailable:
            return CacheLookup(CacheResult.BYPASS)
        if key in self.entries:
            return CacheLookup(CacheResult.HIT, self.entries[key])
        if self.busy or key in self.filling:
            return CacheLookup(CacheResult.MISS)
        self.filling.add(key)
        return CacheLookup(CacheResult.MISS, filling=True)

    def wait_for(self, key: str, timeout_seconds: float) -> StoredResponse | None:
        if self.clock is not None:
            self.clock.now += min(self.waits, timeout_seconds)
        if self.wall_clock is not None:
            self.wall_clock.advance(seconds=min(self.waits, timeout_seconds))
        return self.arrives

    def store(self, key: str, response: StoredResponse, ttl_seconds: int) -> None:
        self.entries[key] = response
        self.filling.discard(key)

    def release_fill(self, key: str) -> None:
        self.filling.discard(key)
        self.released.append(key)


@dataclass
class FakeUpstream:
    """Answers from a script (one item per call; the last repeats) and records requests."""

    script: list[StoredResponse | UpstreamFailure] = field(
        default_factory=lambda: [StoredResponse(200, (("Content-Type", "text/plain"),), b"ok")]
    )
    requests: list[UpstreamRequest] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    clock: FakeMonotonic | None = None
    takes: float = 0.0

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]:
        self.requests.append(request)
        self.timeouts.append(timeout_seconds)
        if self.clock is not None:
            self.clock.now += self.takes
        answer = self.script[min(len(self.requests), len(self.script)) - 1]
        if isinstance(answer, UpstreamFailure):
            return Err(answer)
        return Ok(answer)


class FakeSleeper:
    def __init__(self, clock: FakeMonotonic | None = None) -> None:
        self.slept: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class FakeRandom(FakeRandomHex):
    """`RandomSource`: the middle of the jitter, and predictable ids."""

    def fraction(self) -> float:
        return 0.5


class FakeMetrics:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def rate_limited(self, route: str) -> None:
        self.events.append(("rate_limited", route))

    def cache(self, route: str, result: CacheResult) -> None:
        self.events.append(("cache", route, result.value))

    def upstream(self, route: str, seconds: float, outcome: str) -> None:
        self.events.append(("upstream", route, outcome))


class FakeTrafficStats:
    def summary(self, route: str) -> TrafficSummary:
        return TrafficSummary({"200": 3}, 1.5, 1.0, 2.0, 1.2)


def renamed(route: Route, **changes: object) -> Route:
    return replace(route, **changes)  # type: ignore[arg-type]
