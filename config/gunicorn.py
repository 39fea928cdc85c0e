"""Gunicorn configuration for `make run` and production.

gthread workers keep client connections alive and serve blocking I/O (databases, upstream HTTP)
on threads. Without Redis (the embedded default) exactly one worker process runs, so the
in-process cache that holds rate limits, circuit state and revocations is shared by every
request; with Redis, `WEB_CONCURRENCY` processes share state through it.
Prometheus metrics are aggregated across workers through PROMETHEUS_MULTIPROC_DIR.

gunicorn reads two of these variables itself before it loads this file: WEB_CONCURRENCY (with
int(), as `gunicorn.config` is imported) and FORWARDED_ALLOW_IPS (as it builds its settings). A
bad value stops it with a bare ValueError, or a message of its own, naming neither; so `make
run` and the image run this file first, `python -m config.gunicorn`, which names them.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.env import (
    LOG_LEVELS,
    env_bool,
    env_choice,
    env_forwarded_allow_ips,
    env_int,
    env_port,
    env_str,
)

_var = Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parents[1] / "var"))
_shared_state = bool(os.environ.get("REDIS_URL"))


_port = env_port("PORT", 8000)
bind = f"{env_str('HOST', '127.0.0.1')}:{_port}"
# gthread plus keep-alive lingering (config/gunicorn_worker.py).
worker_class = "config.gunicorn_worker.LingeringThreadWorker"
# Checked even when ignored (no Redis): gunicorn itself fails on it otherwise, an empty value too.
if os.environ.get("WEB_CONCURRENCY", "1").strip() == "":
    raise ImproperlyConfigured("WEB_CONCURRENCY must be an integer, not ''.")
_web_concurrency = env_int("WEB_CONCURRENCY", multiprocessing.cpu_count(), minimum=1)
workers = _web_concurrency if _shared_state else 1
threads = env_int("GUNICORN_THREADS", 8, minimum=1)
keepalive = env_int("GUNICORN_KEEPALIVE", 75, minimum=0)
timeout = env_int("GUNICORN_TIMEOUT", 30, minimum=0)  # 0: gunicorn never kills a silent worker
graceful_timeout = 20
max_requests = env_int("GUNICORN_MAX_REQUESTS", 0, minimum=0)  # 0: workers are never recycled
max_requests_jitter = 100
accesslog = None  # one structured line per request comes from apps.common.middleware
errorlog = "-"
loglevel = env_choice("LOG_LEVEL", "INFO", LOG_LEVELS, upper=True).lower()
wsgi_app = "config.wsgi:application"
# Files (WhiteNoise's static files) go out through the same timed sends as every answer: with
# sendfile, a send that timed out waits for the client again without a limit, so a client that
# read nothing held a thread for ever. gunicorn reads any value here as "no sendfile".
sendfile = False
# Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections over
# them. With one shared socket, whichever worker wins the accept race takes a burst of
# connections: measured, 16 kept-alive connections all landed on one of two workers in some
# runs, halving throughput (docs/operations.md). GUNICORN_REUSE_PORT=0 restores the shared one.
reuse_port = env_bool("GUNICORN_REUSE_PORT", True)
# With it 1 (Linux 5.14+), the connections still queued, or half-open, on a socket that closes
# move to another socket of its SO_REUSEPORT group instead of being reset (docs/operations.md).
_tcp_migrate_req = Path("/proc/sys/net/ipv4/tcp_migrate_req")
# Peers gunicorn lets set the request's scheme (`X-Forwarded-Proto`): with no trusted proxies
# (TRUSTED_PROXY_COUNT, which also governs `X-Forwarded-For`) none, so a client cannot claim
# https; with some, the loopback proxy by default.
forwarded_allow_ips = env_forwarded_allow_ips(
    "FORWARDED_ALLOW_IPS",
    "127.0.0.1,::1" if env_int("TRUSTED_PROXY_COUNT", 0, minimum=0) > 0 else "",
)
# gunicornc's control socket and the metric files are this checkout's and this port's, so
# several servers on one machine (tests, benchmarks, a second checkout or a second port of this
# one) never fight over gunicorn's per-user default path, nor empty each other's metrics.
control_socket = str(_var / f"gunicorn-{_port}.ctl")
# Each worker touches its heartbeat file on every turn of its event loop (per request): on a
# disk-backed /tmp that is a journaled metadata write; on tmpfs it is a memory operation.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

_metrics_dir = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "prometheus" / str(_port)))
)


def on_starting(server: Any) -> None:
    """Refuse a taken port before anything else, so a start that fails never empties a running
    server's metrics; then start with an empty metrics directory (stale files would be summed).
    A master that inherits its listening sockets (systemd, gunicorn's USR2 upgrade) finds its
    port taken by design and skips the check."""
    if not {"LISTEN_FDS", "GUNICORN_FD"} & os.environ.keys():
        ensure_port_free(bind)
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def post_worker_init(worker: Any) -> None:
    """Each worker loads its route table at once and keeps it current (apps/gateway)."""
    from apps.gateway.entrypoint import GatewayApplication

    GatewayApplication.keep_routes_current()


def when_ready(server: Any) -> None:
    """Say where the server listens: with `reuse_port` the workers bind, and gunicorn's own
    "Listening at:" line (the master's sockets) comes out empty. Warn when a reload would
    reset connections that the kernel could move to a new worker, and when WEB_CONCURRENCY is
    set but ignored."""
    if not _shared_state and os.environ.get("WEB_CONCURRENCY", "1").strip() != "1":
        server.log.warning(
            "WEB_CONCURRENCY is ignored without REDIS_URL: one worker process runs, so that"
            " every request shares its in-process state"
        )
    if reuse_port:
        server.log.info("Listening at: http://%s (each worker binds it, SO_REUSEPORT)", bind)
        if _read(_tcp_migrate_req) == "0":
            server.log.warning(
                "net.ipv4.tcp_migrate_req is 0: on a reload, connections still in their handshake"
                " when an old worker closes its socket are reset; set it to 1"
                " (docs/operations.md)"
            )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:  # not Linux, or a kernel before 5.14
        return None


def ensure_port_free(address: str) -> None:
    """Fail the start when something already listens on `address`.

    With SO_REUSEPORT a second server of the same user would silently join the first one's
    socket group and share its traffic; a plain bind, without the option, still fails on it.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - the address gunicorn is about to bind
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict
        try:
            probe.bind((host, int(port)))
        except OSError as error:
            # A name that does not resolve, or an address of no interface here, is HOST's.
            host_fault = isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL
            variable = "HOST" if host_fault else "PORT"
            raise SystemExit(
                f"cannot listen on {address} ({variable}): {error.strerror}"
            ) from error


# Ended workers whose metric files are not archived yet (a scrape held the directory, a write
# failed): tried again as the next worker ends. Their files stay and are read meanwhile. A pid
# the system has given to a new worker since is dropped: its files are that worker's now.
_unarchived: set[int] = set()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the aggregated metrics, and fold its counts into
    the directory's archive files (apps/common/metric_files.py): the totals stay, the files
    of ended workers go, so a scrape reads a bounded number of them however many workers
    were recycled. on_starting empties the directory, archives included."""
    from prometheus_client import multiprocess

    from apps.common.metric_files import archive_ended_processes

    def set_aside(path: Any, error: Exception) -> None:
        server.log.warning("unreadable metrics file %s set aside (%s)", path, error)

    # Nothing here may end the master: an exception out of a hook stops its main loop, and
    # with it every worker.
    try:
        multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))
        # The master's live workers (the ended one is out already): no hook of the master's
        # sees a new worker's pid, so a reused one is found here, before its files are folded.
        _unarchived.difference_update(getattr(server, "WORKERS", {}))
        _unarchived.add(worker.pid)
        failed = archive_ended_processes(_metrics_dir, sorted(_unarchived), set_aside=set_aside)
    except Exception:
        server.log.exception("metrics of ended worker %s not archived", worker.pid)
        return
    for pid, error in failed.items():
        server.log.warning(
            "metrics of ended worker %s not archived yet (%s): retried as the next one ends",
            pid,
            error,
        )
    _unarchived.intersection_update(failed)
