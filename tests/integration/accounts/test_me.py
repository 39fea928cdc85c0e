"""GET and PATCH /api/v1/auth/me."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories.accounts import PASSWORD
from tests.integration.accounts.conftest import (
    assert_refused_alike,
    bearer,
    forget_revocation_facts,
    login,
    logout,
)

pytestmark = pytest.mark.django_db(databases=["default"])


def test_me_costs_one_query_for_the_user_and_none_for_auth(
    api_client, alice, django_assert_num_queries
):
    pair = login(api_client, "alice@example.com")
    with django_assert_num_queries(1):
        response = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert response.json()["email"] == "alice@example.com"
    assert "password" not in response.json()


def test_patch_me_changes_only_the_name(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = api_client.patch(
        "/api/v1/auth/me",
        {
            "full_name": "  Alice P. Liddell ",
            "roles": ["admin"],
            "status": "suspended",
            "email_verified": False,
            "is_staff": True,
        },
        **bearer(pair["access_token"]),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["full_name"] == "Alice P. Liddell"
    assert (body["roles"], body["status"], body["email_verified"]) == (["user"], "active", True)
    alice.refresh_from_db()
    assert alice.is_staff is False


def test_patch_me_validates(api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = api_client.patch(
        "/api/v1/auth/me", {"full_name": "x" * 201}, **bearer(pair["access_token"])
    )
    assert response.status_code == 400
    assert "full_name" in response.json()["errors"]


def test_me_needs_a_token(api_client):
    response = api_client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


ME_ALLOWS = "GET, PATCH, HEAD, OPTIONS"


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "BREW"])
def test_an_unsupported_method_is_405_before_the_token_is_asked_for(api_client, alice, method):
    pair = login(api_client, "alice@example.com")
    for headers in ({}, bearer("forged"), bearer(pair["access_token"])):
        response = api_client.generic(method, "/api/v1/auth/me", **headers)
        assert response.status_code == 405, (headers, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "method_not_allowed"
        assert response["Allow"] == ME_ALLOWS
        assert "no-store" in response["Cache-Control"]  # as every answer of the accounts API
        assert "WWW-Authenticate" not in response


def test_options_and_head_still_need_the_token(api_client, alice):
    pair = login(api_client, "alice@example.com")
    for method in ("OPTIONS", "HEAD"):
        refused = api_client.generic(method, "/api/v1/auth/me")
        assert (refused.status_code, refused["WWW-Authenticate"]) == (401, 'Bearer realm="api"')
        answered = api_client.generic(method, "/api/v1/auth/me", **bearer(pair["access_token"]))
        assert (answered.status_code, answered["Allow"]) == (200, ME_ALLOWS), method


def test_me_of_a_deleted_user_is_401(api_client, alice):
    pair = login(api_client, "alice@example.com")
    alice.status = "deleted"
    alice.save()
    response = api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    assert response.status_code == 401
    patch = api_client.patch("/api/v1/auth/me", {"full_name": "x"}, **bearer(pair["access_token"]))
    assert patch.status_code == 401


def assert_refused_as_revoked(api_client, access_token, revoked_by_cache):
    for response in (
        api_client.get("/api/v1/auth/me", **bearer(access_token)),
        api_client.patch("/api/v1/auth/me", {"full_name": "Mallory"}, **bearer(access_token)),
    ):
        assert_refused_alike(response, revoked_by_cache)


def test_a_suspended_users_token_is_refused_on_me_after_the_cache_lost_the_fact(
    api_client, alice, admin_user
):
    token = login(api_client, "alice@example.com")["access_token"]
    admin = login(api_client, "root@example.com")["access_token"]
    suspended = api_client.patch(
        f"/api/v1/users/{alice.id}", {"status": "suspended"}, **bearer(admin)
    )
    assert suspended.status_code == 200, suspended.content
    by_cache = api_client.get("/api/v1/auth/me", **bearer(token))
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    assert_refused_as_revoked(api_client, token, by_cache)
    change = api_client.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "fresh-orchard-lantern-4"},
        **bearer(token),
    )
    assert change.json() == by_cache.json()  # password change loads the user too
    alice.refresh_from_db()
    assert alice.full_name == "Alice Liddell"
    assert alice.check_password(PASSWORD)


def test_a_token_cut_off_by_logout_all_is_refused_on_me_after_the_cache_lost_the_fact(
    api_client, alice, clock
):
    token = login(api_client, "alice@example.com")["access_token"]
    clock.advance(seconds=1)  # the cut-off has whole seconds, as `iat` has
    assert api_client.post("/api/v1/auth/logout-all", **bearer(token)).status_code == 204
    by_cache = api_client.get("/api/v1/auth/me", **bearer(token))
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    assert_refused_as_revoked(api_client, token, by_cache)
    alice.refresh_from_db()
    assert alice.full_name == "Alice Liddell"


def _log_out(api_client, victim, other):
    logout(api_client, victim)


def _delete_the_session(api_client, victim, other):
    sid = AccessToken(victim["access_token"])["sid"]
    response = api_client.delete(f"/api/v1/auth/sessions/{sid}", **bearer(other["access_token"]))
    assert response.status_code == 204, response.content


def _change_the_password_elsewhere(api_client, victim, other):
    response = api_client.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "fresh-orchard-lantern-4"},
        **bearer(other["access_token"]),
    )
    assert response.status_code == 204, response.content


def _reuse_its_refresh_token(api_client, victim, other):
    for expected in (200, 401):
        response = api_client.post(
            "/api/v1/auth/refresh", {"refresh_token": victim["refresh_token"]}
        )
        assert response.status_code == expected, response.content


@pytest.mark.parametrize(
    "end_the_session",
    [_log_out, _delete_the_session, _change_the_password_elsewhere, _reuse_its_refresh_token],
    ids=["logout", "session-delete", "password-change", "refresh-reuse"],
)
def test_a_token_whose_session_ended_is_refused_on_me_after_the_cache_lost_the_fact(
    api_client, alice, end_the_session
):
    victim = login(api_client, "alice@example.com")
    other = login(api_client, "alice@example.com")
    end_the_session(api_client, victim, other)
    token = victim["access_token"]
    by_cache = api_client.get("/api/v1/auth/me", **bearer(token))
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    assert_refused_as_revoked(api_client, token, by_cache)
    alice.refresh_from_db()
    assert alice.full_name == "Alice Liddell"
    # The user's other session is untouched: its token checks against its own session.
    assert api_client.get("/api/v1/auth/me", **bearer(other["access_token"])).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        # Not a JSON string: DRF took 0 as "0".
        0,
        1.5,
        True,
        ["Alice"],
        # Not one line of text (`is_valid_full_name`).
        "a\u0007\r\nb",
        "line\none",
        "x\u2028y",
    ],
)
def test_a_name_the_api_does_not_take_is_refused_and_nothing_changes(api_client, alice, value):
    pair = login(api_client, "alice@example.com")
    response = api_client.patch(
        "/api/v1/auth/me", {"full_name": value}, format="json", **bearer(pair["access_token"])
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert list(response.json()["errors"]) == ["full_name"]
    alice.refresh_from_db()
    assert alice.full_name == "Alice Liddell"
