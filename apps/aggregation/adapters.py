"""Small adapters of the aggregation ports: the Django cache, Prometheus metrics, run ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from django.core.cache import cache
from prometheus_client import Counter, Histogram

from apps.common.logging import EveryFewSeconds
from core.domain.aggregation.runs import RunStatus, SourceOutcome

log = structlog.get_logger(__name__)

RUNS = Counter(
    "platform_aggregation_runs_total", "Composite runs by outcome.", ["composite", "status"]
)
SOURCE_LATENCY = Histogram(
    "platform_aggregation_source_latency_seconds",
    "Latency of composite sources (calls made, cache hits excluded).",
    ["composite", "source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SOURCE_FAILURES = Counter(
    "platform_aggregation_source_failures_total",
    "Composite sources that gave no usable answer, by reason.",
    ["composite", "source", "code"],
)
SOURCE_CACHE = Counter(
    "platform_aggregation_source_cache_total",
    "Per-source cache lookups of composite runs.",
    ["result"],
)
CACHE_ERRORS = Counter(
    "platform_aggregation_cache_errors_total",
    "Per-source cache operations that failed (the cache was bypassed).",
)
RATE_LIMITED = Counter(
    "platform_aggregation_rate_limited_total",
    "Composite runs refused with 429 by the per-caller limit (AGGREGATION_RUN_RATE).",
)
# One `aggregation_cache_unavailable` line every 5 s per process while the cache is unreachable
# (the counter counts every failed operation), as the other Redis outages' warnings.
_FAILURE_LOGGED = EveryFewSeconds(5.0)


class DjangoSourceCache:
    """`SourceCache` on Django's cache; when it is unreachable, runs go on without it.

    Every failed operation is counted; an outage would repeat the warning on every run (twice),
    so it is logged at most every few seconds per process (`log_failure` says when)."""

    def __init__(self, *, log_failure: Callable[[], bool] = _FAILURE_LOGGED) -> None:
        self._log_failure = log_failure

    def _failed(self, operation: str, error: Exception) -> None:
        CACHE_ERRORS.inc()
        if self._log_failure():
            log.warning(
                "aggregation_cache_unavailable", operation=operation, error=type(error).__name__
            )

    def get_many(self, keys: Sequence[str]) -> Mapping[str, Any]:
        try:
            found = cache.get_many(list(keys))
        except Exception as error:  # any cache backend failure means "bypass"
            self._failed("get_many", error)
            return {}
        SOURCE_CACHE.labels("hit").inc(len(found))
        SOURCE_CACHE.labels("miss").inc(len(keys) - len(found))
        return found

    def set_many(self, values: Mapping[str, Any], ttl_seconds: int) -> None:
        try:
            cache.set_many(dict(values), timeout=ttl_seconds)
        except Exception as error:  # any cache backend failure means "bypass"
            self._failed("set_many", error)


class PrometheusRunMetrics:
    """`RunMetrics` as prometheus counters and a latency histogram."""

    def run_finished(self, composite: str, status: RunStatus) -> None:
        RUNS.labels(composite, status.value).inc()

    def source_finished(self, composite: str, outcome: SourceOutcome) -> None:
        if not outcome.cached:
            SOURCE_LATENCY.labels(composite, outcome.key).observe(outcome.took_ms / 1000)
        if outcome.failure is not None:
            SOURCE_FAILURES.labels(composite, outcome.key, outcome.failure.value).inc()


class Uuid4IdGenerator:
    """`IdGenerator` on random UUIDs (the run table's primary key is a UUID)."""

    def new_id(self) -> str:
        return str(uuid.uuid4())
