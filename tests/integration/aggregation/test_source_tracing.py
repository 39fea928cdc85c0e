"""With tracing on, each source call carries the context of its own client span, and only it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.trace import SpanKind, TraceState

from apps.aggregation.fetching import HttpxSourceFetcher
from apps.aggregation.tracing import OpenTelemetrySourceFetcher
from core.usecases.aggregation.ports import SourceRequest
from tests.tracing import CLIENT_TRACE, recorded_spans

# What the use case sends when it continues the caller's trace without OpenTelemetry.
CONTINUED = {
    "traceparent": f"00-{CLIENT_TRACE}-1111111111111111-01",
    "tracestate": "vendor=client",
    "X-Request-ID": "r-1",
}


@pytest.fixture
def spans():
    with recorded_spans() as recorded:
        yield recorded


def _fetch(fetcher, upstream):
    request = SourceRequest("a", "GET", upstream.url("/echo/traced"), 2000, CONTINUED)
    return fetcher.fetch_all([request])["a"].body["headers"]


def _traced_fetch(provider, upstream, run_state=None):
    """The `headers` a source received from a call made under a run span (whose trace state is
    `run_state`), through an instrumented client; and that run span."""
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
        fetcher = OpenTelemetrySourceFetcher(
            HttpxSourceFetcher(client, executor, max_body_bytes=10_000)
        )
        parent = None
        if run_state is not None:  # the caller's context, as the server instrumentation reads it
            caller = trace.SpanContext(
                int(CLIENT_TRACE, 16),
                0x22,
                is_remote=True,
                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
                trace_state=run_state,
            )
            parent = trace.set_span_in_context(trace.NonRecordingSpan(caller))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("run", context=parent, kind=SpanKind.SERVER) as run:
            return _fetch(fetcher, upstream), run


def _call_span(exporter):
    (call,) = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]
    return call


def test_the_source_sees_its_calls_span_as_parent_and_no_tracestate_of_ours(spans, upstream):
    provider, exporter = spans
    received, run = _traced_fetch(provider, upstream)

    call = _call_span(exporter)
    version, trace_id, parent_id, _flags = received["traceparent"].split("-")
    assert (version, trace_id, parent_id) == (
        "00",
        format(run.get_span_context().trace_id, "032x"),
        format(call.context.span_id, "016x"),
    )
    assert call.parent.span_id == run.get_span_context().span_id
    assert "tracestate" not in received  # the run span's own state (none) travels instead
    assert received["x-request-id"] == "r-1"


def test_the_runs_tracestate_goes_with_its_context(spans, upstream):
    provider, exporter = spans
    received, _run = _traced_fetch(provider, upstream, TraceState([("vendor", "otel")]))

    call = _call_span(exporter)
    assert received["traceparent"].split("-")[1:3] == [CLIENT_TRACE, f"{call.context.span_id:016x}"]
    assert received["tracestate"] == "vendor=otel"


def test_without_a_current_span_the_use_cases_trace_context_goes_out(upstream):
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = OpenTelemetrySourceFetcher(
            HttpxSourceFetcher(client, executor, max_body_bytes=10_000)
        )
        received = _fetch(fetcher, upstream)
    assert received["traceparent"] == CONTINUED["traceparent"]
    assert received["tracestate"] == "vendor=client"
