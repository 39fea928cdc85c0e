"""A real server process: `make run`'s path (migrate_all, seed, gunicorn) in embedded mode."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
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


def _free_port() -> int:
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


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    """Base URL of a gunicorn server started like `make run`, on SQLite and the local cache."""
    var_dir = tmp_path_factory.mktemp("var")
    port = _free_port()
    env = embedded_environment(var_dir, port)
    python = sys.executable
    for command in (["manage.py", "migrate_all", "-v", "0"], ["manage.py", "seed"]):
        subprocess.run([python, *command], cwd=ROOT, env=env, check=True, capture_output=True)
    log = (var_dir / "server.log").open("w")
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "--config", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"server did not start: {(var_dir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.1)
    yield base_url
    server.terminate()
    server.wait(timeout=20)
    log.close()
