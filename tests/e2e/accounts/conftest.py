"""Embedded servers (`make run`'s path) whose var/ folder the tests can read (var/mail/)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.conftest import ROOT, _free_port, embedded_environment


@contextlib.contextmanager
def serve(var_dir: Path, **extra_env: str) -> Iterator[SimpleNamespace]:
    """migrate_all, seed and gunicorn like `make run`; `.url`, and `.mail` (var/mail)."""
    port = _free_port()
    env = {**embedded_environment(var_dir, port), **extra_env}
    for command in (["manage.py", "migrate_all", "-v", "0"], ["manage.py", "seed"]):
        subprocess.run(
            [sys.executable, *command], cwd=ROOT, env=env, check=True, capture_output=True
        )
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
        yield SimpleNamespace(url=url, mail=var_dir / "mail")
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def make_run_server(tmp_path_factory):
    with serve(
        tmp_path_factory.mktemp("accounts-var"),
        ACCOUNTS_LOCKOUT_THRESHOLD="3",
        ACCOUNTS_LOGIN_RATE="100/m",  # one client IP runs every test here
    ) as server:
        yield server


ADMIN = {"email": "admin@example.com", "password": "rs256-admin-password-1"}


@pytest.fixture(scope="module")
def rs256_server(tmp_path_factory):
    """An embedded server signing with RS256; the seeded admin is `ADMIN`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with serve(
        tmp_path_factory.mktemp("rs256-var"),
        JWT_ALGORITHM="RS256",
        JWT_SIGNING_KEY=private,
        JWT_VERIFYING_KEY=public,
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
    ) as server:
        yield server
