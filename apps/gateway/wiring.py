"""Composition root of the gateway context: factories that build use cases from adapters.

Views, the WSGI proxy entry point, commands and admin get their use cases here; nothing else
constructs adapters. Per-process state (route table, in-process limiter/breaker/cache, upstream
pools) is built once per worker. With REDIS_URL the shared state lives in Redis; without it
(embedded `make run`, one worker process) the thread-safe in-process adapters are used.
"""

from __future__ import annotations

import random as _random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.common.clock import SystemClock
from apps.common.tokens import SimpleJWTAccessTokenVerifier
from apps.common.tracing import SecretsRandomHex
from apps.common.transactions import DjangoUnitOfWork
from apps.gateway.breaker import InProcessCircuitBreaker, RedisCircuitBreaker
from apps.gateway.limiter import (
    CircuitHints,
    InProcessEdgeChecks,
    InProcessSlidingWindowLimiter,
    NoRevocationFacts,
    RedisSlidingWindowLimiter,
)
from apps.gateway.metrics import CircuitStateCollector, PrometheusGatewayMetrics
from apps.gateway.redis_support import key_prefix, raw_redis
from apps.gateway.repositories import DB, DjangoRouteRepository
from apps.gateway.response_cache import InProcessResponseCache, RedisResponseCache
from apps.gateway.route_table import CacheRouteChangeNotifier, VersionedRouteSource
from apps.gateway.traffic import RecentTraffic
from apps.gateway.upstream import HttpClientUpstream
from apps.gateway.upstream_curl import CurlUpstream
from apps.gateway.verified_tokens import MemoizingAccessTokenVerifier
from core.domain.gateway.matching import RouteTable
from core.usecases.gateway.forward_request import ForwardRequest
from core.usecases.gateway.manage_routes import (
    AnnounceSavedRoutes,
    CreateRoute,
    DeleteRoute,
    EnsureRoute,
    GetRoute,
    ListRoutes,
    UpdateRoute,
)
from core.usecases.gateway.ports import EdgeChecks, RateLimiter, ResponseCache
from core.usecases.gateway.route_status import GetCircuitStatus, GetRouteStatus
from core.usecases.shared.ports import Clock, Monotonic

if TYPE_CHECKING:  # imported only when tracing is on: it loads OpenTelemetry
    from apps.gateway.tracing import OpenTelemetryUpstream


class SystemRandom(SecretsRandomHex):
    """`RandomSource` on the standard library (jitter) and `secrets` (trace and span ids)."""

    def fraction(self) -> float:
        return _random.random()  # noqa: S311 - jitter, not security


@dataclass
class GatewayState:
    """Everything one worker process keeps between requests."""

    routes: VersionedRouteSource
    limiter: RateLimiter
    edge: EdgeChecks
    breaker: InProcessCircuitBreaker | RedisCircuitBreaker
    cache: ResponseCache
    upstream: CurlUpstream | HttpClientUpstream | OpenTelemetryUpstream
    metrics: PrometheusGatewayMetrics
    redis: Any | None
    tokens: MemoizingAccessTokenVerifier


_state: GatewayState | None = None
_state_lock = threading.Lock()


def state() -> GatewayState:
    """This process's gateway state, built on first use (after gunicorn forked the worker)."""
    global _state
    if _state is None:
        with _state_lock:
            if _state is None:
                _state = _build_state()
    return _state


def reset_state() -> None:
    """Forget this process's state (tests that switch Redis on and off)."""
    global _state
    with _state_lock:
        if _state is not None:
            _state.upstream.close()
            _state.metrics.recent.close()
        _state = None


