"""POST /api/v1/auth/password/reset/confirm."""

import pytest

from tests.integration.accounts.conftest import bearer, last_mailed_token, login

URL = "/api/v1/auth/password/reset/confirm"

pytestmark = pytest.mark.django_db(databases=["default"])
NEW = "fresh-orchard-lantern-4"


def test_reset_sets_the_password_once_and_ends_every_session(api_client, alice):
    pair = login(api_client, "alice@example.com")
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    token = last_mailed_token()
    url = "/api/v1/auth/password/reset/confirm"
    weak = api_client.post(url, {"token": token, "new_password": "123"})
    assert weak.status_code == 400
    assert weak.json()["errors"]["new_password"]
    assert api_client.post(url, {"token": token, "new_password": NEW}).status_code == 204
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    assert login(api_client, "alice@example.com", NEW)
    again = api_client.post(url, {"token": token, "new_password": "another-good-one-5"})
    assert (again.status_code, again.json()["code"]) == (400, "invalid_token")


def test_reset_lifts_a_lockout(api_client, alice):
    from django.utils import timezone

    alice.locked_until = timezone.now() + timezone.timedelta(minutes=10)
    alice.save()
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    confirm = api_client.post(
        "/api/v1/auth/password/reset/confirm",
        {"token": last_mailed_token(), "new_password": NEW},
    )
    assert confirm.status_code == 204
    assert login(api_client, "alice@example.com", NEW)


@pytest.mark.parametrize("blank_password", [" " * 20, "\u3164" * 12, "\u2800" * 12])
def test_a_password_of_spaces_alone_is_weak_and_the_token_still_works(
    api_client, alice, blank_password
):
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    token = last_mailed_token()
    url = "/api/v1/auth/password/reset/confirm"
    blank = api_client.post(url, {"token": token, "new_password": blank_password})
    assert (blank.status_code, blank.json()["code"]) == (400, "validation_error")
    assert list(blank.json()["errors"]) == ["new_password"]
    assert api_client.post(url, {"token": token, "new_password": NEW}).status_code == 204


def test_an_unknown_token_is_invalid_token(api_client, alice):
    response = api_client.post(URL, {"token": "not-a-token-we-sent", "new_password": NEW})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_token")


def test_a_reset_token_expires_after_an_hour(api_client, alice, clock):
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    token = last_mailed_token()
    clock.advance(hours=1)
    response = api_client.post(URL, {"token": token, "new_password": NEW})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_token")
    assert login(api_client, "alice@example.com")  # the old password still works


def test_a_verification_token_does_not_reset_a_password(api_client):
    api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "an-unguessable-one-7", "full_name": "New"},
    )
    response = api_client.post(URL, {"token": last_mailed_token(), "new_password": NEW})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_token")
