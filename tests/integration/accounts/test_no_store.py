"""Answers carrying tokens or personal data say `Cache-Control: no-store` (RFC 6749 §5.1 asks it
of every answer with tokens, as Keycloak's token endpoint sends it; RFC 9111 §5.2.2.5), so no
browser or shared cache keeps them."""

import re

import pytest

from tests.integration.accounts.conftest import bearer, last_mailed_token, login

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


def test_the_other_answers_carrying_a_user_are_never_stored(api_client, alice, admin_user):
    api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "an-unguessable-one-7", "full_name": "New"},
    )
    verified = api_client.post("/api/v1/auth/verify-email", {"token": last_mailed_token()})
    mine, admins = login(api_client, "alice@example.com"), login(api_client, "root@example.com")
    patched_me = api_client.patch(
        "/api/v1/auth/me", {"full_name": "A"}, **bearer(mine["access_token"])
    )
    patched = api_client.patch(
        f"/api/v1/users/{alice.id}", {"full_name": "B"}, **bearer(admins["access_token"])
    )
    for response in (verified, patched_me, patched):
        assert response.status_code == 200, response.content
        assert_not_stored(response)


def test_every_accounts_operation_says_no_store_whatever_it_answers(api_client):
    """Each operation the schema lists under /api/v1/auth/ and /api/v1/users, called with no
    token and an empty body: whatever it answers (401, 400, 404, 202) is not to be stored."""
    schema = api_client.get("/api/schema/?format=json").json()
    some_id = "00000000-0000-0000-0000-000000000000"
    called = 0
    for template, operations in schema["paths"].items():
        if not template.startswith(("/api/v1/auth/", "/api/v1/users")):
            continue
        path = re.sub(r"\{[^}]+\}", some_id, template)
        for method in operations:
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            response = getattr(api_client, method)(path, {}, format="json")
            assert response.status_code < 500, (method, path)
            assert_not_stored(response)
            called += 1
    assert called == 17  # the accounts rows of API.md
