"""Operational endpoints (health, readiness, metrics), the schema and its docs, and Django's
error handlers.

Every handler answers a problem document; none of them touches a bounded context. The
operational endpoints are DRF views only so that the OpenAPI schema documents them: they take
no token, answer GET and HEAD (load balancers probe with HEAD), and ignore `Accept`.
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import prometheus_client
import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.db import connections
from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.apiviews import PlatformAPIView
from apps.common.clientip import client_ip, within
from apps.common.hosts import HOST_NOT_ALLOWED
from apps.common.metrics import exposition
from apps.common.openapi import problem_fields, problems
from apps.common.problems import PROBLEM_CONTENT_TYPE, problem_response

log = structlog.get_logger(__name__)

OPERATIONS_TAG = "operations"


class FirstRendererNegotiation(BaseContentNegotiation):
    """Probes and scrapers get the one format an operational endpoint speaks, whatever their
    `Accept` says (a 406 would read as "down")."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class OperationalView(PlatformAPIView):
    """GET and HEAD, no authentication, no content negotiation."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    content_negotiation_class = FirstRendererNegotiation
    http_method_names = ["get", "head"]


def _status_field(*values: str) -> serializers.ChoiceField:
    # An enum in the schema, named by ENUM_NAME_OVERRIDES (config/settings/base.py).
    return serializers.ChoiceField(choices=list(values))


Liveness = inline_serializer(name="Liveness", fields={"status": _status_field("ok")})
ReadinessCheck = inline_serializer(
    name="ReadinessCheck",
    fields={
        "status": _status_field("ok", "unavailable"),
        "latency_ms": serializers.FloatField(required=False, help_text="When `ok`."),
        "error": serializers.CharField(
            required=False,
            help_text=(
                "The failure's exception type, when `unavailable`; `timeout` when the check "
                "had not answered within READINESS_TIMEOUT_SECONDS."
            ),
        ),
    },
)
_CHECKS_FIELD = {
    "checks": serializers.DictField(
        child=ReadinessCheck,
        help_text="By check: `database:<alias>` for every database alias, and `cache`.",
    )
}
Readiness = inline_serializer(
    name="Readiness", fields={"status": _status_field("ok"), **_CHECKS_FIELD}
)
# A failed readiness is an error like any other (API.md: a problem document), which carries
# each check's result, as the 502 `source_failed` problem carries a run's answer.
ReadinessProblem = inline_serializer(
    name="ReadinessProblem",
    fields={**problem_fields(code_help="`service_unavailable`."), **_CHECKS_FIELD},
)


class LivenessView(OperationalView):
    @extend_schema(
        operation_id="health",
        summary="Liveness",
        description="The process is up; touches no backing service.",
        tags=[OPERATIONS_TAG],
        responses={200: OpenApiResponse(Liveness, description="The process is up.")},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _timed(name: str, check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # report any backend failure as that check's result
        log.warning("readiness_check_failed", check=name, error=type(error).__name__)
        return {"status": "unavailable", "error": type(error).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_database(alias: str) -> None:
    # On a readiness thread: a connection of its own, opened for the check and closed after it,
    # so a probe tests connecting too and no connection outlives it on that thread.
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connections[alias].close()


def _check_cache() -> None:
    cache.set("health:ready", "1", timeout=10)
    if cache.get("health:ready") != "1":
        raise RuntimeError("cache did not return what was written")


# The checks run side by side, each on a thread of this pool: a backing service that stops
# answering costs the probe READINESS_TIMEOUT_SECONDS, not its own timeouts one after another
# (a frozen PostgreSQL: ~11 s per alias). A check still waiting keeps its thread until its own
# timeout; one still queued when its probe answers is dropped, so that neither the threads nor
# the queue grow while a service hangs (each probe's checks would otherwise run, and connect,
# long after it answered).
_READINESS_THREADS = 8
_readiness_pool = ThreadPoolExecutor(_READINESS_THREADS, thread_name_prefix="readiness")


def _run_checks(checks: dict[str, Any], timeout: float) -> dict[str, dict[str, Any]]:
    """Each check's result (`_timed`), or `timeout` for one not done within `timeout` s."""
    futures = {
        name: _readiness_pool.submit(contextvars.copy_context().run, _timed, name, check)
        for name, check in checks.items()
    }
    done, _ = wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        if future in done:
            results[name] = future.result()
        else:
            future.cancel()  # not started yet: nobody waits for it any more
            log.warning("readiness_check_failed", check=name, error="timeout")
            results[name] = {"status": "unavailable", "error": "timeout"}
    return results


