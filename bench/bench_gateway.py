"""Gateway benchmark: the proxy's cost in front of a realistic upstream, measured with wrk.

Starts PostgreSQL-backed servers on free loopback ports: an upstream (DRF endpoint, one
PostgreSQL read, ~1 KB JSON, gunicorn) and the platform (gunicorn, config/gunicorn.py, Redis),
then measures, interleaved in rounds, and prints ratios against baselines from the same run:

  1. throughput through the gateway (auth + rate limit on) vs the upstream called directly
     (goal >= 0.5x), and the added p50 latency at concurrency 1 (goal <= 1.0 ms);
  2. cache HIT vs MISS throughput (goal >= 2.5x), MISS = a new query string per request;
  3. open-circuit 503 vs a gateway-local answer (404 route_not_found) (goal >= 0.9x), in
     three short alternating pairs per round;
  4. one rate-limit check vs a bare Redis INCR, same connection, in-process (goal <= 1.6x),
     on an admitted call (the usual case, and the script's longer path); a refused call, the
     whole edge call (revocation facts, window, circuit fields) and Redis's own time per call
     are printed for reference.

Each ratio is the median of the per-round ratios (each pair runs back to back); the c=1
latency is measured in short alternating pairs. For every c=16 run it also prints the CPU time
each side spent per request (gateway and upstream process trees, redis-server, PostgreSQL,
wrk), read from /proc: that stays comparable when the machine's speed drifts, and it shows
where a ratio comes from (on one 2-core machine the gateway and the upstream share the cores).
Both gunicorns use SO_REUSEPORT, so wrk's connections spread evenly over the workers.

Usage: python bench/bench_gateway.py [--seconds 8] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("PG_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PREFIX = "bench_gateway"
SECRET = "bench-only-jwt-signing-key-0123456789abcdef0123456789abcdef"  # noqa: S105


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_TICK = os.sysconf("SC_CLK_TCK")
# CPU per request, by side: what each answer costs the machine, whatever the scheduling did.
_SIDES = ("gateway", "upstream", "redis", "postgres", "wrk")


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU seconds used) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds used by each side of the benchmark: gateway and upstream process trees,
    redis-server, every postgres process, and wrk (this process's waited-for children)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self._roots = roots

    def snapshot(self) -> dict[int, tuple[str, float]]:
        """Each process's side and CPU seconds so far; wrk's under the pseudo-pid 0."""
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                stats[int(entry.name)] = stat
        owner = {pid: side for side, pid in self._roots.items()}
        sides: dict[int, tuple[str, float]] = {}
        for pid, (parent, name, seconds) in stats.items():
            side = owner.get(pid) or owner.get(parent)
            if side is None and name in {"redis-server", "postgres"}:
                side = "redis" if name == "redis-server" else "postgres"
            if side is not None:
                sides[pid] = (side, seconds)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sides[0] = ("wrk", children.ru_utime + children.ru_stime)
        return sides

    @staticmethod
    def used(
        before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> dict[str, float]:
        """CPU seconds per side between two snapshots (a process that ended in between is
        left out; one that started is counted whole)."""
        used = dict.fromkeys(_SIDES, 0.0)
        for pid, (side, seconds) in after.items():
            used[side] += seconds - before.get(pid, (side, 0.0))[1]
        return used


def prepare_databases() -> None:
    import psycopg
    from psycopg import sql

    names = [f"{PREFIX}_{n}" for n in ("accounts", "gateway", "aggregation", "upstream")]
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(f"{PG}/{PREFIX}_upstream", autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_item (id int PRIMARY KEY, name text, payload jsonb)")
        payload = {f"attribute_{i:02d}": f"value {i} " + "x" * 12 for i in range(32)}
        conn.execute("INSERT INTO bench_item VALUES (1, 'widget', %s)", [json.dumps(payload)])


def platform_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_SECRET_KEY": "bench-only-secret",
            "JWT_SIGNING_KEY": SECRET,
            "ACCOUNTS_DATABASE_URL": f"{PG}/{PREFIX}_accounts",
            "GATEWAY_DATABASE_URL": f"{PG}/{PREFIX}_gateway",
            "AGGREGATION_DATABASE_URL": f"{PG}/{PREFIX}_aggregation",
            "REDIS_URL": REDIS,
            "CACHE_KEY_PREFIX": "bench-gw",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WEB_CONCURRENCY": os.environ.get("BENCH_GATEWAY_WORKERS", "2"),
            "GUNICORN_THREADS": os.environ.get("BENCH_GATEWAY_THREADS", "8"),
            "VAR_DIR": str(ROOT / "var" / "bench-gateway"),
            "LOG_LEVEL": "INFO",
        }
    )
    return env


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()  # noqa: S310 - loopback only
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


# Every request gets a query string never sent before (a fresh run id per wrk run): a cache MISS
# on a cached route each time, which then fills the cache like any miss does.
_UNIQUE_QUERY = """
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?miss=%s-" .. n)
end
"""


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    token: str | None = None,
    unique_queries: bool = False,
) -> tuple[float, float, int]:
    """(requests/s, p50 ms, requests) from wrk; non-2xx answers are expected in some runs."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if unique_queries:
            script.write(_UNIQUE_QUERY % uuid.uuid4().hex)
            script.flush()
            command += ["-s", script.name]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50_raw = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert p50_raw, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50_raw.group(2)]
    done = re.search(r"(\d+) requests in", out)
    assert done, out
    return rps, float(p50_raw.group(1)) * scale, int(done.group(1))


