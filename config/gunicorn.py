"""Gunicorn configuration for `make run` and production.

gthread workers keep client connections alive and serve blocking I/O (databases, upstream HTTP)
on threads. Without Redis (the embedded default) exactly one worker process runs, so the
in-process cache that holds rate limits, circuit state and revocations is shared by every
request; with Redis, `WEB_CONCURRENCY` processes share state through it.
Prometheus metrics are aggregated across workers through PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Any

_var = Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parents[1] / "var"))
_shared_state = bool(os.environ.get("REDIS_URL"))

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = (
    int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count())) if _shared_state else 1
)
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 100
accesslog = None  # one structured line per request comes from apps.common.middleware
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
wsgi_app = "config.wsgi:application"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicornc's control socket lives with this checkout's var/, so several servers on one machine
# (tests, benchmarks, a second checkout) never fight over the per-user default path.
control_socket = str(_var / "gunicorn.ctl")
# Each worker touches its heartbeat file on every turn of its event loop (per request): on a
# disk-backed /tmp that is a journaled metadata write; on tmpfs it is a memory operation.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

_metrics_dir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "prometheus")))


def on_starting(server: Any) -> None:
    """Start every server with an empty metrics directory (stale files would be summed)."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the aggregated metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# A gthread worker hands every kept-alive connection back to its main thread's poller after
# each response, and the next request on it comes back through the poller and the thread pool:
# three thread wake-ups per request (measured ~0.3-0.5 ms on 2 cores, about the time the
# gateway itself takes). A thread that just answered keeps serving its connection while the
# next request arrives within KEEPALIVE_LINGER_SECONDS, unless other connections wait for a
# thread. Everything else (limits, timeouts, graceful shutdown) is gthread's own.
KEEPALIVE_LINGER_SECONDS = float(os.environ.get("GUNICORN_KEEPALIVE_LINGER_MS", "2")) / 1000


def post_worker_init(worker: Any) -> None:
    """Serve a kept-alive connection's next request on the thread that answered the last one."""
    handle = getattr(worker, "handle", None)
    pool = getattr(worker, "tpool", None)
    if (
        handle is None
        or pool is None
        or KEEPALIVE_LINGER_SECONDS <= 0
        or getattr(worker, "_lingering", False)
    ):
        return
    worker._lingering = True
    waiting = getattr(pool, "_work_queue", None)

    def lingering_handle(conn: Any) -> Any:
        keepalive = handle(conn)
        while (
            keepalive is True
            and worker.alive
            and not conn.is_http2
            and (waiting is None or waiting.empty())
            and _next_request_arrives(conn, KEEPALIVE_LINGER_SECONDS)
        ):
            keepalive = handle(conn)
        return keepalive

    worker.handle = lingering_handle


def _next_request_arrives(conn: Any, seconds: float) -> bool:
    import select

    if conn.parser is not None and conn.parser.unreader.buf.getvalue():
        return True  # already read ahead (pipelined)
    try:
        readable, _, _ = select.select([conn.sock], [], [], seconds)
    except (OSError, ValueError):
        return False
    return bool(readable)
