"""Every 401 of the accounts API carries the bearer challenge (RFC 9110 §15.5.2: a 401 MUST
send `WWW-Authenticate`), whether the token refused was a bearer header, a refresh token in the
body or the credentials of a login."""

import pytest

from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])
CHALLENGE = 'Bearer realm="api"'
SOME_ID = "00000000-0000-0000-0000-000000000000"


def assert_challenged(response, code):
    assert (response.status_code, response.json()["code"]) == (401, code), response.content
    assert response["WWW-Authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/logout-all"),
        ("get", "/api/v1/auth/me"),
        ("patch", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/password/change"),
        ("get", "/api/v1/auth/sessions"),
        ("delete", f"/api/v1/auth/sessions/{SOME_ID}"),
        ("get", "/api/v1/users"),
        ("get", f"/api/v1/users/{SOME_ID}"),
        ("patch", f"/api/v1/users/{SOME_ID}"),
    ],
)
def test_every_bearer_endpoint_without_a_token_is_401_with_the_challenge(api_client, method, path):
    assert_challenged(getattr(api_client, method)(path, {}), "not_authenticated")


def test_a_refused_login_is_challenged(api_client, alice):
    for email in ("alice@example.com", "nobody@example.com"):
        response = api_client.post(
            "/api/v1/auth/login", {"email": email, "password": "not-the-password"}
        )
        assert_challenged(response, "invalid_credentials")


def test_a_refused_refresh_token_is_challenged(api_client, alice):
    pair = login(api_client, "alice@example.com")
    url = "/api/v1/auth/refresh"
    assert_challenged(api_client.post(url, {"refresh_token": "garbage"}), "token_invalid")
    assert api_client.post(url, {"refresh_token": pair["refresh_token"]}).status_code == 200
    reused = api_client.post(url, {"refresh_token": pair["refresh_token"]})
    assert_challenged(reused, "token_reused")
    again = login(api_client, "alice@example.com")
    alice.status = "suspended"
    alice.save()
    inactive = api_client.post(url, {"refresh_token": again["refresh_token"]})
    assert_challenged(inactive, "account_inactive")


def test_logout_with_a_refresh_token_not_the_callers_is_challenged(api_client, alice, bob):
    alices, bobs = login(api_client, "alice@example.com"), login(api_client, "bob@example.com")
    response = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": bobs["refresh_token"]},
        **bearer(alices["access_token"]),
    )
    assert_challenged(response, "token_invalid")
