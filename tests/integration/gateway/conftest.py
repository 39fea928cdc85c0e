"""Fixtures of the gateway's integration tests: upstreams, routes, the proxy in-process."""

from __future__ import annotations

import httpx
import pytest

from tests.factories.gateway import UpstreamServer, route


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
