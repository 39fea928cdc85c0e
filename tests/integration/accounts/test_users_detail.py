"""GET and PATCH /api/v1/users/{id}."""

import uuid

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories.accounts import AdminFactory
from tests.integration.accounts.conftest import (
    assert_refused_alike,
    bearer,
    forget_revocation_facts,
    login,
    logout,
)

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def admin_token(api_client, admin_user):
    return login(api_client, "root@example.com")["access_token"]


def test_a_user_reads_themself_but_nobody_else(api_client, alice, bob):
    token = login(api_client, "alice@example.com")["access_token"]
    assert api_client.get(f"/api/v1/users/{alice.id}", **bearer(token)).status_code == 200
    assert api_client.get(f"/api/v1/users/{bob.id}", **bearer(token)).status_code == 403
    assert api_client.get(f"/api/v1/users/{uuid.uuid4()}", **bearer(token)).status_code == 403


def test_an_admin_reads_anyone_and_unknown_ids_are_404(api_client, admin_token, bob):
    response = api_client.get(f"/api/v1/users/{bob.id}", **bearer(admin_token))
    assert response.json()["email"] == "bob@example.com"
    missing = api_client.get(f"/api/v1/users/{uuid.uuid4()}", **bearer(admin_token))
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_an_upper_case_id_is_the_same_user(api_client, admin_token, alice, bob):
    token = login(api_client, "alice@example.com")["access_token"]
    upper = str(alice.id).upper()
    assert api_client.get(f"/api/v1/users/{upper}", **bearer(token)).json()["id"] == str(alice.id)
    changed = api_client.patch(
        f"/api/v1/users/{str(bob.id).upper()}", {"full_name": "Robert"}, **bearer(admin_token)
    )
    assert (changed.status_code, changed.json()["full_name"]) == (200, "Robert")


@pytest.mark.parametrize(
    "spell",
    [
        lambda uid: uid.hex,
        lambda uid: "{" + str(uid) + "}",
        lambda uid: "urn:uuid:" + str(uid),
        lambda uid: uid.hex.upper(),
    ],
    ids=["hyphen-less", "braces", "urn", "hyphen-less-upper"],
)
def test_only_the_canonical_form_of_an_id_names_the_user(api_client, admin_token, alice, spell):
    user_id = spell(alice.id)
    for response in (
        api_client.get(f"/api/v1/users/{user_id}", **bearer(admin_token)),
        api_client.patch(f"/api/v1/users/{user_id}", {"full_name": "x"}, **bearer(admin_token)),
    ):
        assert response.status_code == 404, (user_id, response.content)
        body = response.json()
        assert (body["code"], body["detail"]) == ("not_found", "No user has this id.")
    alice.refresh_from_db()
    assert alice.full_name == "Alice Liddell"


@pytest.mark.parametrize("user_id", ["not-a-uuid", "12345", "0" * 33])
def test_a_malformed_id_is_the_users_404(api_client, admin_token, user_id):
    for response in (
        api_client.get(f"/api/v1/users/{user_id}", **bearer(admin_token)),
        api_client.patch(f"/api/v1/users/{user_id}", {"full_name": "x"}, **bearer(admin_token)),
    ):
        assert response.status_code == 404
        body = response.json()
        assert (body["code"], body["detail"]) == ("not_found", "No user has this id.")


@pytest.mark.parametrize("status", ["suspended", "inactive", "deleted"])
def test_leaving_active_revokes_the_users_tokens(api_client, admin_token, bob, status):
    pair = login(api_client, "bob@example.com")
    response = api_client.patch(
        f"/api/v1/users/{bob.id}", {"status": status}, **bearer(admin_token)
    )
    assert response.status_code == 200
    assert response.json()["status"] == status
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401


def test_illegal_transitions_are_400(api_client, admin_token, bob):
    url = f"/api/v1/users/{bob.id}"
    assert api_client.patch(url, {"status": "deleted"}, **bearer(admin_token)).status_code == 200
    response = api_client.patch(url, {"status": "active"}, **bearer(admin_token))
    assert (response.status_code, response.json()["code"]) == (400, "illegal_status_transition")
    response = api_client.patch(url, {"roles": ["user", "admin"]}, **bearer(admin_token))
    assert (response.status_code, response.json()["code"]) == (400, "user_deleted")
    assert api_client.get(url, **bearer(admin_token)).json()["roles"] == ["user"]


def test_changing_roles_reissues_roles_on_refresh(api_client, admin_token, bob):
    pair = login(api_client, "bob@example.com")
    response = api_client.patch(
        f"/api/v1/users/{bob.id}",
        {"roles": ["user", "admin"], "full_name": "Bob the Admin"},
        **bearer(admin_token),
    )
    assert response.json()["roles"] == ["user", "admin"]
    assert response.json()["full_name"] == "Bob the Admin"
    # The old access token carried the old roles: it is revoked; the session survives.
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    fresh = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert (
        api_client.get("/api/v1/users", **bearer(fresh.json()["access_token"])).status_code == 200
    )


