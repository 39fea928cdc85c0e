"""POST /api/v1/auth/refresh: rotation, reuse detection, one winner under concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import RefreshSession
from tests.integration.accounts.conftest import bearer, login

URL = "/api/v1/auth/refresh"


def refresh(client, token):
    return client.post(URL, {"refresh_token": token}, format="json")


@pytest.mark.django_db(databases=["default"])
def test_refresh_rotates_the_pair(api_client, alice):
    first = login(api_client, "alice@example.com")
    response = refresh(api_client, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert set(second) == set(first)  # the shape login answers
    assert (second["token_type"], second["expires_in"]) == ("Bearer", 1800)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["user"]["id"] == str(alice.id)
    assert api_client.get("/api/v1/auth/me", **bearer(second["access_token"])).status_code == 200
    assert refresh(api_client, second["refresh_token"]).status_code == 200


@pytest.mark.django_db(databases=["default"])
def test_a_used_refresh_token_is_reuse_and_ends_the_family(api_client, alice):
    first = login(api_client, "alice@example.com")
    second = refresh(api_client, first["refresh_token"]).json()
    reused = refresh(api_client, first["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_reused"
    # The legitimate holder's newer tokens die with the family.
    assert refresh(api_client, second["refresh_token"]).json()["code"] == "token_invalid"
    me = api_client.get("/api/v1/auth/me", **bearer(second["access_token"]))
    assert me.json()["code"] == "token_revoked"


@pytest.mark.django_db(databases=["default"])
def test_refresh_costs_at_most_six_statements(api_client, alice, django_assert_max_num_queries):
    pair = login(api_client, "alice@example.com")
    with django_assert_max_num_queries(6):
        assert refresh(api_client, pair["refresh_token"]).status_code == 200


@pytest.mark.django_db(databases=["default"])
def test_rotation_never_extends_the_family(api_client, alice):
    pair = login(api_client, "alice@example.com")
    session = RefreshSession.objects.get()
    RefreshSession.objects.update(expires_at=session.created_at + timedelta(hours=1))
    rotated = refresh(api_client, pair["refresh_token"]).json()
    # The new token was minted before the family row was shortened, so check the row rules.
    assert rotated["refresh_expires_in"] <= 7 * 24 * 3600
    token = RefreshToken(rotated["refresh_token"])
    assert token["exp"] == int(RefreshToken(pair["refresh_token"])["exp"])


@pytest.mark.django_db(databases=["default"])
def test_a_rotated_pair_is_stamped_on_the_accounts_clock(api_client, alice, clock):
    pair = login(api_client, "alice@example.com")
    clock.advance(seconds=5)
    rotated = refresh(api_client, pair["refresh_token"]).json()
    issued = int(clock.now().timestamp())
    access, token = AccessToken(rotated["access_token"]), RefreshToken(rotated["refresh_token"])
    assert (access["iat"], access["exp"]) == (issued, issued + 1800)
    assert (token["iat"], token["exp"]) == (issued, issued - 5 + 7 * 24 * 3600)
    # What is left of the family, counted on the same clock (the wall clock is a minute ahead).
    assert (rotated["expires_in"], rotated["refresh_expires_in"]) == (1800, 7 * 24 * 3600 - 5)


@pytest.mark.django_db(databases=["default"])
def test_an_access_token_is_not_a_refresh_token(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = refresh(api_client, pair["access_token"])
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


@pytest.mark.django_db(databases=["default"])
def test_a_refresh_token_is_not_an_access_token(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = api_client.get("/api/v1/auth/me", **bearer(pair["refresh_token"]))
    assert response.status_code == 401


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_garbage_is_rejected(api_client, token):
    response = refresh(api_client, token)
    assert response.status_code in (400, 401)


@pytest.mark.django_db(databases=["default"])
def test_an_expired_refresh_token_is_token_expired(api_client, alice):
    token = RefreshToken()
    token["sub"] = str(alice.id)
    token["sid"] = "00000000-0000-0000-0000-000000000000"
    token.set_exp(lifetime=timedelta(seconds=-5))
    response = refresh(api_client, str(token))
    assert response.json()["code"] == "token_expired"


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "not-a-uuid", "sid": "00000000-0000-0000-0000-000000000000"},
        {"sid": "not-a-uuid"},
        {"sid": "00000000-0000-0000-0000-000000000000"},
    ],
)
def test_signed_but_wrong_refresh_tokens_are_token_invalid(api_client, alice, claims):
    token = RefreshToken()
    token["sub"] = str(alice.id)
    for name, value in claims.items():
        token[name] = value
    assert refresh(api_client, str(token)).json()["code"] == "token_invalid"


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize("exp", [1e20, 10**20, 253402300800])
def test_a_signed_refresh_token_whose_exp_is_no_time_is_token_invalid_not_a_500(
    api_client, alice, exp
):
    """Past the year 9999 (as a float or an int, or one second past it) `exp` is no datetime:
    simplejwt's check raised OverflowError or ValueError, a 500 on refresh and on logout."""
    pair = login(api_client, "alice@example.com")
    token = RefreshToken(pair["refresh_token"])
    token["exp"] = exp
    refused = refresh(api_client, str(token))
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    logout = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": str(token)},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert (logout.status_code, logout.json()["code"]) == (401, "token_invalid")
    assert refresh(api_client, pair["refresh_token"]).status_code == 200  # nothing was ended


@pytest.mark.django_db(databases=["default"])
def test_a_token_of_a_vanished_user_is_token_invalid(api_client, alice):
    pair = login(api_client, "alice@example.com")
    alice.delete()
    assert refresh(api_client, pair["refresh_token"]).json()["code"] == "token_invalid"


@pytest.mark.django_db(databases=["default"])
def test_a_suspended_user_cannot_refresh(api_client, alice):
    pair = login(api_client, "alice@example.com")
    alice.status = "suspended"
    alice.save()
    response = refresh(api_client, pair["refresh_token"])
    assert response.status_code == 401
    assert response.json()["code"] == "account_inactive"


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_concurrent_refreshes_of_one_token_have_exactly_one_winner(alice):
    from rest_framework.test import APIClient

    pair = login(APIClient(), "alice@example.com")
    barrier = threading.Barrier(5)
    statuses = []

    def attempt():
        try:
            barrier.wait()
            statuses.append(refresh(APIClient(), pair["refresh_token"]).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401, 401, 401, 401]


@pytest.mark.django_db(databases=["default"])
def test_reuse_revokes_the_access_tokens_a_thief_minted(api_client, alice):
    mine = login(api_client, "alice@example.com")
    # A thief presents the stolen refresh token first, then keeps rotating.
    thief = refresh(api_client, mine["refresh_token"]).json()
    thief_again = refresh(api_client, thief["refresh_token"]).json()
    # The owner still holds the first refresh token: presenting it again is reuse.
    assert refresh(api_client, mine["refresh_token"]).json()["code"] == "token_reused"
    for token in (mine["access_token"], thief["access_token"], thief_again["access_token"]):
        me = api_client.get("/api/v1/auth/me", **bearer(token))
        assert (me.status_code, me.json()["code"]) == (401, "token_revoked")
