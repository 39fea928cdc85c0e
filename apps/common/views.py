"""Operational endpoints (health, readiness, metrics) and Django's error handlers.

Every handler answers a problem document; none of them touches a bounded context.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from apps.common.problems import problem_response

log = structlog.get_logger(__name__)


@csrf_exempt
@require_GET
def liveness(request: HttpRequest) -> HttpResponse:
    """The process is up; touches no backing service."""
    return JsonResponse({"status": "ok"})


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # report any backend failure as that check's result
        log.warning("readiness_check_failed", error=type(error).__name__)
        return {"status": "unavailable", "error": type(error).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_database(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    cache.set("health:ready", "1", timeout=10)
    if cache.get("health:ready") != "1":
        raise RuntimeError("cache did not return what was written")


@csrf_exempt
@require_GET
def readiness(request: HttpRequest) -> HttpResponse:
    """Every database alias and the cache answer; 503 with each check's result otherwise."""
    checks = {
        f"database:{alias}": _timed(lambda a=alias: _check_database(a))
        for alias in settings.DATABASES
    }
    checks["cache"] = _timed(_check_cache)
    ready = all(result["status"] == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@csrf_exempt
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, aggregated across gunicorn workers when multiprocess."""
    return ExportToDjangoView(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
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


def rate_limited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """django-ratelimit's view for blocked requests outside DRF."""
    retry_after = str(getattr(exception, "retry_after", 60))
    return problem_response(
        429,
        "rate_limited",
        "Too many requests; try again later.",
        headers={"Retry-After": retry_after},
    )
