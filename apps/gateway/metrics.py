"""Prometheus metrics of the proxy.

Labels stay bounded: route names (admin-defined) and status codes. With gunicorn the values of
every worker are aggregated through PROMETHEUS_MULTIPROC_DIR. The same answers also feed the
status endpoint's rolling window (`apps.gateway.traffic`): Prometheus counts since start.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from apps.gateway.traffic import LATENCY_BOUNDS, RecentTraffic
from core.domain.gateway.breaker import Circuit
from core.domain.gateway.matching import RouteTable
from core.usecases.gateway.ports import CacheResult

REQUESTS = Counter(
    "platform_gateway_requests_total", "Proxied requests by route and status.", ["route", "status"]
)
DURATION = Histogram(
    "platform_gateway_request_duration_seconds",
    "Time the gateway took to answer, by route and status.",
    ["route", "status"],
    buckets=LATENCY_BOUNDS,
)
RATE_LIMITED = Counter(
    "platform_gateway_rate_limited_total", "Calls refused by a route's rate limit.", ["route"]
)
CACHE = Counter(
    "platform_gateway_cache_total", "Cache lookups by route and result.", ["route", "result"]
)
CIRCUIT = Gauge(
    "platform_gateway_circuit_state",
    "Circuit state by route: 0 closed, 1 half-open, 2 open.",
    ["route"],
    multiprocess_mode="livemostrecent",
)
ROUTE_TABLE = Gauge(
    "platform_gateway_route_table_routes",
    "Enabled routes in the table each worker serves (by pid: a worker behind the others shows).",
    multiprocess_mode="liveall",
)
UPSTREAM = Histogram(
    "platform_gateway_upstream_duration_seconds",
    "Upstream call time (retries included) by route and outcome.",
    ["route", "outcome"],
    buckets=LATENCY_BOUNDS,
)


class PrometheusGatewayMetrics:
    """`GatewayMetrics` on prometheus_client.

    The children of the per-request metrics are bound once per label set and kept (labels are
    route names and statuses, a bounded set): `.labels()` costs more than the increment.
    """

    def __init__(self, recent: RecentTraffic | None = None) -> None:
        self._answered: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._upstream: dict[tuple[str, str], Any] = {}
        self.recent = recent or RecentTraffic()

    def rate_limited(self, route: str) -> None:
        RATE_LIMITED.labels(route).inc()

    def cache(self, route: str, result: CacheResult) -> None:
        CACHE.labels(route, result.value).inc()

    def upstream(self, route: str, seconds: float, outcome: str) -> None:
        child = self._upstream.get((route, outcome))
        if child is None:
            child = self._upstream[(route, outcome)] = UPSTREAM.labels(route, outcome)
        child.observe(seconds)
        self.recent.called_upstream(route, seconds)

    def route_table_loaded(self, table: RouteTable) -> None:
        ROUTE_TABLE.set(len(table))

    def circuit(self, route: str, circuit: Circuit) -> None:
        CIRCUIT.labels(route).set(circuit.state.gauge)

    def answered(self, route: str, status: int, seconds: float) -> None:
        children = self._answered.get((route, status))
        if children is None:
            label = str(status)
            children = (REQUESTS.labels(route, label), DURATION.labels(route, label))
            self._answered[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        self.recent.answered(route, status, seconds)
