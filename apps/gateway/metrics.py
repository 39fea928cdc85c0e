"""Prometheus metrics of the proxy, and a per-route traffic summary read back from them.

Labels stay bounded: route names (admin-defined) and status codes. With gunicorn the values of
every worker are aggregated through PROMETHEUS_MULTIPROC_DIR, which the status view reads too.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from core.domain.gateway.breaker import Circuit
from core.usecases.gateway.ports import CacheResult
from core.usecases.gateway.route_status import TrafficSummary

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "platform_gateway_requests_total", "Proxied requests by route and status.", ["route", "status"]
)
DURATION = Histogram(
    "platform_gateway_request_duration_seconds",
    "Time the gateway took to answer, by route and status.",
    ["route", "status"],
    buckets=_BUCKETS,
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
UPSTREAM = Histogram(
    "platform_gateway_upstream_duration_seconds",
    "Upstream call time (retries included) by route and outcome.",
    ["route", "outcome"],
    buckets=_BUCKETS,
)


class PrometheusGatewayMetrics:
    """`GatewayMetrics` on prometheus_client.

    The children of the per-request metrics are bound once per label set and kept (labels are
    route names and statuses, a bounded set): `.labels()` costs more than the increment.
    """

    def __init__(self) -> None:
        self._answered: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._upstream: dict[tuple[str, str], Any] = {}

    def rate_limited(self, route: str) -> None:
        RATE_LIMITED.labels(route).inc()

    def cache(self, route: str, result: CacheResult) -> None:
        CACHE.labels(route, result.value).inc()

    def upstream(self, route: str, seconds: float, outcome: str) -> None:
        child = self._upstream.get((route, outcome))
        if child is None:
            child = self._upstream[(route, outcome)] = UPSTREAM.labels(route, outcome)
        child.observe(seconds)

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


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative histogram buckets (linear within a bucket)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return previous_bound * 1000
            share = (
                (target - previous_count) / (count - previous_count)
                if count > previous_count
                else 1
            )
            return round((previous_bound + (bound - previous_bound) * share) * 1000, 2)
        previous_bound, previous_count = bound, count
    return None  # pragma: no cover


class PrometheusTrafficStats:
    """`TrafficStats` read back from the metrics all workers write (since they started)."""

    def summary(self, route: str) -> TrafficSummary:
        by_status: dict[str, int] = defaultdict(int)
        buckets: dict[float, float] = defaultdict(float)
        totals = {"duration_sum": 0.0, "duration_count": 0.0, "up_sum": 0.0, "up_count": 0.0}
        for family in _registry().collect():
            for sample in family.samples:
                if sample.labels.get("route") != route:
                    continue
                name = sample.name
                if name == "platform_gateway_requests_total":
                    by_status[sample.labels["status"]] += int(sample.value)
                elif name == "platform_gateway_request_duration_seconds_bucket":
                    buckets[float(sample.labels["le"])] += sample.value
                elif name == "platform_gateway_request_duration_seconds_sum":
                    totals["duration_sum"] += sample.value
                elif name == "platform_gateway_request_duration_seconds_count":
                    totals["duration_count"] += sample.value
                elif name == "platform_gateway_upstream_duration_seconds_sum":
                    totals["up_sum"] += sample.value
                elif name == "platform_gateway_upstream_duration_seconds_count":
                    totals["up_count"] += sample.value
        ordered = sorted(buckets.items())
        return TrafficSummary(
            requests_by_status=dict(sorted(by_status.items())),
            latency_ms_avg=_average(totals["duration_sum"], totals["duration_count"]),
            latency_ms_p50=_quantile(ordered, 0.5),
            latency_ms_p95=_quantile(ordered, 0.95),
            upstream_ms_avg=_average(totals["up_sum"], totals["up_count"]),
        )


def _average(total: float, count: float) -> float | None:
    return round(total / count * 1000, 2) if count else None
