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


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_two_confirms_of_one_token_at_once_set_one_password(alice):
    """Both find the token usable and hash their password; the token's row lock then lets one
    use it, and the other finds it used (400 `invalid_token`), not a second password set."""
    from django.db import connections, transaction
    from rest_framework.test import APIClient

    from apps.accounts.models import OneTimeToken
    from tests.integration.races import blocked_by_me, in_thread, lock_waiters, poll

    client = APIClient()
    pair = login(client, "alice@example.com")
    client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"}, format="json")
    token = last_mailed_token()
    passwords = ("fresh-orchard-lantern-4", "quiet-harbour-compass-5")

    def confirm(password):
        return lambda: APIClient(raise_request_exception=False).post(
            URL, {"token": token, "new_password": password}, format="json"
        )

    with transaction.atomic(), connections["default"].cursor() as cursor:
        row = OneTimeToken.objects.select_for_update().get(used_at__isnull=True)
        racers = [in_thread(confirm(password)) for password in passwords]
        poll(
            lambda: len(blocked_by_me(cursor)) == 1 and lock_waiters(cursor) == 2,
            "both confirms wait for the token's row, one behind the other",
        )
        assert row.used_at is None
    answers = []
    for thread, answer in racers:
        thread.join()
        answers.append(answer[0])
    statuses = sorted((a.status_code, a.json()["code"] if a.content else None) for a in answers)
    assert statuses == [(204, None), (400, "invalid_token")]
    winner = passwords[[a.status_code for a in answers].index(204)]
    loser = next(p for p in passwords if p != winner)
    assert login(client, "alice@example.com", winner)
    wrong = client.post(
        "/api/v1/auth/login", {"email": "alice@example.com", "password": loser}, format="json"
    )
    assert wrong.status_code == 401
    assert client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