def setup_platform(env: dict[str, str], upstream: str) -> str:
    """Migrate, add the benchmark routes, trip the open circuit; return an access token."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate_all"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    os.environ.update({k: v for k, v in env.items() if k not in {"PROMETHEUS_MULTIPROC_DIR"}})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.cache import cache
    from rest_framework_simplejwt.tokens import AccessToken

    from apps.gateway import wiring
    from core.domain.gateway.route import AuthMode, BreakerPolicy, LimitKey, RateLimitPolicy, Route

    cache.clear()
    limit = RateLimitPolicy(requests=10_000_000, window_seconds=10, key=LimitKey.USER)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for route in (
        Route("bench", "/bench", upstream + "/item", auth=AuthMode.REQUIRED, rate_limit=limit),
        Route(
            "bench-cached",
            "/cached",
            upstream + "/item",
            auth=AuthMode.REQUIRED,
            rate_limit=limit,
            cache_ttl_seconds=300,
        ),
        Route(
            "bench-open",
            "/open",
            refused,
            circuit_breaker=BreakerPolicy(failure_threshold=1, recovery_seconds=3600),
        ),
    ):
        assert wiring.create_route().execute(route).is_ok()
    token = AccessToken()
    token["sub"] = str(uuid.uuid4())  # as the accounts issue them: a user id, a session
    token["sid"] = str(uuid.uuid4())
    token["roles"] = ["user"]
    return str(token)


def rate_limit_cost(samples: int = 20_000) -> dict[str, float]:
    """Microseconds per limiter check (admitted, and refused), per whole edge call and per bare
    INCR, on the same kind of connection, interleaved (medians of five slices); and Redis's own
    time per command (`INFO commandstats`, before and after, so nothing is reset)."""
    from datetime import UTC, datetime, timedelta

    from apps.gateway.limiter import CircuitHints, RedisSlidingWindowLimiter
    from apps.gateway.redis_support import key_prefix, raw_redis
    from core.domain.gateway.route import LimitKey, RateLimitPolicy
    from core.domain.shared.identity import Principal

    client = raw_redis()
    limiter = RedisSlidingWindowLimiter(client, key_prefix(), circuits=CircuitHints())
    # Most checks in real traffic are admitted (the window script's longer path: it adds the
    # call and sets the expiry); a limit of 100 per second refuses nearly every call of a loop.
    roomy = RateLimitPolicy(requests=10_000_000, window_seconds=60, key=LimitKey.USER)
    tight = RateLimitPolicy(requests=100, window_seconds=1, key=LimitKey.USER)
    issued = datetime.now(UTC)
    user = Principal("u1", frozenset({"user"}), "jti-1", issued, issued + timedelta(minutes=30))
    calls = {
        # RateLimiter.hit: the sliding-window script alone.
        "check": lambda: limiter.hit("bench:user:u1", roomy, time.time()),
        "check_refused": lambda: limiter.hit("bench:user:u3", tight, time.time()),
        # What the proxy sends per request: revocation facts, window, circuit fields.
        "edge": lambda: limiter.check("bench", user, "bench:user:u2", roomy, time.time()),
        "incr": lambda: limiter.incr("bench-gw:incr"),
    }
    slices: dict[str, list[float]] = {name: [] for name in calls}
    server: dict[str, float] = {}
    per_slice = samples // 5
    for name, call in calls.items():
        before = client.info("commandstats")
        for _ in range(per_slice):
            call()
        after = client.info("commandstats")
        command = "cmdstat_incr" if name == "incr" else "cmdstat_evalsha"
        calls_done = after[command]["calls"] - before.get(command, {"calls": 0})["calls"]
        usec = after[command]["usec"] - before.get(command, {"usec": 0})["usec"]
        server[f"{name}_server"] = usec / max(calls_done, 1)
    for _ in range(5):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(per_slice):
                call()
            slices[name].append((time.perf_counter() - started) / per_slice * 1e6)
    return {name: statistics.median(values) for name, values in slices.items()} | server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_gateway needs wrk on PATH: apt-get install -y wrk")

    prepare_databases()
    up_port, gw_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    gateway = f"http://127.0.0.1:{gw_port}"
    env = platform_env(gw_port)
    up_env = dict(os.environ, BENCH_UPSTREAM_DB=f"{PREFIX}_upstream")
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--pythonpath",
                str(ROOT / "bench" / "gateway"),
                "--reuse-port",
                "-k",
                "gthread",
                "-w",
                os.environ.get("BENCH_UPSTREAM_WORKERS", "2"),
                "--threads",
                "4",
                "--keep-alive",
                "75",
                "-b",
                f"127.0.0.1:{up_port}",
                "upstream_app:application",
            ],
            env=up_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        token = setup_platform(env, upstream)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_http(upstream + "/item")
        wait_http(gateway + "/health")
        # One 502 trips the open-circuit route's breaker (threshold 1).
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(gateway + "/open", timeout=5)  # noqa: S310 - loopback
        for url in (upstream + "/item", gateway + "/bench", gateway + "/cached"):
            wrk(url, seconds=2, connections=4, token=token)  # warm pools, caches, JIT-free paths
        meter = CpuMeter({"upstream": processes[0].pid, "gateway": processes[1].pid})
        run(args, upstream, gateway, token, meter)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def run(args: argparse.Namespace, upstream: str, gateway: str, token: str, meter: CpuMeter) -> None:
    seconds, conns = args.seconds, args.connections
    results: dict[str, list[float]] = {}
    cpu: dict[str, dict[str, list[float]]] = {}

    def measure(name: str, url: str, c: int, duration: int, **options: object) -> None:
        before = meter.snapshot()
        rps, p50, requests = wrk(url, seconds=duration, connections=c, **options)  # type: ignore[arg-type]
        used = meter.used(before, meter.snapshot())
        if c == 1:
            results.setdefault(f"{name}_p50", []).append(p50)
            return
        results.setdefault(f"{name}_rps", []).append(rps)
        per_side = cpu.setdefault(name, {})
        for side in _SIDES:
            used_us = used[side] / max(requests, 1) * 1e6
            per_side.setdefault(side, []).append(used_us)

    for _ in range(args.rounds):
        measure("direct", upstream + "/item", conns, seconds)
        measure("gateway", gateway + "/bench", conns, seconds, token=token)
        for _ in range(3):  # short alternating pairs: the machine's drift hits both alike
            measure("direct", upstream + "/item", 1, max(seconds // 4, 1))
            measure("gateway", gateway + "/bench", 1, max(seconds // 4, 1), token=token)
        measure("hit", gateway + "/cached", conns, seconds, token=token)
        # A MISS every time: the cached route with a new query string per request (lookup, fill
        # lock, upstream call, store).
        measure("miss", gateway + "/cached", conns, seconds, token=token, unique_queries=True)
        # Both answer in ~0.2 ms, and a whole run of either settles in one of two speeds
        # (~5 500 or ~7 400 req/s here, whichever the code) as the scheduler places wrk and the
        # workers on the two cores: three short alternating pairs per round, so the median of
        # nine pairs, not one run's luck, makes the ratio.
        for _ in range(3):
            measure("open", gateway + "/open", conns, max(seconds // 3, 1))
            measure("local", gateway + "/no-such-route", conns, max(seconds // 3, 1))
    redis_us = rate_limit_cost()
    med = {name: statistics.median(values) for name, values in results.items()}
    cpu_med = {
        name: {side: statistics.median(values) for side, values in sides.items()}
        for name, sides in cpu.items()
    }

    def paired(over: str, under: str, *, difference: bool = False) -> float:
        """Median over rounds of each round's own ratio (or difference): each pair was
        measured back to back, so it shares the machine's state at that moment."""
        pairs = zip(results[over], results[under], strict=True)
        return statistics.median(a - b if difference else a / b for a, b in pairs)

    figures = {
        "throughput_ratio": paired("gateway_rps", "direct_rps"),
        "added_p50_ms": paired("gateway_p50", "direct_p50", difference=True),
        "cache_hit_vs_miss": paired("hit_rps", "miss_rps"),
        "cache_hit_vs_uncached": paired("hit_rps", "gateway_rps"),
        "open_vs_local": paired("open_rps", "local_rps"),
        "ratelimit_vs_incr": redis_us["check"] / redis_us["incr"],
        "refused_vs_incr": redis_us["check_refused"] / redis_us["incr"],
        "edge_vs_incr": redis_us["edge"] / redis_us["incr"],
    }
    print(
        json.dumps(
            {
                "rounds": results,
                "medians": med,
                "cpu_us_per_request": cpu_med,
                "redis_call_us": redis_us,
            },
        )
    )
    print("CPU µs per request (median)  " + "".join(f"{side:>10}" for side in _SIDES))
    for name, sides in cpu_med.items():
        print(f"  {name:<27}" + "".join(f"{sides[side]:>10.0f}" for side in _SIDES))
    print(f"throughput via gateway / direct : {figures['throughput_ratio']:.2f}x (goal >= 0.5)")
    print(f"added p50 latency at c=1        : {figures['added_p50_ms']:+.2f} ms (goal <= 1.0)")
    print(f"cache HIT / MISS throughput     : {figures['cache_hit_vs_miss']:.2f}x (goal >= 2.5)")
    print(
        f"cache HIT / uncached route      : {figures['cache_hit_vs_uncached']:.2f}x (for reference)"
    )
    print(f"open circuit / local answer     : {figures['open_vs_local']:.2f}x (goal >= 0.9)")
    print(f"rate-limit check / Redis INCR   : {figures['ratelimit_vs_incr']:.2f}x (goal <= 1.6)")
    print(f"  the same, refused calls       : {figures['refused_vs_incr']:.2f}x (for reference)")
    print(f"whole edge call / Redis INCR    : {figures['edge_vs_incr']:.2f}x (for reference)")
    print(
        "Redis server time per call (µs) : window script {check_server:.1f} admitted, "
        "{check_refused_server:.1f} refused; edge call {edge_server:.1f}; INCR "
        "{incr_server:.1f}".format(**redis_us)
    )


if __name__ == "__main__":
    main()
