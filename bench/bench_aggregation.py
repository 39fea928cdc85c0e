"""Benchmark of composite runs: fan-out latency against the slowest source and a sequential
baseline, and a hanging source cut at its timeout.

Starts, on free loopback ports: an upstream process (JSON answers after 20, 50, 100 ms, and one
that hangs) and gunicorn serving the platform on PostgreSQL (databases bench_aggregation_*) and
Redis. One keep-alive client measures the scenarios round-robin (latency, not throughput),
then 8 concurrent clients repeat the fan-out. Every figure is compared with a baseline measured
in the same run. Also compares the chosen fan-out (thread pool + shared client) with an event
loop per run, in-process. Usage: python bench/bench_aggregation.py [--iterations N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

PG_URL = os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PREFIX = "bench_aggregation"
DELAYS = (20, 50, 100)
HANG_TIMEOUT_MS = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 99)


def recreate_databases() -> dict[str, str]:
    urls = {}
    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        for context in ("accounts", "gateway", "aggregation"):
            name = f"{PREFIX}_{context}"
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            urls[f"{context.upper()}_DATABASE_URL"] = f"{PG_URL}/{name}"
    return urls


def server_environment(port: int, var_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(recreate_databases())
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        VAR_DIR=var_dir,
        HOST="127.0.0.1",
        PORT=str(port),
        REDIS_URL=REDIS_URL,
        CACHE_KEY_PREFIX=PREFIX,
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="8",
        RATELIMIT_ENABLE="false",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),  # as measured for the README
    )
    return env


def start_upstream() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "aggregation" / "upstream_server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate_all", "-v", "0"], cwd=ROOT, env=env, check=True)
    log = log_path.open("w")
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "--config", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn did not start; see {log_path}")


def admin_token(env: dict[str, str]) -> str:
    """An admin access token signed with the server's key (same settings, same secrets)."""
    os.environ.update({k: v for k, v in env.items() if k not in os.environ or k == "PORT"})
    os.environ.update(env)
    import django

    django.setup()
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["sub"] = str(uuid.uuid4())  # as the accounts issue them: a user id, a session
    token["sid"] = str(uuid.uuid4())
    token["roles"] = ["user", "admin"]
    return str(token)


def define(http: httpx.Client, base: str, headers: dict[str, str], upstream: str) -> None:
    def source(key: str, path: str, **options: object) -> dict[str, object]:
        return {"key": key, "url": f"{upstream}{path}", "timeout_ms": 1000, **options}

    composites = [
        {
            "name": "fanout",
            "auth": "none",
            "timeout_ms": 1000,
            "sources": [source(f"d{d}", f"/json?delay_ms={d}&name=d{d}") for d in DELAYS],
        },
        {
            "name": "hanging",
            "auth": "none",
            "timeout_ms": 1000,
            "sources": [
                *(source(f"d{d}", f"/json?delay_ms={d}") for d in DELAYS[:2]),
                source("stuck", "/hang?ms=1000", required=False, timeout_ms=HANG_TIMEOUT_MS),
            ],
        },
    ]
    for composite in composites:
        response = http.post(
            f"{base}/api/v1/aggregation/composites", json=composite, headers=headers
        )
        response.raise_for_status()


