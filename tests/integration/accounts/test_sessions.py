"""GET /api/v1/auth/sessions and DELETE /api/v1/auth/sessions/{id}."""

import uuid

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework_simplejwt.tokens import AccessToken

from tests.integration.accounts.conftest import (
    assert_refused_alike,
    bearer,
    ended_and_live_session,
    forget_revocation_facts,
    login,
    logout,
)

pytestmark = pytest.mark.django_db(databases=["default"])


def test_sessions_lists_live_families_with_agent_and_ip(api_client, alice):
    login(api_client, "alice@example.com", HTTP_USER_AGENT="curl/8")
    pair = login(api_client, "alice@example.com", HTTP_USER_AGENT="firefox")
    response = api_client.get("/api/v1/auth/sessions", **bearer(pair["access_token"]))
    assert response.status_code == 200
    sessions = response.json()
    assert [s["user_agent"] for s in sessions] == ["firefox", "curl/8"]
    assert sessions[0]["ip"] == "127.0.0.1"
    assert set(sessions[0]) == {"id", "created_at", "last_used_at", "user_agent", "ip"}


def test_only_live_families_are_listed_and_a_refresh_marks_its_use(api_client, alice, clock):
    from datetime import timedelta

    from apps.accounts.models import RefreshSession

    started = clock.now()
    mine = login(api_client, "alice@example.com", HTTP_USER_AGENT="mine")
    logout(api_client, login(api_client, "alice@example.com", HTTP_USER_AGENT="logged out"))
    login(api_client, "alice@example.com", HTTP_USER_AGENT="expired")
    RefreshSession.objects.filter(user_agent="expired").update(
        expires_at=started - timedelta(seconds=1)
    )
    clock.advance(seconds=5)
    rotated = api_client.post("/api/v1/auth/refresh", {"refresh_token": mine["refresh_token"]})
    response = api_client.get("/api/v1/auth/sessions", **bearer(rotated.json()["access_token"]))
    [session] = response.json()
    assert session["user_agent"] == "mine"
    assert parse_datetime(session["created_at"]) == started
    assert parse_datetime(session["last_used_at"]) == clock.now()


def test_revoking_a_session_ends_its_tokens(api_client, alice):
    other = login(api_client, "alice@example.com", HTTP_USER_AGENT="old laptop")
    mine = login(api_client, "alice@example.com")
    sessions = api_client.get("/api/v1/auth/sessions", **bearer(mine["access_token"])).json()
    target = next(s["id"] for s in sessions if s["user_agent"] == "old laptop")
    response = api_client.delete(f"/api/v1/auth/sessions/{target}", **bearer(mine["access_token"]))
    assert response.status_code == 204
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 401
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 401
    again = api_client.delete(f"/api/v1/auth/sessions/{target}", **bearer(mine["access_token"]))
    assert again.status_code == 404


def test_someone_elses_session_is_404(api_client, alice, bob):
    login(api_client, "bob@example.com")
    mine = login(api_client, "alice@example.com")
    from apps.accounts.models import RefreshSession

    bobs = RefreshSession.objects.get(user__email="bob@example.com")
    response = api_client.delete(f"/api/v1/auth/sessions/{bobs.id}", **bearer(mine["access_token"]))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    unknown = api_client.delete(
        f"/api/v1/auth/sessions/{uuid.uuid4()}", **bearer(mine["access_token"])
    )
    assert unknown.status_code == 404


def test_an_upper_case_session_id_is_the_same_session(api_client, alice):
    other = login(api_client, "alice@example.com", HTTP_USER_AGENT="old laptop")
    mine = login(api_client, "alice@example.com")
    sessions = api_client.get("/api/v1/auth/sessions", **bearer(mine["access_token"])).json()
    target = next(s["id"] for s in sessions if s["user_agent"] == "old laptop")
    url = f"/api/v1/auth/sessions/{target.upper()}"
    assert api_client.delete(url, **bearer(mine["access_token"])).status_code == 204
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 401


