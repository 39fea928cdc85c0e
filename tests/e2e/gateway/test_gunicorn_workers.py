"""Through real gunicorn workers (2 processes, Redis): live route changes and exact limits."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connections

from tests.factories.gateway import UpstreamServer
from tests.factories.relay import TcpRelay
from tests.factories.tokens import access_token

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, databases=["default", "gateway"]),
]
ROOT = Path(__file__).resolve().parents[3]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_relay():
    """PostgreSQL reached through a relay the test can cut."""
    db = connections["default"].settings_dict
    relay = TcpRelay((db["HOST"], int(db["PORT"]))).start()
    yield relay
    relay.cut()


@pytest.fixture
def platform(tmp_path, request):
    port = _free_port()
    env = dict(os.environ)
    relay = request.getfixturevalue("postgres_relay") if "relayed" in request.keywords else None
    for alias, variable in (
        ("default", "ACCOUNTS_DATABASE_URL"),
        ("gateway", "GATEWAY_DATABASE_URL"),
        ("aggregation", "AGGREGATION_DATABASE_URL"),
    ):
        db = connections[alias].settings_dict
        db_port = relay.port if relay else db["PORT"]
        env[variable] = f"postgresql://{db['USER']}@{db['HOST']}:{db_port}/{db['NAME']}"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "JWT_SIGNING_KEY": settings.SIMPLE_JWT["SIGNING_KEY"],
            "REDIS_URL": settings.REDIS_URL,
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_THREADS": "4",
            "VAR_DIR": str(tmp_path),
            "LOG_LEVEL": "WARNING",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=30)


def _fresh_get(url):
    # A new connection per call, so both worker processes answer over time.
    return httpx.get(url, headers={"Connection": "close"}, timeout=5)


@pytest.fixture
def upstream():
    server = UpstreamServer().start()
    yield server
    server.stop()


def _admin():
    return {"Authorization": f"Bearer {access_token(roles=('admin',))}"}


def _add_route(platform, **route):
    created = httpx.post(platform + "/api/v1/gateway/routes", json=route, headers=_admin())
    assert created.status_code == 201, created.text


def test_every_worker_serves_route_changes_within_a_second_and_limits_are_exact(platform, upstream):
    _add_route(
        platform,
        name="live",
        path_prefix="/live",
        upstream_url=upstream.url,
        rate_limit={"requests": 10, "window_seconds": 60, "key": "ip"},
    )
    time.sleep(1.0)
    first = [_fresh_get(platform + "/live/x").status_code for _ in range(6)]
    assert first == [200] * 6

    statuses = []
    barrier = threading.Barrier(8)

    def burst():
        barrier.wait()
        for _ in range(3):
            statuses.append(_fresh_get(platform + "/live/x").status_code)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 4  # 10 per window, 6 already used
    assert statuses.count(429) == 20

    changed = httpx.patch(
        platform + "/api/v1/gateway/routes/live", json={"enabled": False}, headers=_admin()
    )
    assert changed.status_code == 200
    time.sleep(1.0)
    after = [_fresh_get(platform + "/live/x").status_code for _ in range(6)]
    assert after == [404] * 6


def test_a_client_cannot_claim_https_without_trusted_proxies(platform, upstream):
    _add_route(platform, name="scheme", path_prefix="/scheme", upstream_url=upstream.url)
    time.sleep(1.0)
    seen = httpx.get(platform + "/scheme/x", headers={"X-Forwarded-Proto": "https"}).json()
    assert seen["headers"]["x-forwarded-proto"] == "http"


@pytest.mark.relayed
def test_with_postgres_gone_the_proxy_serves_its_last_routes_and_the_api_answers_503(
    platform, postgres_relay, upstream
):
    _add_route(platform, name="kept", path_prefix="/kept", upstream_url=upstream.url)
    time.sleep(1.5)  # every worker's background refresh has loaded the route by now

    postgres_relay.cut()  # PostgreSQL is gone for the platform

    assert {_fresh_get(platform + "/kept/x").status_code for _ in range(6)} == {200}
    listed = httpx.get(platform + "/api/v1/gateway/routes", headers=_admin(), timeout=10)
    assert listed.status_code == 503, listed.text
    assert listed.json()["code"] == "service_unavailable"
    assert listed.headers["retry-after"] == "5"
    assert httpx.get(platform + "/health/ready", timeout=10).status_code == 503
