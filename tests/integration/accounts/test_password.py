"""POST /api/v1/auth/password/change, /password/reset and /password/reset/confirm."""

import pytest
from django.core import mail

from tests.integration.accounts.conftest import bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])
NEW = "fresh-orchard-lantern-4"


def change(client, access, current="correct-horse-battery-9", new=NEW):
    return client.post(
        "/api/v1/auth/password/change",
        {"current_password": current, "new_password": new},
        **bearer(access),
    )


def test_change_password_ends_other_sessions_and_keeps_mine(api_client, alice):
    other = login(api_client, "alice@example.com")
    mine = login(api_client, "alice@example.com")
    assert change(api_client, mine["access_token"]).status_code == 204
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 401
    assert (
        api_client.post(
            "/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]}
        ).status_code
        == 401
    )
    kept = api_client.post("/api/v1/auth/refresh", {"refresh_token": mine["refresh_token"]})
    assert kept.status_code == 200
    assert login(api_client, "alice@example.com", NEW)
    old = api_client.post(
        "/api/v1/auth/login",
        {"email": "alice@example.com", "password": "correct-horse-battery-9"},
    )
    assert old.status_code == 401


def test_wrong_current_password_is_400_invalid_credentials(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = change(api_client, pair["access_token"], current="not-it-at-all")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")


@pytest.mark.parametrize("weak", ["short", "password1", "alice@example.com", "alice-liddell"])
def test_weak_new_password_is_a_field_error(api_client, alice, weak):
    pair = login(api_client, "alice@example.com")
    response = change(api_client, pair["access_token"], new=weak)
    assert response.status_code == 400
    assert response.json()["errors"]["new_password"]


def test_change_needs_a_token(api_client):
    assert change(api_client, "nope").status_code == 401


def test_reset_answers_alike_and_mails_only_real_accounts(api_client, alice):
    answers = [
        api_client.post("/api/v1/auth/password/reset", {"email": email})
        for email in ("ALICE@example.com", "nobody@example.com", "not an email")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


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


def test_reset_is_rate_limited(api_client, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "password_reset": "1/m"}
    assert api_client.post("/api/v1/auth/password/reset", {"email": "a@b.io"}).status_code == 202
    limited = api_client.post("/api/v1/auth/password/reset", {"email": "a@b.io"})
    assert limited.status_code == 429
