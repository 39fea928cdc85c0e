"""POST /api/v1/auth/logout-all."""

import pytest

from tests.integration.accounts.conftest import (
    assert_refused_alike,
    bearer,
    ended_and_live_session,
    forget_revocation_facts,
    login,
)

pytestmark = pytest.mark.django_db(databases=["default"])


def test_logout_all_ends_every_session(api_client, alice):
    first = login(api_client, "alice@example.com")
    second = login(api_client, "alice@example.com")
    response = api_client.post("/api/v1/auth/logout-all", **bearer(first["access_token"]))
    assert response.status_code == 204
    for pair in (first, second):
        assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
        refreshed = api_client.post(
            "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 401
    alice.refresh_from_db()
    assert alice.tokens_valid_after is not None
    assert login(api_client, "alice@example.com")


def test_logout_all_needs_a_token(api_client):
    assert api_client.post("/api/v1/auth/logout-all").status_code == 401


def test_a_token_of_an_ended_session_ends_nothing_after_the_cache_lost_the_fact(api_client, alice):
    victim, other = ended_and_live_session(api_client)
    token = victim["access_token"]
    by_cache = api_client.post("/api/v1/auth/logout-all", **bearer(token))
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    response = api_client.post("/api/v1/auth/logout-all", **bearer(token))
    assert_refused_alike(response, by_cache)
    alice.refresh_from_db()
    assert alice.tokens_valid_after is None
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 200
