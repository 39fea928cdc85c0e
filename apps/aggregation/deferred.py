"""Writing a run's history row after its answer has gone out.

A view that opts in gets a `DeferredRunRecorder`: `record()` only queues the row on the
request's thread, and Django's `request_finished` signal — sent by the WSGI server after the
response was written — writes it. The row is still written before the worker thread takes
its next request; a caller never waits for the history's database round trips. It is written in
the context the run was recorded in (`contextvars`): its database span is a child of the
request's span, not a trace of its own, and its log lines carry the request's id.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

from core.domain.aggregation.runs import RunRecord
from core.usecases.aggregation.ports import RunRecorder

_pending = threading.local()


def _queue() -> list[Callable[[], None]]:
    if not hasattr(_pending, "writes"):
        _pending.writes = []
    writes: list[Callable[[], None]] = _pending.writes
    return writes


class DeferredRunRecorder:
    """`RunRecorder` that hands each run to `target` once the current request has finished."""

    def __init__(self, target: RunRecorder) -> None:
        self._target = target

    def record(self, run: RunRecord) -> None:
        context = contextvars.copy_context()
        _queue().append(lambda: context.run(self._target.record, run))


def flush_pending(sender: Any = None, **kwargs: Any) -> None:
    """`request_finished` receiver: write what this thread's request queued."""
    writes = _queue()
    while writes:
        writes.pop(0)()


def connect() -> None:
    from django.core.signals import request_finished

    request_finished.connect(flush_pending, dispatch_uid="aggregation-deferred-runs")
