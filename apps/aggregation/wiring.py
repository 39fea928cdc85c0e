"""Composition root of the aggregation context: factories that build use cases from adapters.

Views, commands and admin actions get their use cases here; nothing else constructs adapters.
Settings are read when a factory runs, never copied at import time.
"""

from __future__ import annotations

import time

from django.conf import settings

from apps.aggregation.adapters import (
    DjangoSourceCache,
    PrometheusRunMetrics,
    Uuid4IdGenerator,
)
from apps.aggregation.deferred import DeferredRunRecorder
from apps.aggregation.fetching import shared_fetcher
from apps.aggregation.repositories import DB, CachedCompositeRepository, DjangoRunHistory
from apps.common.clock import SystemClock
from apps.common.tracing import SecretsRandomHex
from apps.common.transactions import DjangoUnitOfWork
from core.usecases.aggregation.composites import (
    CreateComposite,
    DeleteComposite,
    EnsureComposite,
    GetComposite,
    ListComposites,
    UpdateComposite,
)
from core.usecases.aggregation.history import ListRuns, PruneRuns
from core.usecases.aggregation.ports import SourceFetcher
from core.usecases.aggregation.run import RunComposite


def fetcher() -> SourceFetcher:
    shared = shared_fetcher(
        threads=settings.AGGREGATION_FETCH_THREADS,
        max_connections=settings.AGGREGATION_MAX_CONNECTIONS,
        max_body_bytes=settings.AGGREGATION_MAX_SOURCE_BYTES,
        max_calls_per_origin=settings.AGGREGATION_MAX_CALLS_PER_ORIGIN,
    )
    if settings.TRACING:  # each call's own span is the context sent, not the use case's
        from apps.aggregation.tracing import OpenTelemetrySourceFetcher

        return OpenTelemetrySourceFetcher(shared)
    return shared


def run_composite(*, after_response: bool = False) -> RunComposite:
    """`after_response=True` (HTTP views only) writes the history row once the answer is sent."""
    history = DjangoRunHistory()
    return RunComposite(
        composites=CachedCompositeRepository(),
        fetcher=fetcher(),
        cache=DjangoSourceCache(),
        recorder=DeferredRunRecorder(history) if after_response else history,
        metrics=PrometheusRunMetrics(),
        clock=SystemClock(),
        monotonic=time.monotonic,
        ids=Uuid4IdGenerator(),
        random=SecretsRandomHex(),
        max_run_bytes=settings.AGGREGATION_MAX_RUN_BYTES,
    )


def create_composite() -> CreateComposite:
    return CreateComposite(CachedCompositeRepository())


def ensure_composite() -> EnsureComposite:
    return EnsureComposite(CachedCompositeRepository())


def get_composite() -> GetComposite:
    return GetComposite(CachedCompositeRepository())


def list_composites() -> ListComposites:
    return ListComposites(CachedCompositeRepository())


def update_composite() -> UpdateComposite:
    return UpdateComposite(CachedCompositeRepository(), DjangoUnitOfWork(DB))


def delete_composite() -> DeleteComposite:
    return DeleteComposite(CachedCompositeRepository())


def list_runs() -> ListRuns:
    return ListRuns(DjangoRunHistory())


def prune_runs() -> PruneRuns:
    return PruneRuns(DjangoRunHistory(), SystemClock())
