"""Composition root of the aggregation context: factories that build use cases from adapters.

Views, commands and admin actions get their use cases here; nothing else constructs adapters.
Settings are read when a factory runs, never copied at import time.
"""

from __future__ import annotations

from django.conf import settings

from apps.aggregation.adapters import DjangoSourceCache, MonotonicTicker, PrometheusRunMetrics
from apps.aggregation.fetching import HttpxSourceFetcher, shared_fetcher
from apps.aggregation.repositories import DjangoCompositeRepository, DjangoRunHistory
from apps.common.clock import SystemClock
from core.usecases.aggregation.composites import (
    CreateComposite,
    DeleteComposite,
    EnsureComposite,
    GetComposite,
    ListComposites,
    UpdateComposite,
)
from core.usecases.aggregation.history import ListRuns, PruneRuns
from core.usecases.aggregation.run import RunComposite


def fetcher() -> HttpxSourceFetcher:
    return shared_fetcher(
        threads=settings.AGGREGATION_FETCH_THREADS,
        max_connections=settings.AGGREGATION_MAX_CONNECTIONS,
        max_body_bytes=settings.AGGREGATION_MAX_SOURCE_BYTES,
    )


def run_composite() -> RunComposite:
    history = DjangoRunHistory()
    return RunComposite(
        composites=DjangoCompositeRepository(),
        fetcher=fetcher(),
        cache=DjangoSourceCache(),
        recorder=history,
        metrics=PrometheusRunMetrics(),
        clock=SystemClock(),
        ticker=MonotonicTicker(),
    )


def create_composite() -> CreateComposite:
    return CreateComposite(DjangoCompositeRepository())


def ensure_composite() -> EnsureComposite:
    return EnsureComposite(DjangoCompositeRepository())


def get_composite() -> GetComposite:
    return GetComposite(DjangoCompositeRepository())


def list_composites() -> ListComposites:
    return ListComposites(DjangoCompositeRepository())


def update_composite() -> UpdateComposite:
    return UpdateComposite(DjangoCompositeRepository())


def delete_composite() -> DeleteComposite:
    return DeleteComposite(DjangoCompositeRepository())


def list_runs() -> ListRuns:
    return ListRuns(DjangoRunHistory())


def prune_runs() -> PruneRuns:
    return PruneRuns(DjangoRunHistory(), SystemClock())
