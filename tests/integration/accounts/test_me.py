"""GET and PATCH /api/v1/auth/me."""

import pytest

from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_me_costs_one_query_for_the_user_and_none_for_auth(
    api_client, alice, django_assert_num_queries
):
    pair = login(api_client, "alice@example.com")
    with django_assert_num_queries(1):
        response = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert response.json()["email"] == "alice@example.com"
    assert "password" not in response.json()


def test_patch_me_changes_only_the_name(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = api_client.patch(
        "/api/v1/auth/me",
        {
            "full_name": "  Alice P. Liddell ",
            "roles": ["admin"],
            "status": "suspended",
            "email_verified": False,
            "is_staff": True,
        },
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["full_name"] == "Alice P. Liddell"
    assert (body["roles"], body["status"], body["email_verified"]) == (["user"], "active", True)
    alice.refresh_from_db()
    assert alice.is_staff is False


def test_patch_me_validates(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = api_client.patch(
        "/api/v1/auth/me", {"full_name": "x" * 201}, **bearer(pair["access_token"])
    )
    assert response.status_code == 400
    assert "full_name" in response.json()["errors"]


def test_me_needs_a_token(api_client):
    response = api_client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_me_of_a_deleted_user_is_401(api_client, alice):
    pair = login(api_client, "alice@example.com")
    alice.status = "deleted"
    alice.save()
    response = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert response.status_code == 401
    patch = api_client.patch("/api/v1/auth/me", {"full_name": "x"}, **bearer(pair["access_token"]))
    assert patch.status_code == 401
