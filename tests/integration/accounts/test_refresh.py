"""POST /api/v1/auth/refresh: rotation, reuse detection, one winner under concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import RefreshSession
from tests.factories.accounts import AdminFactory
from tests.integration.accounts.conftest import bearer, last_mailed_token, login

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
    # The legitimate holder's newer tokens die with the family, and say why.
    assert refresh(api_client, second["refresh_token"]).json()["code"] == "token_reused"
    me = api_client.get("/api/v1/auth/me", **bearer(second["access_token"]))
    assert me.json()["code"] == "token_revoked"


@pytest.mark.django_db(databases=["default"])
def test_every_later_token_of_a_family_revoked_for_reuse_is_token_reused(
    api_client, alice, django_assert_max_num_queries
):
    """Keycloak's rule: once a family was revoked for reuse, each of its refresh tokens says so
    whoever presents it (the thief's newest, the owner's, the reused one again), at no more
    cost than any refused token."""
    first = login(api_client, "alice@example.com")
    stolen = refresh(api_client, first["refresh_token"]).json()
    newest = refresh(api_client, stolen["refresh_token"]).json()
    assert refresh(api_client, first["refresh_token"]).json()["code"] == "token_reused"
    for token in (newest, stolen, first, newest):
        with django_assert_max_num_queries(5):  # as for a token of an ended family (below)
            answer = refresh(api_client, token["refresh_token"])
        assert (answer.status_code, answer.json()["code"]) == (401, "token_reused")
        assert answer["WWW-Authenticate"] == 'Bearer realm="api"'
    assert RefreshSession.objects.get().revoked_reason == "reuse"
    logout = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": newest["refresh_token"]},
        **bearer(login(api_client, "alice@example.com")["access_token"]),
    )
    assert logout.status_code == 204  # a logout later does not make it another reason
    assert refresh(api_client, newest["refresh_token"]).json()["code"] == "token_reused"


def _logout(client, pair, other):
    return client.post(
        "/api/v1/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        **bearer(pair["access_token"]),
    )


def _delete_session(client, pair, other):
    sid = AccessToken(pair["access_token"])["sid"]
    return client.delete(f"/api/v1/auth/sessions/{sid}", **bearer(other["access_token"]))


def _logout_all(client, pair, other):
    return client.post("/api/v1/auth/logout-all", **bearer(other["access_token"]))


def _password_change(client, pair, other):
    return client.post(
        "/api/v1/auth/password/change",
        {"current_password": "correct-horse-battery-9", "new_password": "fresh-orchard-lantern-4"},
        **bearer(other["access_token"]),
    )


def _password_reset(client, pair, other):
    client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    return client.post(
        "/api/v1/auth/password/reset/confirm",
        {"token": last_mailed_token(), "new_password": "fresh-orchard-lantern-4"},
    )


def _suspension(client, pair, other):
    AdminFactory(email="root@example.com")
    admin = bearer(login(client, "root@example.com")["access_token"])
    uid = pair["user"]["id"]
    suspended = client.patch(f"/api/v1/users/{uid}", {"status": "suspended"}, **admin)
    assert suspended.status_code == 200, suspended.content
    return client.patch(f"/api/v1/users/{uid}", {"status": "active"}, **admin)


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize(
    ("end", "reason", "answered"),
    [
        (_logout, "logout", 204),
        (_delete_session, "session_revoked", 204),
        (_logout_all, "logout_all", 204),
        (_password_change, "password_change", 204),
        (_password_reset, "password_reset", 204),
        (_suspension, "account_status", 200),
    ],
)
def test_a_family_ended_for_another_reason_stays_token_invalid(
    api_client, alice, django_assert_max_num_queries, end, reason, answered
):
    pair = login(api_client, "alice@example.com")
    other = login(api_client, "alice@example.com")
    newer = refresh(api_client, pair["refresh_token"]).json()
    assert end(api_client, newer, other).status_code == answered
    sid = AccessToken(newer["access_token"])["sid"]
    assert RefreshSession.objects.get(pk=sid).revoked_reason == reason
    for token in (newer, newer):
        with django_assert_max_num_queries(5):
            answer = refresh(api_client, token["refresh_token"])
        assert (answer.status_code, answer.json()["code"]) == (401, "token_invalid")
    # An older token of that family is not taken for reuse either: the family had ended.
    assert refresh(api_client, pair["refresh_token"]).json()["code"] == "token_invalid"


@pytest.mark.django_db(databases=["default"])
def test_refresh_costs_at_most_six_statements(api_client, alice, django_assert_max_num_queries):
    pair = login(api_client, "alice@example.com")
    with django_assert_max_num_queries(6):
        assert refresh(api_client, pair["refresh_token"]).status_code == 200


@pytest.mark.django_db(databases=["default"])
def test_rotation_never_extends_the_family(api_client, alice, clock):
    """A refresh 30 s after the login (on the accounts' clock, which stamps the tokens; it may
    not pass the wall clock, which PyJWT checks `iat` on) keeps the login's 7-day end: the
    rotated token's `exp`, what is answered as left of it, and the family's row all say so."""
    pair = login(api_client, "alice@example.com")
    ends = int(RefreshToken(pair["refresh_token"])["exp"])
    assert ends == int(clock.now().timestamp()) + 7 * 24 * 3600
    family_ends = RefreshSession.objects.get().expires_at
    clock.advance(seconds=30)
    rotated = refresh(api_client, pair["refresh_token"])
    assert rotated.status_code == 200, rotated.content
    token = RefreshToken(rotated.json()["refresh_token"])
    assert token["iat"] == int(clock.now().timestamp())  # minted 30 s on ...
    assert token["exp"] == ends, "a rotation moved the end of the family"  # ... ending as before
    assert rotated.json()["refresh_expires_in"] == 7 * 24 * 3600 - 30
    assert RefreshSession.objects.get().expires_at == family_ends


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
def test_a_token_of_a_deleted_user_is_token_invalid_as_a_vanished_users(api_client, alice):
    """A soft delete stands for removal (login answers as for an unknown address), as Keycloak
    answers a removed user's refresh token: not `account_inactive`, which suspension and
    deactivation answer, and which says the account is still there."""
    pair = login(api_client, "alice@example.com")
    alice.status = "deleted"
    alice.save()
    refused = refresh(api_client, pair["refresh_token"])
    assert (refused.status_code, refused.json()["code"]) == (401, "token_invalid")
    assert refused.json()["detail"] == "The refresh token is not valid."


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
