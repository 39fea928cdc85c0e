"""`drop_query`: a server span keeps the request's path, not its query string."""

from __future__ import annotations

from opentelemetry.trace import INVALID_SPAN

from apps.common.tracing import REDACTED, drop_query
from tests.tracing import recorded_spans


def _exported(attributes: dict[str, str]) -> dict[str, object]:
    with recorded_spans() as (provider, exporter):
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("GET", attributes=attributes) as span:
            drop_query(span)
    return dict(exporter.get_finished_spans()[0].attributes or {})


def test_every_target_attribute_loses_its_query():
    attributes = _exported(
        {
            "http.target": "/api/v1/x?token=s3cret",
            "http.url": "http://h/api/v1/x?token=s3cret",
            "url.path": "/api/v1/x",
            "url.query": "token=s3cret",
        }
    )
    assert attributes == {
        "http.target": "/api/v1/x",
        "http.url": "http://h/api/v1/x",
        "url.path": "/api/v1/x",
        "url.query": REDACTED,
    }


def test_a_span_without_a_query_is_left_alone():
    assert _exported({"http.target": "/api/v1/x"}) == {"http.target": "/api/v1/x"}


def test_a_span_that_records_nothing_is_fine():
    drop_query(INVALID_SPAN)
