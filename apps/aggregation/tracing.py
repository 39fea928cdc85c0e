"""OpenTelemetry for composite runs: a source call carries its own span's context, and only it.

Used only when tracing is switched on (`settings.TRACING`, config/telemetry.py). Without it the
use case's own `traceparent` (the caller's trace continued, or the run's new one) and the
caller's `tracestate` go to the sources, and nothing here runs. With it, httpx's
instrumentation makes each call a client span and writes that span's `traceparent` over ours,
but its `tracestate` only when the span has one: ours stayed beside it whenever OpenTelemetry's
context had none (a caller's state it refused, a trace it did not continue), the state of a
context the source never saw. As the proxy's upstream does (apps/gateway/tracing.py), the run's
current context replaces the use case's on every call; the instrumentation narrows it to the
call's own span.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from opentelemetry import propagate

from core.usecases.aggregation.ports import FetchResult, SourceFetcher, SourceRequest

_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


class OpenTelemetrySourceFetcher:
    """`SourceFetcher` whose calls carry OpenTelemetry's context in place of the use case's."""

    def __init__(self, inner: SourceFetcher) -> None:
        self._inner = inner

    def fetch_all(self, requests: Sequence[SourceRequest]) -> Mapping[str, FetchResult]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier.get("traceparent"):  # a current span: its context replaces ours
            requests = [_with_context(request, carrier) for request in requests]
        return self._inner.fetch_all(requests)


def _with_context(request: SourceRequest, carrier: Mapping[str, str]) -> SourceRequest:
    kept = {
        name: value for name, value in request.headers.items() if name.lower() not in _TRACE_HEADERS
    }
    return replace(request, headers={**kept, **carrier})
