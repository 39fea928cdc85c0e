"""The /metrics page: what this process (or, under gunicorn, every worker) recorded, plus the
families a context reads from shared state at scrape time.

A value that is shared state rather than a count (a gateway circuit, held in Redis) is read by
a collector its app registers here when it is ready, so it cannot go missing with the worker
process that last set it. Such a family replaces any of the same name in the workers' files
(written by an older build during a deploy): each series is reported once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import prometheus_client
from django_prometheus.middleware import (
    PrometheusAfterMiddleware as _DjangoPrometheusAfterMiddleware,
)
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from apps.common.metric_files import ArchivingMultiProcessCollector

_scraped: list[ScrapeCollector] = []


class ScrapeCollector(Protocol):
    """A prometheus_client collector that names its families (`describe`) and reads their
    samples at each scrape (`collect`)."""

    def describe(self) -> Iterable[Metric]: ...

    def collect(self) -> Iterable[Metric]: ...


class _Without:
    """The families of `source` but those named `names`."""

    def __init__(self, source: Collector, names: set[str]) -> None:
        self._source = source
        self._names = names

    def collect(self) -> Iterator[Metric]:
        return (family for family in self._source.collect() if family.name not in self._names)


def register_scrape_collector(collector: ScrapeCollector) -> None:
    """Add a collector that every /metrics answer reads (call once, from `AppConfig.ready`)."""
    _scraped.append(collector)


def exposition() -> bytes:
    """The Prometheus text of /metrics."""
    recorded: Collector = (
        # every worker's files (PROMETHEUS_MULTIPROC_DIR), ended workers' in the archives
        ArchivingMultiProcessCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        else prometheus_client.REGISTRY
    )
    registry = CollectorRegistry()
    names = {family.name for collector in _scraped for family in collector.describe()}
    registry.register(_Without(recorded, names))
    for collector in _scraped:
        registry.register(collector)
    return prometheus_client.generate_latest(registry)


class PrometheusAfterMiddleware(_DjangoPrometheusAfterMiddleware):  # type: ignore[misc]
    """django-prometheus's, with every `method` label bounded: its latency histogram took the
    request's method as sent, so each method a client invented (`FOO1`, any token gunicorn
    accepts) added a histogram to every worker and /metrics grew without bound. Like its other
    families, an unknown method now counts as `<invalid method>`."""

    def label_metric(self, metric: Any, request: Any, response: Any = None, **labels: Any) -> Any:
        if "method" in labels:
            labels["method"] = self._method(request)
        return super().label_metric(metric, request, response, **labels)
