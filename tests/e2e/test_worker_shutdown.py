"""A stopping gunicorn worker does not wait out the threads that linger on kept-alive clients."""

import http.client
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.servers import serve

pytestmark = pytest.mark.e2e


def test_a_stopping_server_ends_the_linger_of_an_idle_kept_alive_connection(tmp_path):
    # A linger longer than gunicorn's graceful timeout (20 s): were the lingering thread not
    # woken, the worker would wait for it until the master killed it.
    with serve(tmp_path, GUNICORN_KEEPALIVE_LINGER_MS="60000") as server:
        address = urlsplit(server.url)
        client = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
        try:
            client.request("GET", "/health")
            assert client.getresponse().read()
            kept_alive = client.sock
            client.request("GET", "/health")
            assert client.getresponse().status == 200
            assert client.sock is kept_alive is not None  # one connection, kept alive
            started = time.monotonic()
            server.process.terminate()
            server.process.wait(timeout=60)
            stopped_in = time.monotonic() - started
        finally:
            client.close()
        assert stopped_in < 12, f"the server took {stopped_in:.1f} s to stop"
