"""A stopping gunicorn worker does not wait out the threads that linger on kept-alive clients."""

import time

import httpx
import pytest

from tests.e2e.servers import serve

pytestmark = pytest.mark.e2e


def test_a_stopping_server_ends_the_linger_of_an_idle_kept_alive_connection(tmp_path):
    # A linger far longer than gunicorn's graceful timeout (20 s): were the lingering thread not
    # woken, the worker would wait for it until the master killed it.
    with serve(tmp_path, GUNICORN_KEEPALIVE_LINGER_MS="120000") as server:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            assert http.get("/health").status_code == 200
            assert http.get("/health").status_code == 200  # the same connection, kept alive
            started = time.monotonic()
            server.process.terminate()
            server.process.wait(timeout=60)
            stopped_in = time.monotonic() - started
        assert server.process.returncode == 0
        assert stopped_in < 12, f"the server took {stopped_in:.1f} s to stop"