@pytest.mark.parametrize(
    ("roles", "field"),
    [
        ([1], "roles.0"),
        (["user", "Not A Role"], "roles.1"),
        (["user", None], "roles.1"),
        (["user", {"name": "admin"}], "roles.1"),
        ("admin", "roles"),
    ],
)
def test_a_malformed_role_is_a_field_error(api_client, admin_token, bob, roles, field):
    response = api_client.patch(f"/api/v1/users/{bob.id}", {"roles": roles}, **bearer(admin_token))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["errors"]) == [field]
    assert body["errors"][field]
    bob.refresh_from_db()
    assert bob.roles == ["user"]


@pytest.mark.parametrize(
    "body",
    [{"email": "x@y.io"}, {"email_verified": False, "full_name": "Bobby"}, {"is_staff": True}],
)
def test_a_field_the_api_does_not_change_is_a_field_error(api_client, admin_token, bob, body):
    # As the gateway's and aggregation's admin APIs answer: ignored, a mistyped or
    # unchangeable field answered 200 and changed nothing.
    response = api_client.patch(f"/api/v1/users/{bob.id}", body, **bearer(admin_token))
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["code"] == "validation_error"
    unknown = {name for name in body if name != "full_name"}
    assert problem["errors"] == {name: ["Unknown field."] for name in unknown}
    bob.refresh_from_db()
    assert (bob.email, bob.full_name, bob.email_verified, bob.is_staff) == (
        "bob@example.com",
        "Bob Builder",
        True,
        False,
    )


def test_patch_needs_the_admin_role_and_a_known_user(api_client, admin_token, alice, bob):
    token = login(api_client, "alice@example.com")["access_token"]
    denied = api_client.patch(f"/api/v1/users/{alice.id}", {"roles": ["admin"]}, **bearer(token))
    assert denied.status_code == 403
    missing = api_client.patch(
        f"/api/v1/users/{uuid.uuid4()}", {"full_name": "x"}, **bearer(admin_token)
    )
    assert missing.status_code == 404


def _demoted(api_client, admin_pair):
    other = AdminFactory(email="second@example.com")
    second = login(api_client, other.email)["access_token"]
    root = AccessToken(admin_pair["access_token"])["sub"]
    demoted = api_client.patch(f"/api/v1/users/{root}", {"roles": ["user"]}, **bearer(second))
    assert demoted.status_code == 200, demoted.content


@pytest.mark.parametrize(
    "revoke", [lambda client, pair: logout(client, pair), _demoted], ids=["logout", "demoted"]
)
def test_an_admin_token_revoked_reads_and_changes_nobody_after_the_cache_lost_the_fact(
    api_client, admin_user, bob, revoke
):
    pair = login(api_client, "root@example.com")
    revoke(api_client, pair)
    token = pair["access_token"]
    by_cache = api_client.get(f"/api/v1/users/{bob.id}", **bearer(token))
    assert (by_cache.status_code, by_cache.json()["code"]) == (401, "token_revoked")
    forget_revocation_facts(token)
    for response in (
        api_client.get("/api/v1/users", **bearer(token)),
        api_client.get(f"/api/v1/users/{bob.id}", **bearer(token)),
        api_client.patch(f"/api/v1/users/{bob.id}", {"status": "suspended"}, **bearer(token)),
    ):
        assert_refused_alike(response, by_cache)
    bob.refresh_from_db()
    assert bob.status == "active"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"roles": ["user"]}, "roles"),
        ({"roles": [], "full_name": "Nobody"}, "roles"),
        ({"status": "suspended"}, "status"),
        ({"status": "inactive"}, "status"),
        ({"status": "deleted"}, "status"),
    ],
)
def test_the_last_active_admin_cannot_demote_or_end_themself(
    api_client, admin_user, bob, body, field
):
    # Another admin who cannot sign in does not count: suspended, or not verified.
    AdminFactory(email="suspended@example.com", status="suspended")
    AdminFactory(email="pending@example.com", email_verified=False)
    pair = login(api_client, "root@example.com")
    url = f"/api/v1/users/{admin_user.id}"
    response = api_client.patch(url, body, **bearer(pair["access_token"]))
    assert response.status_code == 400, response.content
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert list(problem["errors"]) == [field]
    assert "no active admin" in problem["errors"][field][0]
    before = (admin_user.roles, admin_user.status, admin_user.full_name, admin_user.is_staff)
    admin_user.refresh_from_db()
    assert (
        admin_user.roles,
        admin_user.status,
        admin_user.full_name,
        admin_user.is_staff,
    ) == before
    assert admin_user.tokens_valid_after is None
    # Nothing was revoked: the admin goes on administering with the same token and session.
    token = pair["access_token"]
    assert api_client.get(f"/api/v1/users/{bob.id}", **bearer(token)).status_code == 200
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200


def test_an_admin_is_demoted_while_another_active_admin_remains(api_client, admin_user):
    second = AdminFactory(email="second@example.com")
    token = login(api_client, "root@example.com")["access_token"]
    demoted = api_client.patch(f"/api/v1/users/{second.id}", {"roles": ["user"]}, **bearer(token))
    assert (demoted.status_code, demoted.json()["roles"]) == (200, ["user"])
    # Now root is the last one, and keeps the role.
    itself = api_client.patch(
        f"/api/v1/users/{admin_user.id}", {"roles": ["user"]}, **bearer(token)
    )
    assert (itself.status_code, list(itself.json()["errors"])) == (400, ["roles"])