def test_a_malformed_session_id_is_the_sessions_404(api_client, alice):
    mine = login(api_client, "alice@example.com")
    response = api_client.delete("/api/v1/auth/sessions/not-a-uuid", **bearer(mine["access_token"]))
    assert response.status_code == 404
    body = response.json()
    assert (body["code"], body["detail"]) == ("not_found", "You have no live session with this id.")


@pytest.mark.parametrize(
    "spell",
    [
        lambda sid: uuid.UUID(sid).hex,
        lambda sid: "{" + sid + "}",
        lambda sid: "urn:uuid:" + sid,
        lambda sid: uuid.UUID(sid).hex.upper(),
    ],
    ids=["hyphen-less", "braces", "urn", "hyphen-less-upper"],
)
def test_only_the_canonical_form_of_a_session_id_names_the_session(api_client, alice, spell):
    other = login(api_client, "alice@example.com", HTTP_USER_AGENT="old laptop")
    mine = login(api_client, "alice@example.com")
    sessions = api_client.get("/api/v1/auth/sessions", **bearer(mine["access_token"])).json()
    target = next(s["id"] for s in sessions if s["user_agent"] == "old laptop")
    response = api_client.delete(
        f"/api/v1/auth/sessions/{spell(target)}", **bearer(mine["access_token"])
    )
    assert response.status_code == 404, response.content
    body = response.json()
    assert (body["code"], body["detail"]) == ("not_found", "You have no live session with this id.")
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200


def test_sessions_need_a_token(api_client):
    assert api_client.get("/api/v1/auth/sessions").status_code == 401


def test_revoking_a_session_ends_its_access_tokens_from_before_a_rotation(api_client, alice):
    other = login(api_client, "alice@example.com", HTTP_USER_AGENT="old laptop")
    rotated = api_client.post("/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    mine = login(api_client, "alice@example.com")
    sessions = api_client.get("/api/v1/auth/sessions", **bearer(mine["access_token"])).json()
    target = next(s["id"] for s in sessions if s["user_agent"] == "old laptop")
    response = api_client.delete(f"/api/v1/auth/sessions/{target}", **bearer(mine["access_token"]))
    assert response.status_code == 204
    for token in (other["access_token"], rotated.json()["access_token"]):
        me = api_client.get("/api/v1/auth/me", **bearer(token))
        assert (me.status_code, me.json()["code"]) == (401, "token_revoked")
    assert api_client.get("/api/v1/auth/me", **bearer(mine["access_token"])).status_code == 200


def test_a_token_of_an_ended_session_lists_and_ends_nothing_after_the_cache_lost_the_fact(
    api_client, alice
):
    victim, other = ended_and_live_session(api_client)
    token = victim["access_token"]
    by_cache = api_client.get("/api/v1/auth/sessions", **bearer(token))
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    listed = api_client.get("/api/v1/auth/sessions", **bearer(token))
    other_sid = AccessToken(other["access_token"])["sid"]
    ended = api_client.delete(f"/api/v1/auth/sessions/{other_sid}", **bearer(token))
    for response in (listed, ended):
        assert_refused_alike(response, by_cache)
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200


def test_a_retried_delete_denies_the_sessions_access_tokens_at_the_gateway(api_client, alice):
    # The retry of a delete whose UPDATE committed after its 503 found nothing live (404) and
    # denied nothing: the session's access tokens still passed the gateway (the cache alone).
    from django.core.cache import cache

    from apps.common.tokens import REVOKED_SID_KEY, SimpleJWTAccessTokenVerifier
    from tests.integration.accounts.test_logout import ended_behind_the_api

    other = login(api_client, "alice@example.com", HTTP_USER_AGENT="old laptop")
    mine = login(api_client, "alice@example.com")
    sid = ended_behind_the_api(other["access_token"])
    again = api_client.delete(f"/api/v1/auth/sessions/{sid}", **bearer(mine["access_token"]))
    assert again.status_code == 404  # nothing live to end, as before
    assert cache.get(REVOKED_SID_KEY.format(sid)) is not None
    assert SimpleJWTAccessTokenVerifier().verify(other["access_token"]).is_err()
    assert api_client.get("/api/v1/auth/me", **bearer(mine["access_token"])).status_code == 200
