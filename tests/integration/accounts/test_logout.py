"""POST /api/v1/auth/logout."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])


def test_logout_ends_the_family_and_the_presented_access_token(api_client, alice):
    pair = login(api_client, "alice@example.com")
    other = login(api_client, "alice@example.com")
    response = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 204
    me = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert (me.status_code, me.json()["code"]) == (401, "token_revoked")
    again = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    # Another session of the same user is untouched.
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200


def test_logout_needs_a_bearer_token(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = api_client.post(
        "/api/v1/auth/logout", {"refresh_token": pair["refresh_token"]}, format="json"
    )
    assert response.status_code == 401


def test_logout_with_someone_elses_refresh_token_is_401(api_client, alice, bob):
    mine = login(api_client, "alice@example.com")
    theirs = login(api_client, "bob@example.com")
    response = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": theirs["refresh_token"]},
        format="json",
        **bearer(mine["access_token"]),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": theirs["refresh_token"]})
    assert refreshed.status_code == 200


def test_logout_revokes_every_access_token_of_the_family(api_client, alice):
    first = login(api_client, "alice@example.com")
    second = api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    latest = second.json()
    response = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": latest["refresh_token"]},
        format="json",
        **bearer(latest["access_token"]),
    )
    assert response.status_code == 204
    # The access token minted before the rotation dies with the family, not only the last one.
    for token in (first["access_token"], latest["access_token"]):
        me = api_client.get("/api/v1/auth/me", **bearer(token))
        assert (me.status_code, me.json()["code"]) == (401, "token_revoked")


def expired(refresh_token):
    """The same refresh token (user, family, jti) signed again with an `exp` in the past."""
    token = RefreshToken(refresh_token)
    token.set_exp(lifetime=timedelta(seconds=-5))
    return str(token)


def test_logout_with_an_expired_refresh_token_still_logs_out(api_client, alice):
    """As Keycloak's logout: a refresh token past its expiry still names the session to end,
    and the access token presented with it must stop working (its family may have reached its
    7 days while its last access token has minutes left)."""
    pair = login(api_client, "alice@example.com")
    response = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": expired(pair["refresh_token"])},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 204
    me = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert (me.status_code, me.json()["code"]) == (401, "token_revoked")
    again = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert (again.status_code, again.json()["code"]) == (401, "token_invalid")


def test_an_expired_refresh_token_is_still_checked_for_its_signature_and_owner(
    api_client, alice, bob
):
    mine, theirs = login(api_client, "alice@example.com"), login(api_client, "bob@example.com")
    header, payload, signature = expired(mine["refresh_token"]).split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    access = AccessToken(mine["access_token"])
    access.set_exp(lifetime=timedelta(seconds=-5))  # an expired access token is no refresh token
    for refresh_token in (forged, expired(theirs["refresh_token"]), str(access)):
        response = api_client.post(
            "/api/v1/auth/logout",
            {"refresh_token": refresh_token},
            format="json",
            **bearer(mine["access_token"]),
        )
        assert (response.status_code, response.json()["code"]) == (401, "token_invalid")
    for pair in (mine, theirs):
        assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200


def ended_behind_the_api(access_token):
    """End the token's session in the database alone, as a logout whose UPDATE committed after
    its 503 did (PostgreSQL froze), or one whose facts Redis lost: no fact in the cache."""
    from django.utils import timezone

    from apps.accounts.models import RefreshSession
    from apps.common.tokens import REVOKED_SID_KEY, SimpleJWTAccessTokenVerifier

    sid = AccessToken(access_token)["sid"]
    ended = RefreshSession.objects.filter(id=sid).update(
        revoked_at=timezone.now(), revoked_reason="logout"
    )
    assert ended == 1
    assert cache.get(REVOKED_SID_KEY.format(sid)) is None
    assert SimpleJWTAccessTokenVerifier().verify(access_token).is_ok()  # passes the gateway
    return sid


def test_a_retried_logout_denies_every_access_token_of_the_session_at_the_gateway(
    api_client, alice
):
    # The retry answered 204 but denied only the presented access token: the session's other
    # access tokens still passed the gateway, which checks the cache's facts alone.
    from apps.common.tokens import REVOKED_SID_KEY, SimpleJWTAccessTokenVerifier
    from core.domain.shared.identity import TokenError

    first = login(api_client, "alice@example.com")
    latest = api_client.post(
        "/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}
    ).json()
    sid = ended_behind_the_api(first["access_token"])
    response = api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": latest["refresh_token"]},
        format="json",
        **bearer(latest["access_token"]),
    )
    assert response.status_code == 204
    assert cache.get(REVOKED_SID_KEY.format(sid)) is not None  # the gateway's fact
    for token in (first["access_token"], latest["access_token"]):
        assert SimpleJWTAccessTokenVerifier().verify(token).unwrap_err() == TokenError.REVOKED
