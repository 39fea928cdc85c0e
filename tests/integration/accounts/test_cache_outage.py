"""With Redis unreachable the accounts API degrades (no rate limits) but never answers 500."""

import pytest
from prometheus_client import REGISTRY

from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_login_me_refresh_and_logout_survive_a_cache_outage(api_client, alice, redis_down):
    pair = login(api_client, "alice@example.com")
    unread = _sample("platform_token_revocation_lookup_failures_total")
    written = _sample("platform_token_revocation_write_failures_total")
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    # The revocation facts could not be read: the token passes (fail open), counted.
    assert _sample("platform_token_revocation_lookup_failures_total") > unread
    fresh = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200
    out = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": fresh.json()["refresh_token"]},
        **bearer(fresh.json()["access_token"]),
    )
    assert out.status_code == 204
    # The access token's denial could not be written: counted, and it lives until it expires.
    assert _sample("platform_token_revocation_write_failures_total") > written
    # The family is ended in the database whatever the cache did.
    again = api_client.post(
        "/api/v1/auth/refresh", {"refresh_token": fresh.json()["refresh_token"]}
    )
    assert again.status_code == 401


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0
