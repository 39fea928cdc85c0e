"""A run's history row is written after its answer went out, in the request's context."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from apps.aggregation.deferred import DeferredRunRecorder, flush_pending
from core.domain.aggregation.runs import RunRecord, RunStatus


class _Seen:
    """A `RunRecorder` that notes the span and log context each row is written in."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, object, dict[str, object]]] = []

    def record(self, run: RunRecord) -> None:
        context = structlog.contextvars.get_contextvars()
        self.rows.append((run.id, trace.get_current_span(), context))


def test_the_deferred_row_is_written_in_the_span_and_log_context_of_its_request():
    # Written at `request_finished`, after the server span had ended and the request's log
    # context was gone, the INSERT was a trace of its own and its lines had no request id.
    seen = _Seen()
    recorder = DeferredRunRecorder(seen)
    tracer = TracerProvider().get_tracer("test")
    run = RunRecord("r1", "dash", RunStatus.COMPLETE, 1.0, None, datetime.now(UTC), ())
    structlog.contextvars.clear_contextvars()
    with tracer.start_as_current_span("GET /run") as request_span:
        structlog.contextvars.bind_contextvars(request_id="rid-deferred")
        recorder.record(run)
    structlog.contextvars.clear_contextvars()
    assert seen.rows == []  # nothing before the request has finished

    flush_pending()

    [(run_id, span, context)] = seen.rows
    assert run_id == "r1"
    assert span is request_span
    assert context == {"request_id": "rid-deferred"}
    assert trace.get_current_span() is not request_span  # and no context leaks out
