"""OpenTelemetry tracing, switched on only by the standard `OTEL_*` environment variables.

With none set (the default) nothing is imported or instrumented, so tracing costs nothing.
Set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_TRACES_EXPORTER=console`) to turn it on; the
service name comes from `OTEL_SERVICE_NAME` (default "platform").
"""

from __future__ import annotations

import os

_configured = False


def tracing_requested(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """True when the standard OTEL variables ask for traces and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter == "none":
        return False
    return bool(
        exporter
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


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

    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    service = os.environ.get("OTEL_SERVICE_NAME", "platform")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from apps.common.tracing import query_free_request_hook

    DjangoInstrumentor().instrument(request_hook=query_free_request_hook)  # no query in spans
    PsycopgInstrumentor().instrument()
    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument(request_hook=query_free_request_hook)
    _configured = True
    return True
