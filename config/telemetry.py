"""OpenTelemetry tracing, switched on only by the standard `OTEL_*` environment variables.

With none set (the default) nothing is imported or instrumented, so tracing costs nothing.
Set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_TRACES_EXPORTER=console`) to turn it on; the
service name comes from `OTEL_SERVICE_NAME` (default "platform").
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from django.core.exceptions import ImproperlyConfigured

_configured = False
# The standard values of OTEL_TRACES_EXPORTER this platform has an exporter for (`zipkin` and
# the rest need packages it does not install).
EXPORTERS = ("otlp", "console")
Environ = dict[str, str] | os._Environ[str]


def traces_exporters(environ: Environ = os.environ) -> list[str]:
    """The exporters the standard OTEL variables ask for (none: tracing stays off).

    `OTEL_TRACES_EXPORTER` is a comma-separated list of `otlp` and `console`, or `none`;
    unset, an OTLP endpoint means `otlp`. Another value stops the start, naming the variable:
    it turned tracing on with an OTLP exporter.
    """
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "")
    if raw.strip().lower() == "none":  # as the OpenTelemetry SDK reads it
        return []
    if not raw.strip():
        endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip() for name in raw.split(",")]
    if not set(names) <= set(EXPORTERS):
        raise ImproperlyConfigured(
            f"OTEL_TRACES_EXPORTER must be otlp, console, both (otlp,console) or none, not {raw!r}."
        )
    return list(dict.fromkeys(names))


SANITIZE_FIELDS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
# The headers whose values a span never records when an operator captures headers
# (`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=.*` and the like): regular
# expressions the instrumentations search for in a header's name, ignoring case (so
# `authorization` would find `Proxy-Authorization` too; both are named, to read as what is
# redacted). They cover the gateway's credential headers (`CREDENTIAL_HEADERS` in
# core/domain/gateway/caching.py) and `Set-Cookie`, which may carry a session.
REDACTED_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    ".*api[-_]?key.*",
    "ocp-apim-subscription-key",
    "x-functions-key",
    ".*token.*",
    ".*secret.*",
    ".*session.*",
    ".*password.*",
)


def redact_credential_headers(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set `OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS` to `REDACTED_HEADERS`
    when the operator left it unset or empty; a value of their own is kept as it is."""
    if not environ.get(SANITIZE_FIELDS, "").strip():
        environ[SANITIZE_FIELDS] = ",".join(REDACTED_HEADERS)


def tracing_requested(environ: Environ = os.environ) -> bool:
    """True when the standard OTEL variables ask for traces and the SDK is not disabled."""
    return bool(traces_exporters(environ))


def configure_tracing() -> bool:
    """Install the tracer provider and instrument Django, psycopg, redis and httpx, once."""
    global _configured
    if _configured or not tracing_requested():
        return _configured
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    redact_credential_headers()  # read by the instrumentations on each request
    exporters: list[SpanExporter] = []
    for name in traces_exporters():
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
    service = os.environ.get("OTEL_SERVICE_NAME", "platform")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from apps.common.tracing import query_free_request_hook

    DjangoInstrumentor().instrument(request_hook=query_free_request_hook)  # no query in spans
    PsycopgInstrumentor().instrument()
    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument(request_hook=query_free_request_hook)
    _configured = True
    return True
