"""Fixtures of the gateway's integration tests: upstreams, routes, the proxy in-process."""

from __future__ import annotations

import socket

import httpx
import pytest
import redis

from tests.factories.gateway import UpstreamServer, route
from tests.factories.redis_server import start_redis_server


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
    process, url = start_redis_server()
    redis.Redis.from_url(url).ping()
    settings.REDIS_URL = url
    caches = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    settings.CACHES = caches
    from apps.gateway import wiring

    wiring.reset_state()
    yield process
    process.kill()
    process.wait(timeout=10)
    wiring.reset_state()


@pytest.fixture
def connect():
    """`connect(worker)`: a new client connection, as (the worker's TConn, the client socket)."""
    from gunicorn.workers.gthread import TConn

    listener = socket.create_server(("127.0.0.1", 0))
    sockets = [listener]

    def connect(worker):
        client = socket.create_connection(listener.getsockname(), timeout=10)
        ours, address = listener.accept()
        sockets.extend((client, ours))
        return TConn(worker.cfg, ours, address, listener.getsockname()), client

    yield connect
    for sock in sockets:
        sock.close()
