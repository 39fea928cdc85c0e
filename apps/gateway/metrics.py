"""Prometheus metrics of the proxy.

Labels stay bounded: route names (admin-defined) and status codes. With gunicorn the values of
every worker are aggregated through PROMETHEUS_MULTIPROC_DIR. The same answers also feed the
status endpoint's rolling window (`apps.gateway.traffic`): Prometheus counts since start.
Circuit states are shared state, not counts: /metrics reads them when scraped
(`CircuitStateCollector`), so they cannot go missing with the worker that last saw a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from apps.gateway.traffic import LATENCY_BOUNDS, RecentTraffic
from core.domain.gateway.breaker import Circuit
from core.domain.gateway.matching import RouteTable
from core.domain.gateway.route import Route
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


# Statuses with a label of their own: the registered ones (RFC 9110 and the IANA registry, as
# Python knows them). An upstream may answer any of 100-599, and one that answers what it is
# asked would let clients add series at will; the rest count under their class (`4xx`).
_REGISTERED_STATUSES = frozenset(int(status) for status in HTTPStatus)


def status_label(status: int) -> str:
    """A status as a metric label: itself when registered, else its class (`2xx`…`5xx`)."""
    return str(status) if status in _REGISTERED_STATUSES else f"{status // 100}xx"


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
            label = status_label(int(outcome)) if outcome.isdigit() else outcome
            child = self._upstream[(route, outcome)] = UPSTREAM.labels(route, label)
        child.observe(seconds)
        self.recent.called_upstream(route, seconds)

    def route_table_loaded(self, table: RouteTable) -> None:
        ROUTE_TABLE.set(len(table))

    def answered(self, route: str, status: int, seconds: float) -> None:
        children = self._answered.get((route, status))
        if children is None:
            label = status_label(status)
            children = (REQUESTS.labels(route, label), DURATION.labels(route, label))
            self._answered[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        self.recent.answered(route, status, seconds)


class CircuitStates(Protocol):
    """Reads the circuit state of many routes at once; None when it cannot be read."""

    def circuits(self, routes: Sequence[str]) -> Mapping[str, Circuit] | None: ...


class CircuitStateCollector:
    """`platform_gateway_circuit_state{route}` (0 closed, 1 half-open, 2 open) of every enabled
    route, read from the shared circuits when /metrics is scraped. The state is the one a call
    arriving at the scrape finds, as the status endpoint reports it: an open circuit past its
    recovery time is half-open (the next call probes), though it is stored open until then.
    A disabled route has no series: no call reaches its circuit, so no state is one a call
    finds (kept, it would hold an alert on an open circuit, or read half-open with nothing to
    probe); its circuit is kept, and reported again once the route is enabled.

    A per-worker gauge went missing with the worker that set it (a restart, a deploy) while the
    circuit stayed open in Redis, since a blocked call sets nothing. This costs the scrape one
    pipelined Redis round trip over the route table the worker holds in memory (no database
    query), and the proxy path nothing. When the circuits cannot be read, or the worker has not
    loaded its routes yet, the family is left out: the page still answers.
    """

    name = "platform_gateway_circuit_state"
    documentation = (
        "Circuit state of each enabled route, as a call arriving now finds it: 0 closed, "
        "1 half-open, 2 open (a disabled or removed route has none)."
    )

    def __init__(
        self,
        routes: Callable[[], Iterable[Route] | None],
        circuits: Callable[[], CircuitStates],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._routes = routes
        self._circuits = circuits
        self._clock = clock

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=["route"])]

    def collect(self) -> Iterator[Metric]:
        routes = self._routes()
        if routes is None:  # no table loaded yet: nothing to name
            return
        by_name = {route.name: route for route in routes}
        names = sorted(by_name)
        circuits = self._circuits().circuits(names)
        if circuits is None:
            return
        now = self._clock()
        family = GaugeMetricFamily(self.name, self.documentation, labels=["route"])
        for name in names:
            state = circuits[name].state_at(by_name[name].circuit_breaker, now)
            family.add_metric([name], state.gauge)
        yield family
