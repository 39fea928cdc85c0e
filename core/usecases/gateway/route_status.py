"""GetRouteStatus: a route's circuit and its recent traffic, for operators; GetCircuitStatus:
the circuit alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.domain.gateway.breaker import Circuit, CircuitState
from core.domain.gateway.route import BreakerPolicy, Route
from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.errors import RouteError
from core.usecases.gateway.manage_routes import RouteRejected
from core.usecases.gateway.ports import CircuitBreaker, RouteRepository
from core.usecases.shared.ports import Clock


@dataclass(frozen=True, slots=True)
class TrafficSummary:
    """Requests by status and latency of one route over the last `window_seconds`."""

    requests_by_status: dict[str, int]
    latency_ms_avg: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    upstream_ms_avg: float | None
    window_seconds: int = 0


class TrafficStats(Protocol):
    """Reads a route's recent traffic (what every worker recorded in a rolling window)."""

    def summary(self, route: str) -> TrafficSummary: ...


@dataclass(frozen=True, slots=True)
class CircuitStatus:
    """A route's circuit as a call arriving at the time of the read finds it: an open circuit
    whose recovery time is over reads half-open (the next call goes upstream as the probe),
    though it is stored open until that call comes. `retry_after_seconds`: until a probe may
    go upstream (0: the next call probes), None when closed. `opened_at`: epoch s, 0 never."""

    state: CircuitState
    failures: int
    opened_at: float
    retry_after_seconds: int | None

    @classmethod
    def read(cls, circuit: Circuit, policy: BreakerPolicy, now: float) -> CircuitStatus:
        state = circuit.state_at(policy, now)
        retry_after = (
            None if state is CircuitState.CLOSED else circuit.seconds_until_probe(policy, now)
        )
        return cls(state, circuit.failures, circuit.opened_at, retry_after)


@dataclass(frozen=True, slots=True)
class RouteStatus:
    route: Route
    circuit: CircuitStatus
    traffic: TrafficSummary


class GetRouteStatus:
    """Circuit state, consecutive failures and traffic of one route."""

    def __init__(
        self, *, routes: RouteRepository, breaker: CircuitBreaker, stats: TrafficStats, clock: Clock
    ) -> None:
        self._routes = routes
        self._breaker = breaker
        self._stats = stats
        self._clock = clock

    def execute(self, name: str) -> Result[RouteStatus, RouteRejected]:
        route = self._routes.get(name)
        if route is None:
            return Err(RouteRejected(RouteError.NOT_FOUND))
        circuit = CircuitStatus.read(
            self._breaker.snapshot(name), route.circuit_breaker, self._clock.now().timestamp()
        )
        return Ok(RouteStatus(route, circuit, self._stats.summary(name)))


class GetCircuitStatus:
    """A route's circuit as a call arriving now finds it (the Django admin's column), given
    the route's breaker policy, which the caller already holds."""

    def __init__(self, *, breaker: CircuitBreaker, clock: Clock) -> None:
        self._breaker = breaker
        self._clock = clock

    def execute(self, name: str, policy: BreakerPolicy) -> Result[CircuitStatus, None]:
        now = self._clock.now().timestamp()
        return Ok(CircuitStatus.read(self._breaker.snapshot(name), policy, now))
