"""Tracing shared by the contexts: random trace and span ids, the trace context an outgoing call
carries, and spans that keep a request's path, not its query string (tracing on:
config/telemetry.py).

A query may carry a token, so the access log leaves it out, and so must the traces. Django's
and the WSGI instrumentation record the whole request target (`http.target`, `http.url` in
the old HTTP conventions, `url.query` in the new), and httpx's the whole URL of a call to an
aggregation source, whose configured query may hold an API key (`http.url`, `url.full`); these
hooks overwrite those attributes once the span has started (the SDK cannot remove one).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from opentelemetry.trace import Span


class SecretsRandomHex:
    """`RandomHex` on `secrets` (new trace and span ids)."""

    def hex(self, nbytes: int) -> str:
        return secrets.token_hex(nbytes)


TRACE_HEADERS = frozenset({"traceparent", "tracestate"})  # W3C: the state travels with the trace


def current_trace_headers() -> dict[str, str]:
    """OpenTelemetry's current context as W3C headers (`traceparent`, and `tracestate` when it
    has one); empty without a current span. Only with tracing on: it loads OpenTelemetry."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier if carrier.get("traceparent") else {}


def with_trace_headers(
    headers: Iterable[tuple[str, str]], trace_headers: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """`headers` whose own `traceparent` and `tracestate` (any case) give way to
    `trace_headers`: a state never stays beside a context it does not belong to."""
    kept = tuple((name, value) for name, value in headers if name.lower() not in TRACE_HEADERS)
    return kept + tuple(trace_headers.items())


_TARGETS = ("http.target", "http.url", "url.full")  # the path (or URL) with the query after `?`
REDACTED = "REDACTED"


def drop_query(span: Span) -> None:
    """Cut the query off every request-target attribute of `span`; `url.query` is redacted."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _TARGETS:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.partition("?")[0])
    if attributes.get("url.query"):
        span.set_attribute("url.query", REDACTED)


def query_free_request_hook(span: Span, request: Any) -> None:
    """The request hook of `DjangoInstrumentor` (server spans) and `HTTPXClientInstrumentor`
    (client spans): the query leaves the span."""
    drop_query(span)


@contextmanager
def untraced() -> Iterator[None]:
    """No spans for what runs inside: for a background thread's own housekeeping (a worker's
    route-table poll, its traffic flush), whose Redis and database calls belong to no request.
    With tracing on, each poll was a trace of its own: two a second per idle worker."""
    if not settings.TRACING:
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield
