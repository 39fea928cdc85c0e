"""With tracing on, every upstream attempt is a client span whose context the upstream receives."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from apps.gateway.tracing import OpenTelemetryUpstream
from apps.gateway.upstream import HttpClientUpstream
from core.domain.shared.result import Err, Ok
from core.usecases.gateway.ports import UpstreamFailure, UpstreamRequest
from tests.factories.gateway import refusing_url
from tests.tracing import CLIENT_TRACE, recorded_spans

# What the use case sends when it continues the client's trace without OpenTelemetry.
CONTINUED = (
    ("traceparent", f"00-{CLIENT_TRACE}-1111111111111111-01"),
    ("tracestate", "vendor=client"),
    ("X-Request-ID", "r-1"),
)


@pytest.fixture
def spans():
    with recorded_spans() as recorded:
        yield recorded


@pytest.fixture
def client():
    upstream = HttpClientUpstream()
    yield upstream
    upstream.close()


def _send(traced, url, method="GET"):
    request = UpstreamRequest(method=method, url=url, headers=CONTINUED, body=None)
    return traced.send(request, 5.0)


def test_the_upstream_sees_the_attempts_span_as_its_parent(spans, client, upstream):
    provider, exporter = spans
    traced = OpenTelemetryUpstream(client, provider.get_tracer("test"))
    with provider.get_tracer("test").start_as_current_span("proxy", kind=SpanKind.SERVER) as server:
        answer = _send(traced, f"{upstream.url}/orders/ok?token=secret").unwrap()

    received = json.loads(answer.body)["headers"]
    (attempt,) = [span for span in exporter.get_finished_spans() if span.name == "GET"]
    trace_id = format(server.get_span_context().trace_id, "032x")
    version, received_trace, parent_id, _flags = received["traceparent"].split("-")
    assert (version, received_trace, parent_id) == (
        "00",
        trace_id,
        format(attempt.context.span_id, "016x"),
    )
    assert "tracestate" not in received  # the server span's own state (none) travels instead
    assert received["x-request-id"] == "r-1"
    assert attempt.kind is SpanKind.CLIENT
    assert attempt.parent.span_id == server.get_span_context().span_id
    assert attempt.attributes["http.response.status_code"] == 200
    assert attempt.attributes["url.full"] == f"{upstream.url}/orders/ok"  # no query: secrets
    assert attempt.attributes["server.port"] == upstream.server_address[1]
    assert attempt.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(("sampler", "sampled"), [(ALWAYS_ON, 1), (ALWAYS_OFF, 0)])
def test_the_upstream_is_told_the_tracers_sampling_decision(client, upstream, sampler, sampled):
    """The attempt's context goes upstream whether or not it is recorded: its trace id, its
    span id, and the sampled flag (bit 0; the SDK may set Trace Context 2's random-id bit too)
    as the sampler decided, not the client's."""
    provider = TracerProvider(sampler=sampler)
    tracer = provider.get_tracer("test")
    traced = OpenTelemetryUpstream(client, tracer)
    with tracer.start_as_current_span("proxy", kind=SpanKind.SERVER) as server:
        answer = _send(traced, f"{upstream.url}/ok").unwrap()
    provider.shutdown()
    received = json.loads(answer.body)["headers"]
    version, trace_id, span_id, flags = received["traceparent"].split("-")
    assert (version, trace_id) == ("00", format(server.get_span_context().trace_id, "032x"))
    assert span_id not in {"1111111111111111", format(server.get_span_context().span_id, "016x")}
    assert int(flags, 16) & 1 == sampled, received["traceparent"]
    assert "tracestate" not in received


def test_a_5xx_answer_and_a_refused_connection_are_error_spans(spans, client, upstream):
    provider, exporter = spans
    traced = OpenTelemetryUpstream(client, provider.get_tracer("test"))

    assert _send(traced, f"{upstream.url}/fail").unwrap().status == 500
    assert _send(traced, refusing_url()) == Err(UpstreamFailure.CONNECTION)

    failed, refused = exporter.get_finished_spans()
    assert (failed.attributes["error.type"], failed.status.status_code) == ("500", StatusCode.ERROR)
    assert (refused.attributes["error.type"], refused.status.status_code) == (
        "connection",
        StatusCode.ERROR,
    )
    assert "http.response.status_code" not in refused.attributes


def test_without_a_recording_tracer_the_use_cases_trace_context_goes_upstream(client, upstream):
    traced = OpenTelemetryUpstream(client, NoOpTracerProvider().get_tracer("test"))
    match _send(traced, f"{upstream.url}/ok"):
        case Ok(answer):
            received = json.loads(answer.body)["headers"]
    assert received["traceparent"] == CONTINUED[0][1]
    assert received["tracestate"] == "vendor=client"
