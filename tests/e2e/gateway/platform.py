"""A gunicorn platform as deployed (2 worker processes, Redis, PostgreSQL) for the gateway's e2e
tests, and helpers that tell its workers apart by their own metric files."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from django.conf import settings
from django.db import connections
from prometheus_client.mmap_dict import MmapedDict

from tests.e2e.servers import free_port
from tests.factories.relay import TcpRelay
from tests.factories.tokens import access_token

ROOT = Path(__file__).resolve().parents[3]
WORKERS = 2
# Routes refresh every 0.5 s; a loaded 2-core machine can take much longer, so poll up to this.
DEADLINE_SECONDS = 10.0


@contextlib.contextmanager
def gunicorn_platform(
    var_dir: Path, relay: TcpRelay | None = None, workers: int = WORKERS, **extra_env: str
) -> Iterator[SimpleNamespace]:
    """gunicorn as deployed (`config/gunicorn.py`, Redis, the test PostgreSQL databases, or
    PostgreSQL through `relay`): `.url`, `.metrics` (each worker's metric files) and
    `.process` (the master). Stopped on the way out."""
    port = free_port()
    env = dict(os.environ)
    for alias, variable in (
        ("default", "ACCOUNTS_DATABASE_URL"),
        ("gateway", "GATEWAY_DATABASE_URL"),
        ("aggregation", "AGGREGATION_DATABASE_URL"),
    ):
        db = connections[alias].settings_dict
        db_port = relay.port if relay else db["PORT"]
        env[variable] = f"postgresql://{db['USER']}@{db['HOST']}:{db_port}/{db['NAME']}"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "JWT_SIGNING_KEY": settings.SIMPLE_JWT["SIGNING_KEY"],
            "REDIS_URL": settings.REDIS_URL,
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": "4",
            "VAR_DIR": str(var_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "prometheus"),
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra_env)
    if relay:  # a frozen database fails a call within 2 * 2 + 1 s rather than 2 * 5 + 1 s
        env["DATABASE_TIMEOUT_SECONDS"] = "2"
        env["READINESS_TIMEOUT_SECONDS"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
    try:
        yield SimpleNamespace(url=base, metrics=var_dir / "prometheus", process=process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def fresh_get(url, **kwargs):
    # A new connection per call, so both worker processes answer over time.
    return httpx.get(url, headers={"Connection": "close", **kwargs.pop("headers", {})}, timeout=5)


def per_worker(metrics_dir, sample, **labels):
    """`sample` summed over the label sets matching `labels`, by worker pid.

    In prometheus_client's multiprocess mode every worker writes its own files in
    PROMETHEUS_MULTIPROC_DIR, named after its pid (`counter_<pid>.db`, `gauge_liveall_<pid>.db`):
    that tells the workers apart without anything in the answers themselves.
    """
    values = {}
    for path in metrics_dir.glob("*.db"):
        pid = worker_pid(path)
        if pid is None:
            continue
        try:
            entries = MmapedDict.read_all_values_from_file(str(path))
        except FileNotFoundError:  # a worker that ended meanwhile: its files are removed
            continue
        for key, value, *_ in entries:
            _, name, sample_labels, _ = json.loads(key)
            if name == sample and labels.items() <= sample_labels.items():
                values[pid] = values.get(pid, 0) + value
    return values


def worker_pid(path):
    """The pid a metric file is named after; None for an archive (`counter_archive.db`, the
    counts of ended workers, apps/common/metric_files.py)."""
    suffix = path.stem.rsplit("_", 1)[1]
    return None if suffix == "archive" else int(suffix)


def answered_by(platform, path, **kwargs):
    """GET `path` on a new connection: the answer, and the pid of the worker that gave it (the
    one whose request count went up; the gateway counts before it answers)."""
    before = per_worker(platform.metrics, "platform_gateway_requests_total")
    response = fresh_get(platform.url + path, **kwargs)
    after = per_worker(platform.metrics, "platform_gateway_requests_total")
    [pid] = [pid for pid, count in after.items() if count > before.get(pid, 0)]
    return response, pid


def until_every_worker_answers(platform, path, status, *, meanwhile=(), **kwargs):
    """New connections to `path` until each worker has answered `status` at least once.

    SO_REUSEPORT hashes each new connection onto one worker's socket, so a handful of requests
    may all land on the same worker; counting who answered is what proves both did. Answers in
    `meanwhile` (e.g. the old route table, before a worker's refresh) are allowed on the way,
    anything else fails. Gives up after DEADLINE_SECONDS; returns the `status` answers.
    """
    answered, wanted = set(), []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(answered) < WORKERS:
        assert time.monotonic() < deadline, f"only workers {answered} answered {status} on {path}"
        response, pid = answered_by(platform, path, **kwargs)
        if response.status_code == status:
            answered.add(pid)
            wanted.append(response)
        else:
            assert response.status_code in meanwhile, (response.status_code, response.text)
            time.sleep(0.05)  # a worker refreshes its routes every 0.5 s
    return wanted


def until_every_worker_holds(platform, routes):
    """Wait, without proxied requests, until each worker's table has `routes` enabled routes
    (the `platform_gateway_route_table_routes` gauge each worker sets when it reloads)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        tables = per_worker(platform.metrics, "platform_gateway_route_table_routes")
        if len(tables) == WORKERS and set(tables.values()) == {routes}:
            return
        assert time.monotonic() < deadline, f"route tables by worker pid: {tables}"
        time.sleep(0.05)


def admin_headers():
    return {"Authorization": f"Bearer {access_token(roles=('admin',))}"}


def add_route(platform, **route):
    created = httpx.post(
        platform.url + "/api/v1/gateway/routes", json=route, headers=admin_headers()
    )
    assert created.status_code == 201, created.text
