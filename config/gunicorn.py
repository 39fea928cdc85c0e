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

_metrics_dir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "prometheus")))


def on_starting(server: Any) -> None:
    """Start every server with an empty metrics directory (stale files would be summed)."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the aggregated metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
