"""Answers carrying tokens or personal data say `Cache-Control: no-store` (RFC 6749 §5.1 asks it
of every answer with tokens, as Keycloak's token endpoint sends it; RFC 9111 §5.2.2.5), so no
browser or shared cache keeps them."""

import pytest

from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


def assert_not_stored(response):
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert {"no-store", "private"} <= directives, (response.status_code, directives)


def test_token_pairs_are_never_stored(api_client, alice):
    response = api_client.post(
        "/api/v1/auth/login", {"email": "alice@example.com", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 200
    assert_not_stored(response)
    rotated = api_client.post(
        "/api/v1/auth/refresh", {"refresh_token": response.json()["refresh_token"]}
    )
    assert rotated.status_code == 200
    assert_not_stored(rotated)
    refused = api_client.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "x"})
    assert refused.status_code == 401
    assert_not_stored(refused)


def test_personal_data_is_never_stored(api_client, alice, admin_user):
    mine, admins = login(api_client, "alice@example.com"), login(api_client, "root@example.com")
    for path, token in (
        ("/api/v1/auth/me", mine),
        ("/api/v1/auth/sessions", mine),
        (f"/api/v1/users/{alice.id}", mine),
        ("/api/v1/users", admins),
    ):
        response = api_client.get(path, **bearer(token["access_token"]))
        assert response.status_code == 200, path
        assert_not_stored(response)
    registered = api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "an-unguessable-one-7", "full_name": "New"},
    )
    assert registered.status_code == 201
    assert_not_stored(registered)
