"""POST /api/v1/auth/login."""

import pytest

from tests.factories.accounts import UserFactory
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_login_answers_a_token_pair_and_the_user(api_client, alice):
    body = login(api_client, "  ALICE@example.com ")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert 7 * 24 * 3600 - 60 < body["refresh_expires_in"] <= 7 * 24 * 3600
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["last_login_at"] is not None
    me = api_client.get("/api/v1/auth/me", **bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(alice.id)


def test_unknown_email_and_wrong_password_answer_identically(api_client, alice):
    unknown = api_client.post(
        "/api/v1/auth/login", {"email": "nobody@example.com", "password": "x" * 12}, format="json"
    )
    wrong = api_client.post(
        "/api/v1/auth/login", {"email": "alice@example.com", "password": "x" * 12}, format="json"
    )
    assert unknown.status_code == wrong.status_code == 401
    strip = lambda r: {k: v for k, v in r.json().items()}  # noqa: E731
    assert strip(unknown) == strip(wrong)
    assert unknown.json()["code"] == "invalid_credentials"


def test_unverified_user_hears_it_only_after_the_right_password(api_client):
    UserFactory(email="new@example.com", email_verified=False)
    wrong = api_client.post(
        "/api/v1/auth/login", {"email": "new@example.com", "password": "nope-nope-1"}, format="json"
    )
    assert wrong.json()["code"] == "invalid_credentials"
    right = api_client.post(
        "/api/v1/auth/login",
        {"email": "new@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )
    assert right.status_code == 403
    assert right.json()["code"] == "email_not_verified"


@pytest.mark.parametrize("status", ["inactive", "suspended"])
def test_inactive_account_is_403_after_the_right_password(api_client, status):
    UserFactory(email="gone@example.com", status=status)
    response = api_client.post(
        "/api/v1/auth/login",
        {"email": "gone@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"
