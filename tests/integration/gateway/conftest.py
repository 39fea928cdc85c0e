"""Fixtures of the gateway's integration tests: upstreams, routes, the proxy in-process."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx
import pytest
import redis

from tests.factories.gateway import UpstreamServer, route
from tests.factories.redis_server import redis_server_binary


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    from apps.gateway import wiring

    wiring.reset_state()
    yield
    wiring.reset_state()


@pytest.fixture
def upstream():
    server = UpstreamServer().start()
    yield server
    server.stop()


@pytest.fixture
def add_route():
    from apps.gateway import wiring

    def add(**fields):
        created = wiring.create_route().execute(route(**fields))
        assert created.is_ok(), created
        return created.unwrap()

    return add


@pytest.fixture
def proxy():
    """The lean WSGI proxy application, called in-process through httpx."""
    from apps.gateway.entrypoint import GatewayApplication

    transport = httpx.WSGITransport(app=GatewayApplication(), remote_addr="10.1.2.3")
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def own_redis(settings):
    """A private redis-server on a free port, which the test may kill, and whose command
    statistics count this test's commands alone."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    settings.REDIS_URL = url
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    settings.CACHES = caches
    from apps.gateway import wiring

    wiring.reset_state()
    yield process
    process.kill()
    process.wait(timeout=10)
    wiring.reset_state()
