"""The host a request is for, through a real gunicorn on `make run`'s path, over raw sockets.

RFC 9112 §3.2.2: a request whose target is in absolute form (`GET http://host/path`) is for the
target's authority, and its Host header is ignored. Django and the gateway agree on it: the
allow-list judges it, the upstream gets it as `X-Forwarded-Host` and the cache key holds it.
"""

import json
import time

import httpx
import pytest

from tests.e2e.servers import send_raw, serve, split_answer
from tests.factories.gateway import UpstreamServer

pytestmark = pytest.mark.e2e

ADMIN = {"email": "admin@example.com", "password": "edge-admin-password-1"}
DEADLINE_SECONDS = 10.0


@pytest.fixture(scope="module")
def upstream():
    server = UpstreamServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, upstream):
    """An embedded server proxying `/svc` and `/other` (cached) to `upstream`; `.admin` holds
    the admin's Authorization header."""
    with serve(
        tmp_path_factory.mktemp("host-var"),
        ADMIN_EMAIL=ADMIN["email"],
        ADMIN_PASSWORD=ADMIN["password"],
    ) as server:
        login = httpx.post(f"{server.url}/api/v1/auth/login", json=ADMIN)
        server.admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for name in ("svc", "other"):
            created = httpx.post(
                f"{server.url}/api/v1/gateway/routes",
                json={
                    "name": name,
                    "path_prefix": f"/{name}",
                    "upstream_url": upstream.url,
                    "cache_ttl_seconds": 300,
                },
                headers=server.admin,
            )
            assert created.status_code == 201, created.text
        deadline = time.monotonic() + DEADLINE_SECONDS
        while httpx.get(f"{server.url}/other/ready").status_code != 200:
            assert time.monotonic() < deadline, "the routes never took effect"
            time.sleep(0.05)
        yield server


def _get(platform, target: str, host: str, *headers: str) -> tuple[int, dict[str, str], bytes]:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close", *headers]
    status, answer_headers, body = split_answer(
        send_raw(platform.url, ("\r\n".join(lines) + "\r\n\r\n").encode())
    )
    return int(status.split(" ")[1]), answer_headers, body


def test_the_gateway_forwards_and_caches_by_the_targets_authority(platform, upstream):
    served = platform.url.removeprefix("http://")  # 127.0.0.1:port
    named = served.replace("127.0.0.1", "localhost")
    status, headers, body = _get(platform, f"http://{named}/svc/page?n=1", served)
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert json.loads(body)["headers"]["x-forwarded-host"] == named
    # One cache entry per host the client asked for: the authority's, not the Host header's.
    status, headers, _ = _get(platform, "/svc/page?n=1", named)
    assert (status, headers["X-Cache"]) == (200, "HIT")
    status, headers, body = _get(platform, "/svc/page?n=1", served)
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert json.loads(body)["headers"]["x-forwarded-host"] == served


def test_django_builds_its_links_with_the_targets_authority(platform):
    served = platform.url.removeprefix("http://")
    named = served.replace("127.0.0.1", "localhost")
    status, _, body = _get(
        platform,
        f"http://{named}/api/v1/gateway/routes?page_size=1",
        served,
        f"Authorization: {platform.admin['Authorization']}",
    )
    assert status == 200, body
    assert json.loads(body)["next"].startswith(f"http://{named}/api/v1/gateway/routes?")


@pytest.mark.parametrize("path", ["/health", "/svc/refused"], ids=["django", "gateway"])
@pytest.mark.parametrize(
    ("authority", "host"),
    [
        ("evil.example", "localhost"),  # an allowed Host does not excuse the target's host
        ("", "localhost"),
        ("user@localhost", "localhost"),  # userinfo is no part of an http target (RFC 9110)
        ("localhost", "local host"),  # ignored, the Host header is still refused when invalid
        ("localhost", ""),
    ],
    ids=["foreign", "empty", "userinfo", "ill-formed-host", "empty-host"],
)
def test_an_absolute_target_for_a_host_not_allowed_is_a_400_on_either_side(
    platform, upstream, path, authority, host
):
    calls = sum(upstream.calls.values())
    status, headers, body = _get(platform, f"http://{authority}{path}", host)
    assert status == 400, body
    assert headers["Content-Type"] == "application/problem+json"
    assert len(headers["X-Request-ID"]) == 32
    assert json.loads(body)["code"] == "bad_request"
    assert sum(upstream.calls.values()) == calls


@pytest.mark.parametrize("path", ["/health", "/svc/foreign-host"], ids=["django", "gateway"])
def test_the_host_header_beside_an_allowed_absolute_target_is_ignored(platform, path):
    status, _, body = _get(platform, f"http://localhost{path}", "evil.example")
    assert status == 200, body
