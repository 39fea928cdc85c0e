"""OpenTelemetry for composite runs: a source call carries its own span's context, and only it.

Used only when tracing is switched on (`settings.TRACING`, config/telemetry.py). Without it the
use case's own `traceparent` (the caller's trace continued, or the run's new one) and the
caller's `tracestate` go to the sources, and nothing here runs. With it, httpx's
instrumentation makes each call a client span and writes that span's `traceparent` over ours,
but its `tracestate` only when the span has one: ours stayed beside it whenever OpenTelemetry's
context had none (a caller's state it refused, a trace it did not continue), the state of a
context the source never saw. As for the proxy's upstream (apps/common/tracing.py), the run's
current context replaces the use case's on every call; the instrumentation narrows it to the
call's own span.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from apps.common.tracing import current_trace_headers, with_trace_headers
from core.domain.aggregation.budget import RunBudget
from core.usecases.aggregation.ports import FetchResult, SourceFetcher, SourceRequest


class OpenTelemetrySourceFetcher:
    """`SourceFetcher` whose calls carry OpenTelemetry's context in place of the use case's."""

    def __init__(self, inner: SourceFetcher) -> None:
        self._inner = inner

    def fetch_all(
        self, requests: Sequence[SourceRequest], budget: RunBudget | None = None
    ) -> Mapping[str, FetchResult]:
        context = current_trace_headers()
        if context:  # a current span: its context replaces ours
            requests = [
                replace(request, headers=dict(with_trace_headers(request.headers.items(), context)))
                for request in requests
            ]
        return self._inner.fetch_all(requests, budget)
