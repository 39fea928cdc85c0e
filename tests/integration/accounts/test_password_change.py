"""POST /api/v1/auth/password/change."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import RefreshSession
from tests.factories.accounts import PASSWORD
from tests.integration.accounts.conftest import (
    assert_refused_alike,
    bearer,
    ended_and_live_session,
    forget_revocation_facts,
    last_mailed_token,
    login,
)

pytestmark = pytest.mark.django_db(databases=["default"])
NEW = "fresh-orchard-lantern-4"


def change(client, access, current="correct-horse-battery-9", new=NEW, **extra):
    return client.post(
        "/api/v1/auth/password/change",
        {"current_password": current, "new_password": new},
        **bearer(access),
        **extra,
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


def test_the_callers_access_token_keeps_working_and_every_other_session_stops(
    api_client, alice, clock
):
    other = login(api_client, "alice@example.com")
    mine = login(api_client, "alice@example.com")
    # The tokens predate the change by a whole second (`iat` and a per-user cut-off have
    # one-second resolution), so a cut-off would refuse the caller's too.
    clock.advance(seconds=1)
    assert change(api_client, mine["access_token"]).status_code == 204
    assert api_client.get("/api/v1/auth/me", **bearer(mine["access_token"])).status_code == 200
    theirs = api_client.get("/api/v1/auth/me", **bearer(other["access_token"]))
    assert (theirs.status_code, theirs.json()["code"]) == (401, "token_revoked")
    stale = api_client.post("/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    assert stale.status_code == 401
    kept = api_client.post("/api/v1/auth/refresh", {"refresh_token": mine["refresh_token"]})
    assert kept.status_code == 200
    # The caller may go on changing things with the token they already hold.
    again = change(api_client, mine["access_token"], current=NEW, new="second-quiet-harbour-7")
    assert again.status_code == 204


def test_an_access_token_outliving_its_family_stops_too(api_client, alice):
    other = login(api_client, "alice@example.com")
    mine = login(api_client, "alice@example.com")
    # The other family reached its 7 days; its last access token has minutes left.
    family = AccessToken(other["access_token"])["sid"]
    ended = RefreshSession.objects.filter(pk=family)
    assert ended.update(expires_at=timezone.now() - timedelta(seconds=1)) == 1
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200
    assert change(api_client, mine["access_token"]).status_code == 204
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 401
    assert api_client.get("/api/v1/auth/me", **bearer(mine["access_token"])).status_code == 200
    # The family is ended in the database too, which refuses the token without the cache.
    forget_revocation_facts(other["access_token"])
    stale = api_client.get("/api/v1/auth/me", **bearer(other["access_token"]))
    assert (stale.status_code, stale.json()["code"]) == (401, "token_revoked")


def test_wrong_current_password_is_400_invalid_credentials(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = change(api_client, pair["access_token"], current="not-it-at-all")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_credentials")


@pytest.mark.parametrize(
    "weak", ["short", "password1", "alice@example.com", "alice-liddell", " " * 20]
)
def test_weak_new_password_is_a_field_error(api_client, alice, weak):
    pair = login(api_client, "alice@example.com")
    response = change(api_client, pair["access_token"], new=weak)
    assert response.status_code == 400
    assert response.json()["errors"]["new_password"]


def test_change_needs_a_token(api_client):
    assert change(api_client, "nope").status_code == 401


def test_guessing_the_current_password_is_rate_limited_per_user(api_client, alice, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "password_change": "3/m"}
    pair = login(api_client, "alice@example.com")
    for _ in range(3):
        assert change(api_client, pair["access_token"], current="guess-guess-1").status_code == 400
    limited = change(api_client, pair["access_token"])
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    other_ip = change(api_client, pair["access_token"], REMOTE_ADDR="10.0.0.9")
    assert other_ip.status_code == 429  # per user, not per address


def test_the_new_password_must_differ_from_the_current_one(api_client, alice):
    pair = login(api_client, "alice@example.com")
    same = change(api_client, pair["access_token"], new="correct-horse-battery-9")
    assert (same.status_code, same.json()["code"]) == (400, "validation_error")
    assert list(same.json()["errors"]) == ["new_password"]


def test_a_token_of_an_ended_session_changes_nothing_after_the_cache_lost_the_fact(
    api_client, alice
):
    victim, other = ended_and_live_session(api_client)
    token = victim["access_token"]
    by_cache = change(api_client, token)
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    response = change(api_client, token)
    assert_refused_alike(response, by_cache)
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200


def test_a_reset_link_mailed_before_the_change_stops_working(api_client, alice):
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    token = last_mailed_token()
    mine = login(api_client, "alice@example.com")
    assert change(api_client, mine["access_token"]).status_code == 204
    reset = api_client.post(
        "/api/v1/auth/password/reset/confirm", {"token": token, "new_password": "another-good-5"}
    )
    assert (reset.status_code, reset.json()["code"]) == (400, "invalid_token")
    assert login(api_client, "alice@example.com", NEW)
