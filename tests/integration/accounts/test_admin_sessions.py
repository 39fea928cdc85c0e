"""Django admin's cookie sessions end with the API's: every event that ends all of a user's
sessions (logout-all, the admin's "revoke sessions", leaving `active`, a password reset) signs
their Django admin out too; a change of roles, which keeps sessions, does not."""

import pytest
from django.test import Client

from tests.factories.accounts import PASSWORD, AdminFactory
from tests.integration.accounts.conftest import bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])

USERS_PAGE = "/admin/accounts/user/"


@pytest.fixture
def root(db):
    return AdminFactory(email="root@example.com", full_name="Root Admin", is_superuser=True)


@pytest.fixture
def other_root(db):
    return AdminFactory(email="other@example.com", full_name="Other Admin", is_superuser=True)


def signed_in(client, email):
    """`client` signed in through Django admin's own form (the cookie session)."""
    response = client.post("/admin/login/?next=/admin/", {"username": email, "password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/admin/"), response.content
    assert client.get(USERS_PAGE).status_code == 200
    return client


def assert_signed_out(client):
    page = client.get(USERS_PAGE)
    assert page.status_code == 302, page
    assert page["Location"].startswith("/admin/login/")
    assert "_auth_user_id" not in client.session


def test_logout_all_signs_the_django_admin_out(client, api_client, root):
    browser = signed_in(client, "root@example.com")
    pair = login(api_client, "root@example.com")
    ended = api_client.post("/api/v1/auth/logout-all", **bearer(pair["access_token"]))
    assert ended.status_code == 204
    assert_signed_out(browser)
    # A new sign-in works, and stays signed in.
    assert signed_in(browser, "root@example.com").get(USERS_PAGE).status_code == 200


def test_the_admins_revoke_sessions_action_signs_that_admin_out(client, root, other_root):
    victim = signed_in(Client(), "other@example.com")
    acting = signed_in(client, "root@example.com")
    response = acting.post(
        USERS_PAGE, {"action": "revoke_sessions", "_selected_action": [str(other_root.pk)]}
    )
    assert response.status_code == 302
    assert_signed_out(victim)
    assert acting.get(USERS_PAGE).status_code == 200  # only the selected user's sessions


def test_a_suspended_admin_reactivated_is_not_signed_in_again(client, root, other_root):
    victim = signed_in(Client(), "other@example.com")
    acting = signed_in(client, "root@example.com")
    for action in ("suspend", "activate"):
        acting.post(USERS_PAGE, {"action": action, "_selected_action": [str(other_root.pk)]})
    assert_signed_out(victim)


def test_a_password_reset_signs_the_django_admin_out(client, api_client, root):
    browser = signed_in(client, "root@example.com")
    api_client.post("/api/v1/auth/password/reset", {"email": "root@example.com"})
    reset = api_client.post(
        "/api/v1/auth/password/reset/confirm",
        {"token": last_mailed_token(), "new_password": "another-good-5"},
    )
    assert reset.status_code == 204
    assert_signed_out(browser)


def test_a_password_change_over_the_api_signs_the_django_admin_out(client, api_client, root):
    # The API keeps the session of the token that changed it; the browser's is another one
    # ("all other sessions revoked").
    browser = signed_in(client, "root@example.com")
    pair = login(api_client, "root@example.com")
    changed = api_client.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": "another-good-5"},
        **bearer(pair["access_token"]),
    )
    assert changed.status_code == 204
    assert_signed_out(browser)
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200


def test_changing_ones_own_password_in_the_admin_keeps_that_admin_signed_in(client, root):
    elsewhere = signed_in(Client(), "root@example.com")
    browser = signed_in(client, "root@example.com")
    response = browser.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "admin-chosen-pass-5",
            "new_password2": "admin-chosen-pass-5",
        },
    )
    assert response.status_code == 302, response.content
    assert browser.get(USERS_PAGE).status_code == 200  # as Django keeps it
    assert_signed_out(elsewhere)


def test_setting_ones_own_password_on_ones_user_page_keeps_that_admin_signed_in(client, root):
    browser = signed_in(client, "root@example.com")
    response = browser.post(
        f"{USERS_PAGE}{root.pk}/password/",
        {"password1": "admin-chosen-pass-5", "password2": "admin-chosen-pass-5"},
    )
    assert response.status_code == 302, response.content
    assert browser.get(USERS_PAGE).status_code == 200


def test_a_change_of_roles_keeps_the_django_admin_signed_in(client, api_client, root, other_root):
    # Roles revoke the access tokens that carry the old ones, but sessions go on.
    browser = signed_in(client, "root@example.com")
    pair = login(api_client, "other@example.com")
    changed = api_client.patch(
        f"/api/v1/users/{root.pk}",
        {"roles": ["user", "admin", "billing"]},
        **bearer(pair["access_token"]),
    )
    assert changed.status_code == 200, changed.content
    assert browser.get(USERS_PAGE).status_code == 200