def _build_state() -> GatewayState:
    client = raw_redis()
    recent = RecentTraffic(
        settings.GATEWAY_STATUS_WINDOW_SECONDS,
        client,
        key_prefix() if client is not None else "",
    )
    metrics = PrometheusGatewayMetrics(recent)
    repository = DjangoRouteRepository()
    routes = VersionedRouteSource(
        repository.enabled,
        refresh_seconds=settings.GATEWAY_ROUTE_REFRESH_SECONDS,
        shared_version=client is not None,  # embedded mode: no cache other processes share
    )
    routes.on_reload.append(metrics.route_table_loaded)
    limiter: RateLimiter
    edge: EdgeChecks
    breaker: InProcessCircuitBreaker | RedisCircuitBreaker
    cache: ResponseCache
    if client is not None:
        prefix = key_prefix()
        hints = CircuitHints()
        responses = RedisResponseCache(client, prefix)
        # One EVALSHA per request: revocation, limit, circuit hint and cache lookup.
        redis_limiter = RedisSlidingWindowLimiter(
            client, prefix, circuits=hints, responses=responses
        )
        limiter = edge = redis_limiter
        redis_breaker = RedisCircuitBreaker(client, prefix, hints=hints)
        routes.on_reload.append(lambda table: redis_breaker.forget_local())
        breaker = redis_breaker
        cache = responses
    else:
        in_process = InProcessSlidingWindowLimiter()
        limiter, edge = in_process, InProcessEdgeChecks(in_process)
        breaker = InProcessCircuitBreaker()
        cache = InProcessResponseCache(settings.GATEWAY_CACHE_MAX_ENTRIES)
    upstream: CurlUpstream | HttpClientUpstream | OpenTelemetryUpstream
    upstream_client: CurlUpstream | HttpClientUpstream
    if settings.GATEWAY_UPSTREAM_CLIENT == "pycurl":
        upstream_client = CurlUpstream(
            max_body_bytes=settings.GATEWAY_MAX_RESPONSE_BYTES,
            max_origins=settings.GATEWAY_UPSTREAM_MAX_ORIGINS,
            idle_seconds=settings.GATEWAY_UPSTREAM_IDLE_SECONDS,
        )
    else:
        upstream_client = HttpClientUpstream(
            pool_size=settings.GATEWAY_UPSTREAM_POOL_SIZE,
            max_body_bytes=settings.GATEWAY_MAX_RESPONSE_BYTES,
            max_origins=settings.GATEWAY_UPSTREAM_MAX_ORIGINS,
            idle_seconds=settings.GATEWAY_UPSTREAM_IDLE_SECONDS,
        )
    # Idle connections are closed: to upstreams the new table no longer uses, and, on the
    # background thread's tick, those idle too long (also of threads that serve no more).
    routes.on_reload.append(lambda table: upstream_client.retain(r.upstream_url for r in table))
    routes.housekeeping.append(upstream_client.sweep)
    upstream = upstream_client
    if settings.TRACING:  # each attempt a client span, its context sent upstream
        from opentelemetry import trace

        from apps.gateway.tracing import OpenTelemetryUpstream

        upstream = OpenTelemetryUpstream(upstream, trace.get_tracer(__name__))
    # Revocation facts are read by `edge`, together with the rate limit (one round trip).
    tokens = MemoizingAccessTokenVerifier(
        SimpleJWTAccessTokenVerifier(NoRevocationFacts()), SystemClock()
    )
    return GatewayState(routes, limiter, edge, breaker, cache, upstream, metrics, client, tokens)


def forward_request(
    *, clock: Clock | None = None, monotonic: Monotonic | None = None
) -> ForwardRequest:
    """The proxy's use case; tests may give it their own clocks."""
    current = state()
    return ForwardRequest(
        routes=current.routes,
        tokens=current.tokens,
        edge=current.edge,
        breaker=current.breaker,
        cache=current.cache,
        upstream=current.upstream,
        metrics=current.metrics,
        clock=clock or SystemClock(),
        monotonic=monotonic or time.monotonic,
        sleep=time.sleep,
        random=SystemRandom(),
        # The Django admin's cookies (scoped to /admin/ on this same origin): no upstream sets them.
        reserved_cookies=frozenset({settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME}),
    )


def circuit_state_collector() -> CircuitStateCollector:
    """/metrics' circuit gauge: the route table this worker holds, the circuits every worker
    shares."""

    def routes() -> RouteTable | None:
        held = _state  # not built for a scrape: a process that serves no route reports none
        return held.routes.loaded() if held is not None else None

    return CircuitStateCollector(routes=routes, circuits=lambda: state().breaker)


def _notifier() -> CacheRouteChangeNotifier:
    return CacheRouteChangeNotifier(state().routes)


def list_routes() -> ListRoutes:
    return ListRoutes(routes=DjangoRouteRepository())


def get_route() -> GetRoute:
    return GetRoute(routes=DjangoRouteRepository())


def create_route() -> CreateRoute:
    return CreateRoute(
        routes=DjangoRouteRepository(), notifier=_notifier(), breaker=state().breaker
    )


def ensure_route() -> EnsureRoute:
    return EnsureRoute(
        routes=DjangoRouteRepository(), notifier=_notifier(), breaker=state().breaker
    )


def update_route() -> UpdateRoute:
    return UpdateRoute(
        routes=DjangoRouteRepository(),
        notifier=_notifier(),
        breaker=state().breaker,
        uow=DjangoUnitOfWork(DB),
    )


def delete_route() -> DeleteRoute:
    return DeleteRoute(
        routes=DjangoRouteRepository(), notifier=_notifier(), breaker=state().breaker
    )


def route_status() -> GetRouteStatus:
    return GetRouteStatus(
        routes=DjangoRouteRepository(),
        breaker=state().breaker,
        stats=state().metrics.recent,
        clock=SystemClock(),
    )


def circuit_status() -> GetCircuitStatus:
    return GetCircuitStatus(breaker=state().breaker, clock=SystemClock())


def announce_saved_routes() -> AnnounceSavedRoutes:
    """For the admin, which saves through the ORM."""
    return AnnounceSavedRoutes(notifier=_notifier(), breaker=state().breaker)
