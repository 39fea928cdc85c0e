"""OpenTelemetry for the proxy: each upstream attempt is a client span, and its context travels.

Used only when tracing is switched on (`settings.TRACING`, config/telemetry.py). Without it the
use case's own `traceparent` (the client's trace continued, or a new one, not sampled) goes
upstream and nothing here runs. With it, the upstream must see the gateway's spans as its
parents, or the trace breaks at the front door: this wrapper replaces the use case's
`traceparent`/`tracestate` with the context of the attempt's own span, a child of the proxied
request's server span, and its sampling decision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.http import sanitize_method

from apps.common.tracing import current_trace_headers, drop_query, with_trace_headers
from apps.gateway.entrypoint import ROUTE_ENVIRON_KEY
from core.domain.shared.result import Err, Ok, Result
from core.usecases.gateway.ports import StoredResponse, Upstream, UpstreamFailure, UpstreamRequest


def traced_application(application: Any) -> OpenTelemetryMiddleware:
    """The proxy's WSGI application with a server span per request (config.wsgi, tracing on).

    The span is named by the method alone, as OpenTelemetry's HTTP conventions ask when no
    low-cardinality route template is known (they forbid the URI path as the default): the
    path is the client's to choose, and trace backends index span names. The route the
    request matched, a bounded admin-defined name, is the `gateway.route` attribute. The span
    keeps the path, not the query (`drop_query`: a query may carry a token).
    """
    return OpenTelemetryMiddleware(
        application, request_hook=_named_by_method, response_hook=_matched_route
    )


def _named_by_method(span: Span, environ: dict[str, Any]) -> None:
    method = sanitize_method(str(environ.get("REQUEST_METHOD", "")).strip())
    span.update_name("HTTP" if method == "_OTHER" else method)
    drop_query(span)


def _matched_route(
    span: Span, environ: dict[str, Any], status: str, headers: list[tuple[str, str]]
) -> None:
    route = environ.get(ROUTE_ENVIRON_KEY)
    if route:
        span.set_attribute("gateway.route", route)


class _ClosableUpstream(Upstream, Protocol):
    """An `Upstream` with a connection pool, closed when the gateway drops its state."""

    def close(self) -> None: ...


class OpenTelemetryUpstream:
    """`Upstream` that records every attempt as an HTTP client span and propagates its context."""

    def __init__(self, inner: _ClosableUpstream, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    def send(
        self, request: UpstreamRequest, timeout_seconds: float
    ) -> Result[StoredResponse, UpstreamFailure]:
        with self._tracer.start_as_current_span(
            request.method,
            kind=SpanKind.CLIENT,
            attributes=_request_attributes(request),
            record_exception=False,
        ) as span:
            context = current_trace_headers()
            if context:  # the span's context and sampling decision, recorded or not, replace ours
                request = replace(request, headers=with_trace_headers(request.headers, context))
            result = self._inner.send(request, timeout_seconds)
            match result:
                case Ok(answer):
                    span.set_attribute("http.response.status_code", answer.status)
                    if answer.status >= 500:
                        span.set_attribute("error.type", str(answer.status))
                        span.set_status(Status(StatusCode.ERROR))
                case Err(failure):
                    span.set_attribute("error.type", failure.value)
                    span.set_status(Status(StatusCode.ERROR))
            return result

    def close(self) -> None:
        self._inner.close()


def _request_attributes(request: UpstreamRequest) -> dict[str, str | int]:
    """HTTP client semantic conventions; the query is left out (it may carry secrets)."""
    parts = urlsplit(request.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {
        "http.request.method": request.method,
        "server.address": parts.hostname or "",
        "server.port": port,
        "url.full": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path or '/'}",
    }
