"""An embedded server (`make run`'s path) whose var/ folder the tests can read (var/mail/)."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import httpx
import pytest

from tests.e2e.conftest import ROOT, _free_port, embedded_environment


@pytest.fixture(scope="module")
def make_run_server(tmp_path_factory):
    """`.url` of a gunicorn server started like `make run`; `.mail` is its var/mail folder."""
    var_dir = tmp_path_factory.mktemp("accounts-var")
    port = _free_port()
    env = embedded_environment(var_dir, port)
    env["ACCOUNTS_LOCKOUT_THRESHOLD"] = "3"
    env["ACCOUNTS_LOGIN_RATE"] = "100/m"  # one client IP runs every test here
    for command in (["manage.py", "migrate_all", "-v", "0"], ["manage.py", "seed"]):
        subprocess.run([sys.executable, *command], cwd=ROOT, env=env, check=True)
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
    yield SimpleNamespace(url=url, mail=var_dir / "mail")
    server.terminate()
    server.wait(timeout=20)
    log.close()