def timed(http: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = http.get(url)
    return (time.perf_counter() - started) * 1000, response


def interleaved(
    http: httpx.Client, scenarios: dict[str, list[str]], iterations: int
) -> dict[str, list[float]]:
    """Round-robin over the scenarios (each one or more URLs called one after another), so a
    burst of noise on this shared 2-core box hits baselines and composites alike."""
    for urls in scenarios.values():
        for _ in range(10):
            for url in urls:
                http.get(url).raise_for_status()
    values: dict[str, list[float]] = {name: [] for name in scenarios}
    for _ in range(iterations):
        for name, urls in scenarios.items():
            started = time.perf_counter()
            for url in urls:
                http.get(url).raise_for_status()
            values[name].append((time.perf_counter() - started) * 1000)
    return values


def concurrent(url: str, clients: int, per_client: int) -> list[float]:
    values: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            http.get(url)
            mine = [timed(http, url)[0] for _ in range(per_client)]
        with lock:
            values.extend(mine)

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return values


def fanout_strategies(upstream: str, iterations: int) -> dict[str, tuple[float, float]]:
    """Overhead (ms above the slowest source) of the two fan-out designs, in-process."""
    from apps.aggregation.fetching import HttpxSourceFetcher
    from bench.aggregation.asyncio_fetcher import AsyncioPerRunFetcher
    from core.usecases.aggregation.ports import SourceRequest

    requests = [
        SourceRequest(f"d{d}", "GET", f"{upstream}/json?delay_ms={d}", 1000) for d in DELAYS
    ]
    with httpx.Client() as client, ThreadPoolExecutor(16) as pool:
        strategies = {
            "thread pool + shared httpx.Client": HttpxSourceFetcher(
                client, pool, max_body_bytes=1 << 20
            ),
            "event loop + AsyncClient per run": AsyncioPerRunFetcher(),
        }
        for fetcher in strategies.values():
            for _ in range(10):
                fetcher.fetch_all(requests)
        values: dict[str, list[float]] = {name: [] for name in strategies}
        for _ in range(iterations):  # interleaved, like the HTTP scenarios
            for name, fetcher in strategies.items():
                started = time.perf_counter()
                fetcher.fetch_all(requests)
                values[name].append((time.perf_counter() - started) * 1000 - max(DELAYS))
        return {name: summary(samples) for name, samples in values.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    n = args.iterations

    upstream_process, upstream_port = start_upstream()
    upstream = f"http://127.0.0.1:{upstream_port}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-aggregation-") as var_dir:
        env = server_environment(port, var_dir)
        server = start_server(env, port, Path(var_dir) / "server.log")
        try:
            headers = {"Authorization": f"Bearer {admin_token(env)}"}
            with httpx.Client(timeout=10) as http:
                define(http, base, headers, upstream)
                scenarios = {
                    "health": [f"{base}/health"],
                    "slowest": [f"{upstream}/json?delay_ms={max(DELAYS)}"],
                    "sequential": [f"{upstream}/json?delay_ms={d}" for d in DELAYS],
                    "fanout": [f"{base}/api/v1/aggregation/composites/fanout/run"],
                    "hanging": [f"{base}/api/v1/aggregation/composites/hanging/run"],
                }
                timings = interleaved(http, scenarios, n)
                health, slowest, seq = timings["health"], timings["slowest"], timings["sequential"]
                fan, hang = timings["fanout"], timings["hanging"]
                _, answer = timed(http, f"{base}/api/v1/aggregation/composites/hanging/run")
                partial = answer.json()["meta"]["partial"]
                stuck = answer.json()["errors"]["stuck"]["code"]
            loaded = concurrent(f"{base}/api/v1/aggregation/composites/fanout/run", 8, n // 4)
            strategies = fanout_strategies(upstream, n)
        finally:
            server.terminate()
            server.wait(timeout=20)
            upstream_process.stdin.close()  # type: ignore[union-attr]
            upstream_process.wait(timeout=10)

    p50_health, p99_health = summary(health)
    s50, s99 = summary(slowest)
    q50, q99 = summary(seq)
    f50, f99 = summary(fan)
    h50, h99 = summary(hang)
    l50, l99 = summary(loaded)
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"aggregation benchmark — {dt.date.today()}, {machine}")
    print(f"sources: JSON after {', '.join(map(str, DELAYS))} ms; {n} sequential runs each")
    print(f"{'scenario':<44}{'p50 ms':>9}{'p99 ms':>9}")
    rows = [
        ("platform GET /health (request overhead)", p50_health, p99_health),
        (f"slowest source alone ({max(DELAYS)} ms), direct", s50, s99),
        ("same 3 sources called one after another", q50, q99),
        ("composite of the 3 sources (fan-out)", f50, f99),
        ("composite, 8 concurrent clients", l50, l99),
        (f"composite with a source hanging (timeout {HANG_TIMEOUT_MS} ms)", h50, h99),
    ]
    for label, p50, p99 in rows:
        print(f"{label:<44}{p50:>9.1f}{p99:>9.1f}")
    print(
        f"composite / slowest source: p50 {f50 / s50:.3f}x (goal <= 1.05x + 2 ms: "
        f"{'met' if f50 <= 1.05 * s50 + 2 else 'MISSED'}), p99 {f99 / s99:.3f}x "
        f"(goal <= 1.2x: {'met' if f99 <= 1.2 * s99 else 'MISSED'})"
    )
    paired = [f - d for f, d in zip(fan, slowest, strict=True)]
    o50, o99 = summary(paired)
    print(f"composite minus slowest source, paired per round: p50 {o50:.1f} ms, p99 {o99:.1f} ms")
    print(f"composite / sequential calls: p50 {f50 / q50:.3f}x, p99 {f99 / q99:.3f}x")
    print(f"8 concurrent clients / slowest source: p50 {l50 / s50:.3f}x, p99 {l99 / s99:.3f}x")
    print(
        f"hanging source: p50 {h50:.1f} ms, p99 {h99:.1f} ms vs timeout + 5 = "
        f"{HANG_TIMEOUT_MS + 5} ms ({'met' if h99 <= HANG_TIMEOUT_MS + 5 else 'MISSED'} at p99, "
        f"{'met' if h50 <= HANG_TIMEOUT_MS + 5 else 'MISSED'} at p50); partial={partial}, "
        f"stuck={stuck}"
    )
    print("fan-out design, in-process overhead above the slowest source (p50 / p99 ms):")
    for name, (o50, o99) in strategies.items():
        print(f"  {name:<40}{o50:>7.2f}{o99:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