class ReadinessView(OperationalView):
    @extend_schema(
        operation_id="health_ready",
        summary="Readiness",
        description="Checks every database alias and the cache.",
        tags=[OPERATIONS_TAG],
        responses={
            200: OpenApiResponse(Readiness, description="Every check is `ok`."),
            (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ReadinessProblem,
                description="`service_unavailable`: a check failed; each check's result says "
                "which.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        checks = {
            f"database:{alias}": (lambda a=alias: _check_database(a))
            for alias in settings.DATABASES
        }
        checks["cache"] = _check_cache
        checks = _run_checks(checks, settings.READINESS_TIMEOUT_SECONDS)
        failed = [name for name, result in checks.items() if result["status"] != "ok"]
        if failed:
            verb = "is" if len(failed) == 1 else "are"
            return problem_response(
                503,
                "service_unavailable",
                f"Not ready: {', '.join(failed)} {verb} unavailable.",
                extra={"checks": checks},
            )
        return Response({"status": "ok", "checks": checks})


class MetricsView(OperationalView):
    @extend_schema(
        operation_id="metrics",
        summary="Prometheus metrics",
        description=(
            "Prometheus text format, aggregated across gunicorn workers when multiprocess: "
            "request rate and duration, database and cache calls, and business counters; "
            "circuit states are read from the shared state at each scrape. Served to clients "
            "in METRICS_ALLOWED_NETWORKS only (loopback and private networks by default, by "
            "the client IP the rate limits use): the counters of logins by outcome, lockouts "
            "and throttled emails say which addresses have accounts. Anyone else: 403."
        ),
        tags=[OPERATIONS_TAG],
        responses={
            (200, prometheus_client.CONTENT_TYPE_LATEST.split(";")[0]): OpenApiResponse(
                OpenApiTypes.STR, description="Prometheus text exposition format."
            ),
            **problems({403: ["permission_denied"]}),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        if not within(client_ip(request), settings.METRICS_ALLOWED_NETWORKS):
            return problem_response(
                403, "permission_denied", "Metrics are served to the monitoring networks only."
            )
        return HttpResponse(exposition(), content_type=prometheus_client.CONTENT_TYPE_LATEST)


class SchemaView(PlatformAPIView, SpectacularAPIView):
    """drf-spectacular's `/api/schema/`, refusing other methods before authentication. The
    schema is public: a stray or stale Authorization header is ignored, not a 401."""

    authentication_classes: list[Any] = []


class SchemaDocsView(PlatformAPIView, SpectacularSwaggerView):
    """drf-spectacular's Swagger UI at `/api/docs/`, likewise. A page, not an API: no OPTIONS
    (DRF's answer to it is a description of the view, which the page's HTML renderer cannot
    render)."""

    authentication_classes: list[Any] = []
    http_method_names = ["get", "head"]


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, DisallowedHost):  # worded as the proxy words it (apps.common.hosts)
        return problem_response(400, "bad_request", HOST_NOT_ALLOWED)
    return problem_response(400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(403, "permission_denied", "You may not do this.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Cookie-authenticated (admin) form posted without a valid CSRF token."""
    return problem_response(403, "csrf_failed", "The CSRF check failed; reload the form.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(404, "not_found", f"Nothing is at {request.path}.")


def server_error(request: HttpRequest) -> HttpResponse:
    # The exception and its traceback are logged by Django; the client learns only the id.
    return problem_response(
        500,
        "internal_error",
        "Something went wrong on our side; quote the X-Request-ID when reporting it.",
    )
