"""Accounts benchmark: a real gunicorn server on PostgreSQL and Redis, bcrypt at cost 12.

Prints, each against a baseline measured in the same run on the same two cores:
  1. logins/s through the HTTP API  vs  raw bcrypt-12 verifies/s      (goal >= 0.90)
  2. time of an unknown-email login  vs  a valid login                  (goal 0.9-1.1)
  3. SQL statements per refresh (from the server's own query counter)   (goal <= 6)
  4. authenticated GET /api/v1/auth/me req/s  vs  GET /health req/s

It creates its own databases (bench_accounts_*), starts its own redis-server on a free port,
and removes both afterwards. Logins are driven by a closed loop of threads timed like the
baseline processes, interleaved with them in slices (the machine may be busy with other work);
`wrk` drives /me and /health when installed, else the same threads.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PG = os.environ.get("TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DB_PREFIX = "bench_accounts"
ALIASES = ("accounts", "gateway", "aggregation")
PASSWORD = "bench-password-long-enough-1"  # noqa: S105 (benchmark users only)
USERS = 40
DURATION = float(os.environ.get("BENCH_SECONDS", "10"))
SLICE = DURATION
ROUNDS = 6
LOGIN_CONCURRENCY = 4  # requests in flight, and baseline processes: 2 per core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def recreate_databases() -> None:
    for alias in ALIASES:
        psql(f"DROP DATABASE IF EXISTS {DB_PREFIX}_{alias} WITH (FORCE)")
        psql(f"CREATE DATABASE {DB_PREFIX}_{alias}")


def drop_databases() -> None:
    for alias in ALIASES:
        with contextlib.suppress(subprocess.CalledProcessError):
            psql(f"DROP DATABASE IF EXISTS {DB_PREFIX}_{alias} WITH (FORCE)")


class Server:
    """redis-server + gunicorn (production settings, 2 workers) on free ports."""

    def __init__(self, var_dir: Path) -> None:
        self.redis_port, self.port = free_port(), free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "RATELIMIT_ENABLE": "false",  # the benchmark is one client IP hammering login
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "VAR_DIR": str(var_dir),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "8",
            "LOG_LEVEL": "WARNING",
            "OTEL_TRACES_EXPORTER": "none",
        }
        for alias in ALIASES:
            self.env[f"{alias.upper()}_DATABASE_URL"] = f"{PG}/{DB_PREFIX}_{alias}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = var_dir / "gunicorn.log"  # gunicorn's own errors (e.g. a port taken meanwhile)

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        )
        return done.stdout.decode()

    def start(self) -> None:
        self.processes.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        self.manage("migrate_all", "--verbosity", "0")
        self.manage("shell", "-c", SEED_USERS)
        self.processes.append(
            subprocess.Popen(
                [str(Path(PY).parent / "gunicorn"), "--config", "config/gunicorn.py"],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=self.log.open("wb"),
            )
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.processes[-1].poll() is None:
            with contextlib.suppress(OSError):
                if request(self.port, "GET", "/health")[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not come up:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)


SEED_USERS = textwrap.dedent(
    f"""
    from django.contrib.auth.hashers import make_password
    from apps.accounts.models import User
    hashed = make_password({PASSWORD!r})
    User.objects.bulk_create(
        User(email=f"bench{{i}}@example.com", password=hashed, email_verified=True,
             roles=["user"]) for i in range({USERS})
    )
    """
)


def request(port: int, method: str, path: str, body=None, token=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, json.loads(data) if data else None


# --- baselines ------------------------------------------------------------------------------


_BASELINE_HASH: bytes = b""


def _bcrypt_worker(seconds: float, start: multiprocessing.Barrier, out: multiprocessing.Queue):
    import bcrypt

    start.wait()  # every process is up: only verification work is timed from here
    done, began = 0, time.perf_counter()
    end = began + seconds
    while time.perf_counter() < end:
        bcrypt.checkpw(b"0" * 64, _BASELINE_HASH)
        done += 1
    out.put((done, time.perf_counter() - began))


def raw_bcrypt_per_second(seconds: float, cores: int) -> float:
    """bcrypt-12 verifies/s with `cores` processes: the ceiling for password logins.

    Use as many processes as the login run keeps requests in flight, so both hold the same
    number of runnable threads and get the same share of a machine busy with other work. The
    hash is made once, before any timing; each process times its own loop.
    """
    global _BASELINE_HASH
    if not _BASELINE_HASH:
        import bcrypt

        _BASELINE_HASH = bcrypt.hashpw(b"0" * 64, bcrypt.gensalt(12))
    context = multiprocessing.get_context("fork")
    queue, barrier = context.Queue(), context.Barrier(cores)
    workers = [
        context.Process(target=_bcrypt_worker, args=(seconds, barrier, queue)) for _ in range(cores)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(done / elapsed for done, elapsed in results)


# --- load generation ------------------------------------------------------------------------


def wrk(
    port: int,
    path: str,
    *,
    seconds: float,
    connections: int,
    script: str | None = None,
    token: str | None = None,
) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or "")
    args = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", lua.name]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(
        [*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
    ).stdout
    os.unlink(lua.name)
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors on {path}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def threads_rate(
    port: int,
    method: str,
    path: str,
    *,
    seconds: float,
    connections: int,
    body_for=None,
    token: str | None = None,
) -> float:
    """Threads with keep-alive connections (also wrk's stand-in when it is missing).

    Each thread times its own loop (like each baseline process): no request starts after the
    deadline, and a thread's clock stops when its last request is answered.
    """
    results = [(0, 1.0)] * connections
    end = time.perf_counter() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done, began = 0, time.perf_counter()
        while time.perf_counter() < end:
            status, _ = request(port, method, path, body_for(i) if body_for else None, token, conn)
            assert status == 200, status
            done += 1
        results[i] = (done, time.perf_counter() - began)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done / elapsed for done, elapsed in results)


def rate(port, method, path, *, seconds, connections, body=None, token=None) -> float:
    if shutil.which("wrk"):
        script = None
        if body is not None:
            script = (
                f'wrk.method = "{method}"\n'
                f"wrk.body = '{json.dumps(body)}'\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
        return wrk(port, path, seconds=seconds, connections=connections, script=script, token=token)
    return threads_rate(
        port,
        method,
        path,
        seconds=seconds,
        connections=connections,
        body_for=(lambda i: body) if body is not None else None,
        token=token,
    )


# --- the measurements -----------------------------------------------------------------------


def login_latencies(port: int, rounds: int) -> tuple[float, float]:
    """Median seconds of a valid login and of an unknown-email login, interleaved."""
    valid, unknown = [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(rounds):
        for email, bucket in (
            (f"bench{i % USERS}@example.com", valid),
            (f"nobody{i}@example.com", unknown),
        ):
            started = time.perf_counter()
            status, _ = request(
                port,
                "POST",
                "/api/v1/auth/login",
                {"email": email, "password": PASSWORD},
                conn=conn,
            )
            bucket.append(time.perf_counter() - started)
            assert status == (200 if bucket is valid else 401), status
    return statistics.median(valid), statistics.median(unknown)


def db_statements(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    total = 0.0
    for line in text.splitlines():
        if re.match(r"^\w*django_db_execute(_many)?_total\{", line) and 'alias="default"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def statements_per_refresh(port: int, rounds: int) -> float:
    _, pair = request(
        port, "POST", "/api/v1/auth/login", {"email": "bench0@example.com", "password": PASSWORD}
    )
    token = pair["refresh_token"]
    before = db_statements(port)
    for _ in range(rounds):
        status, pair = request(port, "POST", "/api/v1/auth/refresh", {"refresh_token": token})
        assert status == 200, pair
        token = pair["refresh_token"]
    return (db_statements(port) - before) / rounds


def main() -> int:
    var_dir = Path(tempfile.mkdtemp(prefix="bench-accounts-"))
    recreate_databases()
    server = Server(var_dir)
    try:
        server.start()
        port = server.port
        print(f"server up on :{port} (2 gunicorn workers x 8 threads, bcrypt cost 12)")

        # The box is shared with other work: interleave short baseline and login slices so
        # both see the same background load, and compare the sums.
        pairs = []
        for _ in range(ROUNDS):
            raw = raw_bcrypt_per_second(SLICE, cores=LOGIN_CONCURRENCY)
            # Closed loop timed like the baseline (wrk would drop the requests in flight).
            logins = threads_rate(
                port,
                "POST",
                "/api/v1/auth/login",
                seconds=SLICE,
                connections=LOGIN_CONCURRENCY,
                body_for=lambda i: {"email": f"bench{i}@example.com", "password": PASSWORD},
            )
            pairs.append((logins / raw, logins, raw))
        logins = statistics.fmean(p[1] for p in pairs)
        raw = statistics.fmean(p[2] for p in pairs)
        valid, unknown = login_latencies(port, rounds=20)
        per_refresh = statements_per_refresh(port, rounds=50)
        _, pair = request(
            port,
            "POST",
            "/api/v1/auth/login",
            {"email": "bench2@example.com", "password": PASSWORD},
        )
        health = rate(port, "GET", "/health", seconds=DURATION, connections=16)
        me = rate(
            port,
            "GET",
            "/api/v1/auth/me",
            seconds=DURATION,
            connections=16,
            token=pair["access_token"],
        )
    except Exception:
        if server.log.exists():
            print(f"gunicorn log:\n{server.log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        server.stop()
        drop_databases()
        shutil.rmtree(var_dir, ignore_errors=True)

    print(f"\naccounts benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(
        f"  logins/s via HTTP          {logins:8.1f}   raw bcrypt-12 verifies/s {raw:8.1f}"
        f"   ratio {logins / raw:.2f}  (goal >= 0.90)"
    )
    rounds = ", ".join(f"{ratio:.2f}" for ratio, _, _ in pairs)
    print(f"    (ratio of each interleaved {SLICE:.0f} s slice pair: {rounds})")
    print(
        f"  unknown-email login        {unknown * 1000:8.1f} ms  valid login {valid * 1000:8.1f} ms"
        f"   ratio {unknown / valid:.2f}  (goal 0.9-1.1)"
    )
    print(f"  SQL statements per refresh {per_refresh:8.2f}   (goal <= 6)")
    print(
        f"  GET /me req/s              {me:8.1f}   GET /health req/s {health:8.1f}"
        f"   ratio {me / health:.2f}"
    )
    ok = logins / raw >= 0.9 and 0.9 <= unknown / valid <= 1.1 and per_refresh <= 6
    print("  goals:", "met" if ok else "NOT all met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
