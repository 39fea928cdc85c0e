"""With Redis unreachable the accounts API degrades (no rate limits) but never answers 500."""

import copy
import socket

import pytest

from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def redis_down(settings):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = f"redis://127.0.0.1:{port}/0"
    settings.CACHES = caches


def test_login_me_refresh_and_logout_survive_a_cache_outage(api_client, alice, redis_down):
    pair = login(api_client, "alice@example.com")
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    fresh = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200
    out = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": fresh.json()["refresh_token"]},
        **bearer(fresh.json()["access_token"]),
    )
    assert out.status_code == 204
    # The family is ended in the database whatever the cache did.
    again = api_client.post(
        "/api/v1/auth/refresh", {"refresh_token": fresh.json()["refresh_token"]}
    )
    assert again.status_code == 401
