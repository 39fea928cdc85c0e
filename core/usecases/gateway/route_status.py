"""GetRouteStatus: a route's circuit and its recent traffic, for operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.domain.gateway.breaker import Circuit, CircuitState
from core.domain.gateway.route import Route
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
class RouteStatus:
    route: Route
    circuit: Circuit
    retry_after_seconds: int | None
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
        circuit = self._breaker.snapshot(name)
        retry_after = (
            None
            if circuit.state is CircuitState.CLOSED
            else circuit.seconds_until_probe(route.circuit_breaker, self._clock.now().timestamp())
        )
        return Ok(RouteStatus(route, circuit, retry_after, self._stats.summary(name)))
