"""The gunicorn worker the platform runs: gthread, plus keep-alive lingering.

A gthread worker hands every kept-alive connection back to its main thread's poller after each
response, and the next request on it comes back through the poller and the thread pool: three
thread wake-ups per request (measured ~0.3-0.5 ms on 2 cores, about the time the gateway itself
takes; docs/gateway.md). `LingeringThreadWorker` lets the pool thread that just answered keep
serving its connection while the next request arrives within `GUNICORN_KEEPALIVE_LINGER_MS`
(default 2; 0 switches it off), unless another connection waits for a thread. Everything else
(limits, timeouts, graceful shutdown, HTTP/2) is gthread's own.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


def linger_seconds() -> float:
    """`GUNICORN_KEEPALIVE_LINGER_MS` in seconds (0: hand every connection back at once)."""
    return max(0.0, float(os.environ.get("GUNICORN_KEEPALIVE_LINGER_MS", "2")) / 1000)


def serve_while_kept_alive(
    handle: Callable[[Any], Any], conn: Any, seconds: float, may_linger: Callable[[], bool]
) -> Any:
    """Run `handle(conn)`, then again for each next request that arrives within `seconds`.

    Stops at the first answer that does not keep the connection alive, on HTTP/2, when
    `may_linger()` says a thread is needed elsewhere, or when nothing arrives in time; the
    last `handle` result goes back to gthread, which parks the connection in its poller.
    """
    keepalive = handle(conn)
    while (
        seconds > 0
        and keepalive is True
        and not conn.is_http2
        and may_linger()
        and next_request_arrives(conn, seconds)
    ):
        keepalive = handle(conn)
    return keepalive


def next_request_arrives(conn: Any, seconds: float) -> bool:
    """Whether the connection has (or gets within `seconds`) bytes of a next request."""
    parser = getattr(conn, "parser", None)
    if parser is not None and parser.unreader.buf.getvalue():
        return True  # already read ahead (pipelined)
    try:
        readable, _, _ = select.select([conn.sock], [], [], seconds)
    except (OSError, ValueError):
        return False
    return bool(readable)


class LingeringThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker; a thread keeps a busy kept-alive connection (see module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linger_seconds = linger_seconds()
        self._queued = 0  # connections submitted to the pool that no thread has picked up yet
        self._queued_lock = threading.Lock()

    def enqueue_req(self, conn: Any) -> None:
        with self._queued_lock:
            self._queued += 1
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        with self._queued_lock:
            self._queued -= 1
        return serve_while_kept_alive(super().handle, conn, self.linger_seconds, self._nobody_waits)

    def _nobody_waits(self) -> bool:
        return bool(self.alive) and self._queued <= 0
