"""Real server processes started the way `make run` starts them, for the e2e tests.

`serve()` runs `migrate_all`, `seed` and gunicorn (`config/gunicorn.py`) in embedded mode — no
database URL, no Redis — with `var/` in a folder of the test's, and stops the server after.
The session's first embedded server runs `migrate_all`; later ones start from a copy of the
databases it left (before `seed`), which is what `migrate_all` would make again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the test process itself carries (config/settings/test.py sets these) must not leak in.
_INHERITED = (
    "ACCOUNTS_DATABASE_URL",
    "GATEWAY_DATABASE_URL",
    "AGGREGATION_DATABASE_URL",
    "REDIS_URL",
    "CACHE_KEY_PREFIX",
    "EMAIL_BACKEND",
    "DJANGO_SECRET_KEY",
    "JWT_SIGNING_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_environment(var_dir: Path, port: int) -> dict[str, str]:
    """The environment of a fresh `make run`: nothing configured but where to put var/."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        VAR_DIR=str(var_dir),
        HOST="127.0.0.1",
        PORT=str(port),
        GUNICORN_THREADS="4",
    )
    return env


# The embedded databases as the session's first `migrate_all` left them (before `seed`):
# every later server starts from a copy. Migrating took ~3 s of each of some twenty starts.
_MIGRATED: dict[str, Path] = {}


def _own_databases(extra_env: dict[str, str]) -> bool:
    """Whether the server is given databases of its own (PostgreSQL) rather than embedded ones."""
    return any(name.endswith("_DATABASE_URL") for name in extra_env)


def _migrated_databases() -> Path | None:
    return _MIGRATED.get("db")


def _remember_migrated(db_dir: Path) -> None:
    """Keep a copy of a just-migrated, not yet seeded, database folder for later servers."""
    if "db" in _MIGRATED:
        return
    template = Path(tempfile.mkdtemp(prefix="e2e-migrated-")) / "db"
    shutil.copytree(db_dir, template)
    _MIGRATED["db"] = template


def _manage(env: dict[str, str], *command: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def serve(
    var_dir: Path, *, seed_args: tuple[str, ...] = (), **extra_env: str
) -> Iterator[SimpleNamespace]:
    """A running server: `.url`, `.var_dir`, `.mail` (where the file email backend writes) and
    `.process` (gunicorn's master)."""
    port = free_port()
    env = {**embedded_environment(var_dir, port), **extra_env}
    fresh = not _own_databases(extra_env) and not (var_dir / "db").exists()
    migrated = _migrated_databases() if fresh else None
    if migrated is not None:  # as `migrate_all` left them for an earlier server of the session
        shutil.copytree(migrated, var_dir / "db")
    else:
        _manage(env, "migrate_all", "-v", "0")
        if fresh:
            _remember_migrated(var_dir / "db")
    _manage(env, "seed", *seed_args)
    log = (var_dir / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"server did not start: {(var_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.1)
    try:
        yield SimpleNamespace(url=url, var_dir=var_dir, mail=var_dir / "mail", process=server)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def send_raw(base_url: str, request: bytes, *, then_stop_sending: bool = False) -> bytes:
    """Send `request` as bytes on a new connection; everything the server sent until it closed."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if then_stop_sending:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def split_answer(raw_answer: bytes) -> tuple[str, dict[str, str], bytes]:
    """The status line, the headers and the (de-chunked) body of one HTTP/1.1 answer."""
    head, _, body = raw_answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    if headers.get("Transfer-Encoding") == "chunked":
        chunks, rest = [], body
        while (size := int(rest.partition(b"\r\n")[0], 16)) > 0:
            rest = rest.partition(b"\r\n")[2]
            chunks.append(rest[:size])
            rest = rest[size + 2 :]
        body = b"".join(chunks)
    return lines[0], headers, body
