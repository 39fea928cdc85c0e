"""In embedded mode (`make run` with nothing configured) the route version lives in the server's
own in-process cache, which another process cannot bump: a route written by `manage.py seed`,
a shell or a second server still reaches the running server without a restart."""

from __future__ import annotations

import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.servers import ROOT, embedded_environment, serve

pytestmark = pytest.mark.e2e


def test_a_route_added_by_another_process_is_served_without_a_restart(tmp_path):
    with serve(tmp_path) as server:
        url = f"{server.url}/demo"
        assert httpx.get(url, timeout=5).status_code == 404  # seeded without the demo route
        subprocess.run(
            [sys.executable, "manage.py", "seed", "--demo"],
            cwd=ROOT,
            env=embedded_environment(tmp_path, urlsplit(server.url).port),
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10  # it takes a second; a restart was needed before
        while (status := httpx.get(url, timeout=5).status_code) == 404:
            assert time.monotonic() < deadline, "the seeded route never reached the server"
            time.sleep(0.1)
        assert status == 200
