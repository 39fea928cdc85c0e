"""Django admin for users."""

import pytest
from django.contrib.admin.models import DELETION, LogEntry

from apps.accounts.models import User
from apps.common.tokens import SimpleJWTAccessTokenVerifier
from tests.factories.accounts import PASSWORD, AdminFactory
from tests.integration.accounts.conftest import assert_sealed, bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def admin_site(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    return client


def test_admin_searches_and_filters_users(admin_site, alice, bob):
    page = admin_site.get("/admin/accounts/user/?q=alice")
    assert page.status_code == 200
    assert b"alice@example.com" in page.content
    assert b"bob@example.com" not in page.content
    admins = admin_site.get("/admin/accounts/user/?role=admin&status__exact=active")
    assert b"root@example.com" in admins.content
    assert b"alice@example.com" not in admins.content
    assert admin_site.get(f"/admin/accounts/user/{alice.id}/change/").status_code == 200


def test_admin_suspend_action_revokes_tokens(admin_site, api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = admin_site.post(
        "/admin/accounts/user/", {"action": "suspend", "_selected_action": [str(alice.id)]}
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.status == "suspended"
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [("deactivate", "status", "inactive"), ("activate", "status", "active")],
)
def test_admin_status_actions(admin_site, alice, action, field, value):
    admin_site.post("/admin/accounts/user/", {"action": action, "_selected_action": [alice.id]})
    alice.refresh_from_db()
    assert getattr(alice, field) == value


def test_admin_verify_and_revoke_actions(admin_site, api_client, alice):
    alice.email_verified = False
    alice.save()
    admin_site.post(
        "/admin/accounts/user/", {"action": "verify_email", "_selected_action": [alice.id]}
    )
    pair = login(api_client, "alice@example.com")
    admin_site.post(
        "/admin/accounts/user/", {"action": "revoke_sessions", "_selected_action": [alice.id]}
    )
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401


def test_admin_skips_illegal_transitions(admin_site, alice):
    alice.status = "deleted"
    alice.save()
    response = admin_site.post(
        "/admin/accounts/user/",
        {"action": "activate", "_selected_action": [alice.id]},
        follow=True,
    )
    assert b"skipped" in response.content
    alice.refresh_from_db()
    assert alice.status == "deleted"


def test_admin_actions_say_why_they_skipped_a_user(admin_site, alice):
    alice.status, alice.email_verified = "deleted", False
    alice.save()

    def warnings(action):
        response = admin_site.post(
            "/admin/accounts/user/", {"action": action, "_selected_action": [alice.id]}, follow=True
        )
        return [m.message for m in response.context["messages"] if m.level_tag == "warning"]

    assert warnings("verify_email") == ["1 user(s) skipped: their account is deleted."]
    assert warnings("activate") == ["1 user(s) skipped: that status change is not allowed."]
    alice.refresh_from_db()
    assert (alice.status, alice.email_verified) == ("deleted", False)


def test_admin_creates_users_through_the_hasher(admin_site):
    response = admin_site.post(
        "/admin/accounts/user/add/",
        {
            "email": " Carol@Example.com",
            "full_name": "Carol",
            "password1": "solid-granite-pass-3",
            "password2": "solid-granite-pass-3",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content
    carol = User.objects.get(email="carol@example.com")
    assert carol.password.startswith("bcrypt_sha256$")
    assert carol.roles == ["user"]
    dup = admin_site.post(
        "/admin/accounts/user/add/",
        {
            "email": "CAROL@example.com",
            "password1": "solid-granite-pass-3",
            "password2": "solid-granite-pass-3",
            "usable_password": "true",
        },
    )
    assert dup.status_code == 200


@pytest.mark.parametrize("password", [" " * 20, "carol@example.org", "\uffa0" * 12])
def test_the_admin_refuses_passwords_the_api_refuses(admin_site, password):
    response = admin_site.post(
        "/admin/accounts/user/add/",
        {
            "email": "carol@example.com",
            "password1": password,
            "password2": password,
            "usable_password": "true",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert not User.objects.filter(email="carol@example.com").exists()


def test_the_admin_normalises_an_email_before_validating_it_as_the_api_does(admin_site, alice):
    def add(email):
        return admin_site.post(
            "/admin/accounts/user/add/",
            {
                "email": email,
                "password1": "solid-granite-pass-3",
                "password2": "solid-granite-pass-3",
                "usable_password": "true",
            },
        )

    assert add("xİ@example.com").status_code == 200  # the form again, with its error
    # Refused before case folding, not stored as ss@, k@ or dave@ (fullwidth DAVE).
    for folding in ("ß@example.com", "\u212a@example.com", "\uff24\uff21\uff36\uff25@x.io"):
        assert add(folding).context["adminform"].form.errors["email"], folding
    assert add("Dave@\uff25xample.com").status_code == 302  # a fullwidth E in the host
    assert set(User.objects.values_list("email", flat=True)) == {
        "alice@example.com",
        "dave@example.com",
        "root@example.com",
    }
    change = admin_site.get(f"/admin/accounts/user/{alice.id}/change/")
    form = change.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(email="josé@example.com", groups=[], roles='["user"]')
    refused = admin_site.post(f"/admin/accounts/user/{alice.id}/change/", data)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["email"]
    data.update(email=" ALICE.L@Example.com ")
    saved = admin_site.post(f"/admin/accounts/user/{alice.id}/change/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    alice.refresh_from_db()
    assert alice.email == "alice.l@example.com"


def test_a_password_set_in_the_admin_ends_the_users_sessions(admin_site, api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = admin_site.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": "admin-chosen-pass-5", "password2": "admin-chosen-pass-5"},
    )
    assert response.status_code == 302, response.content
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    assert login(api_client, "alice@example.com", "admin-chosen-pass-5")


def test_a_password_set_in_the_admin_stops_the_reset_links_mailed_before(
    admin_site, api_client, alice
):
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    token = last_mailed_token()
    response = admin_site.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": "admin-chosen-pass-5", "password2": "admin-chosen-pass-5"},
    )
    assert response.status_code == 302, response.content
    reset = api_client.post(
        "/api/v1/auth/password/reset/confirm", {"token": token, "new_password": "another-good-5"}
    )
    assert (reset.status_code, reset.json()["code"]) == (400, "invalid_token")
    assert login(api_client, "alice@example.com", "admin-chosen-pass-5")


def test_changing_ones_own_password_in_the_admin_ends_ones_sessions_and_reset_links(
    admin_site, api_client, admin_user
):
    # Django's own page (/admin/password_change/), not the user's: an admin who suspects a
    # compromise changes their password here, and the attacker's refresh family must end.
    pair = login(api_client, admin_user.email)
    api_client.post("/api/v1/auth/password/reset", {"email": admin_user.email})
    token = last_mailed_token()
    response = admin_site.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "admin-chosen-pass-5",
            "new_password2": "admin-chosen-pass-5",
        },
    )
    assert response.status_code == 302, response.content
    assert_sealed(api_client, pair, token)
    assert login(api_client, admin_user.email, "admin-chosen-pass-5")
    assert admin_site.get("/admin/").status_code == 200  # the admin's own session goes on


def test_a_wrong_current_password_in_the_admin_changes_nothing(admin_site, api_client, admin_user):
    pair = login(api_client, admin_user.email)
    response = admin_site.post(
        "/admin/password_change/",
        {
            "old_password": "not-the-password-1",
            "new_password1": "admin-chosen-pass-5",
            "new_password2": "admin-chosen-pass-5",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200


def test_an_admin_demoted_over_the_api_loses_the_django_admin_too(client, api_client, admin_user):
    # Demoted by another admin (roles without `admin`), a superuser kept the Django admin,
    # where they could give the role back to themselves.
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    assert client.get("/admin/accounts/user/").status_code == 200
    other = login(api_client, AdminFactory(email="other@example.com").email)
    demoted = api_client.patch(
        f"/api/v1/users/{admin_user.id}", {"roles": ["user"]}, **bearer(other["access_token"])
    )
    assert demoted.status_code == 200, demoted.content
    admin_user.refresh_from_db()
    assert (admin_user.is_staff, admin_user.is_superuser) == (False, False)
    assert client.get("/admin/accounts/user/").status_code == 302  # to the sign-in page


def test_a_change_that_keeps_the_admin_role_keeps_the_django_admin(api_client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    other = login(api_client, AdminFactory(email="other@example.com").email)
    changed = api_client.patch(
        f"/api/v1/users/{admin_user.id}",
        {"roles": ["admin", "user", "billing"]},
        **bearer(other["access_token"]),
    )
    assert changed.status_code == 200, changed.content
    admin_user.refresh_from_db()
    assert (admin_user.is_staff, admin_user.is_superuser) == (True, True)


def test_the_admin_refuses_a_name_the_api_refuses(admin_site, alice):
    page = admin_site.get(f"/admin/accounts/user/{alice.id}/change/")
    data = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if value is not None and key not in {"password", "last_login", "date_joined"}
    }
    data.update(full_name="Alice\r\nBcc: everyone", roles='["user"]')
    refused = admin_site.post(f"/admin/accounts/user/{alice.id}/change/", data)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["full_name"]
    alice.refresh_from_db()
    assert alice.full_name == "Alice Liddell"


def test_the_admin_refuses_the_other_spelling_of_a_taken_internationalised_host(admin_site):
    User.objects.create_user("N1@Bücher.example", "solid-granite-pass-3")  # createsuperuser's way
    assert User.objects.filter(email="n1@xn--bcher-kva.example").exists()
    response = admin_site.post(
        "/admin/accounts/user/add/",
        {
            "email": "n1@xn--bcher-kva.example",
            "password1": "solid-granite-pass-3",
            "password2": "solid-granite-pass-3",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors["email"] == [
        "An account with this email already exists."
    ]
    assert User.objects.filter(email__startswith="n1@").count() == 1


def _change_form_data(admin_site, user, **changes):
    """What the change page would post back for `user`, with `changes` applied."""
    form = admin_site.get(f"/admin/accounts/user/{user.id}/change/").context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(groups=[], **changes)
    return data


@pytest.mark.parametrize(
    "roles",
    [
        '"admin"',  # tokens would carry ['a', 'd', 'm', 'i', 'n']
        "[1, null]",  # login would work, then every token is 401 token_invalid
        '{"a": 1}',
        '["ADMIN"]',
        '["' + "a" * 300 + '"]',
        '["admin\\r\\nX-Injected: 1"]',  # every proxied call with that token would be a 500
        "null",  # NOT NULL: a 500
        "",
        '["ad\\u0000min"]',  # Postgres refuses NUL in jsonb: a 500
        '["\\ud800"]',  # a lone surrogate: the form, redisplayed, could not be written out
        "[" + ", ".join(f'"r{n}"' for n in range(21)) + "]",
    ],
)
def test_the_admin_refuses_roles_the_api_refuses(admin_site, alice, roles):
    response = admin_site.post(
        f"/admin/accounts/user/{alice.id}/change/",
        _change_form_data(admin_site, alice, roles=roles),
    )
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["roles"]
    alice.refresh_from_db()
    assert alice.roles == ["user"]


def test_the_admin_stores_each_role_once(admin_site, alice, django_capture_on_commit_callbacks):
    data = _change_form_data(admin_site, alice, roles='["user", "billing:read", "user"]')
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_site.post(f"/admin/accounts/user/{alice.id}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    alice.refresh_from_db()
    assert alice.roles == ["user", "billing:read"]


def test_the_admin_refuses_a_password_too_long_to_log_in_with(admin_site, alice):
    too_long = "k" + "long-but-fine-" * 10
    response = admin_site.post(
        "/admin/accounts/user/add/",
        {
            "email": "carol@example.com",
            "password1": too_long,
            "password2": too_long,
            "usable_password": "true",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert not User.objects.filter(email="carol@example.com").exists()
    changed = admin_site.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": too_long, "password2": too_long, "usable_password": "true"},
    )
    assert changed.status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


@pytest.mark.parametrize(
    "action", ["activate", "suspend", "deactivate", "verify_email", "revoke_sessions"]
)
def test_admin_actions_ignore_ids_that_are_not_user_ids(admin_site, alice, action):
    response = admin_site.post(
        "/admin/accounts/user/",
        {"action": action, "_selected_action": ["notauuid", "1", str(alice.id).replace("-", "")]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"not user ids" in response.content
    alice.refresh_from_db()
    assert alice.status == "active"


def test_admin_actions_apply_to_the_valid_ids_among_malformed_ones(admin_site, alice, bob):
    response = admin_site.post(
        "/admin/accounts/user/",
        {"action": "suspend", "_selected_action": ["notauuid", str(alice.id).upper()]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"1 user(s) suspended" in response.content
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.status, bob.status) == ("suspended", "active")


def test_roles_changed_in_the_admin_revoke_the_tokens_carrying_the_old_ones(
    admin_site, alice, api_client, django_capture_on_commit_callbacks, clock
):
    token = login(api_client, "alice@example.com")["access_token"]
    assert api_client.get("/api/v1/auth/me", **bearer(token)).status_code == 200
    clock.advance(seconds=1)  # into the next second: the cut-off is in whole seconds
    data = _change_form_data(admin_site, alice, roles='["user", "billing:read"]', full_name="A.")
    with django_capture_on_commit_callbacks(execute=True) as committed:
        response = admin_site.post(f"/admin/accounts/user/{alice.id}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert len(committed) == 1  # the roles change waits for the admin's commit
    alice.refresh_from_db()
    assert (alice.roles, alice.full_name) == (["user", "billing:read"], "A.")
    stale = api_client.get("/api/v1/auth/me", **bearer(token))
    assert (stale.status_code, stale.json()["code"]) == (401, "token_revoked")


@pytest.mark.parametrize("how", ["delete view", "delete action"])
def test_deleting_a_user_in_the_admin_revokes_their_tokens(admin_site, api_client, alice, how):
    from apps.common.tokens import SimpleJWTAccessTokenVerifier
    from core.domain.shared.identity import TokenError
    from core.domain.shared.result import Err

    pair = login(api_client, "alice@example.com")
    if how == "delete view":
        response = admin_site.post(f"/admin/accounts/user/{alice.id}/delete/", {"post": "yes"})
    else:
        response = admin_site.post(
            "/admin/accounts/user/",
            {"action": "delete_selected", "_selected_action": [alice.id], "post": "yes"},
        )
    assert response.status_code == 302
    assert not User.objects.filter(pk=alice.id).exists()
    # Where only the cache's facts are asked (the gateway), her token is refused too.
    verified = SimpleJWTAccessTokenVerifier().verify(pair["access_token"])
    assert verified == Err(TokenError.REVOKED)


def _admin_sign_in(client, password):
    return client.post(
        "/admin/login/?next=/admin/", {"username": "root@example.com", "password": password}
    )


def test_admin_sign_in_locks_the_account_as_the_api_login_does(client, admin_user, settings):
    settings.ACCOUNTS_LOCKOUT_THRESHOLD = 3
    for attempt in range(3):
        wrong = _admin_sign_in(client, f"guess-number-{attempt}")
        assert wrong.status_code == 200  # the form again, with its error
        assert b"Please enter the correct email and password" in wrong.content
    locked = _admin_sign_in(client, PASSWORD)
    assert locked.status_code == 200
    assert b"Please enter the correct email and password" in locked.content
    assert "_auth_user_id" not in client.session
    admin_user.refresh_from_db()
    assert admin_user.locked_until is not None
    # One lockout for both doors.
    api = client.post(
        "/api/v1/auth/login",
        {"email": "root@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    assert (api.status_code, api.json()["code"]) == (401, "invalid_credentials")


def test_admin_sign_in_shares_the_api_logins_rate_limit(client, admin_user, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "login": "2/m"}
    body = {"email": "root@example.com", "password": "guess-number-1"}
    assert (
        client.post("/api/v1/auth/login", body, content_type="application/json").status_code == 401
    )
    assert b"correct email and password" in _admin_sign_in(client, "guess-number-2").content
    limited = _admin_sign_in(client, PASSWORD)
    assert b"Too many sign-in attempts" in limited.content
    assert "_auth_user_id" not in client.session


def test_admin_sign_in_with_the_right_password_opens_a_django_session(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    signed_in = _admin_sign_in(client, PASSWORD)
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/admin/")
    assert client.session["_auth_user_id"] == str(admin_user.pk)


@pytest.mark.parametrize("action", ["suspend", "deactivate"])
def test_admin_actions_leave_the_last_active_admin_as_they_are(
    admin_site, admin_user, alice, action
):
    response = admin_site.post(
        "/admin/accounts/user/",
        {"action": action, "_selected_action": [alice.id, admin_user.id]},
        follow=True,
    )
    said = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert ("warning", "1 user(s) skipped: it would leave no active admin.") in said
    assert User.objects.get(email="root@example.com").status == "active"
    assert User.objects.get(email="alice@example.com").status != "active"


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_the_admin_form_keeps_the_last_active_admins_role(admin_site, admin_user):
    # A real commit: the roles change runs once the form's transaction has committed.
    data = _change_form_data(admin_site, admin_user, roles='["user"]', full_name="Still Root")
    response = admin_site.post(f"/admin/accounts/user/{admin_user.id}/change/", data, follow=True)
    errors = [m.message for m in response.context["messages"] if m.level_tag == "error"]
    assert errors == [
        "The roles were not changed: this user is the last active admin, and keeps the admin "
        "role until another user is an active admin."
    ]
    admin_user.refresh_from_db()
    assert (admin_user.roles, admin_user.is_staff) == (["user", "admin"], True)
    assert admin_user.full_name == "Still Root"  # the rest of the form was saved


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_the_admin_form_keeps_the_last_active_admins_email_verified(admin_site, admin_user):
    # Unticked, the last admin would no longer be an active admin (`User.administers`).
    data = _change_form_data(admin_site, admin_user, full_name="Still Root")
    data.pop("email_verified")
    response = admin_site.post(f"/admin/accounts/user/{admin_user.id}/change/", data, follow=True)
    errors = [m.message for m in response.context["messages"] if m.level_tag == "error"]
    assert errors == [
        "The email verification was not changed: this user is the last active admin, and "
        "stays verified until another user is an active admin."
    ]
    admin_user.refresh_from_db()
    assert admin_user.email_verified is True
    assert admin_user.full_name == "Still Root"  # the rest of the form was saved


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_the_admin_form_unverifies_a_user_through_the_use_case(admin_site, admin_user, alice):
    assert alice.email_verified is True
    data = _change_form_data(admin_site, alice)
    data.pop("email_verified")
    response = admin_site.post(f"/admin/accounts/user/{alice.id}/change/", data, follow=True)
    assert [m for m in response.context["messages"] if m.level_tag == "error"] == []
    alice.refresh_from_db()
    assert alice.email_verified is False


LAST_ADMIN_DELETE = (
    "Nothing was deleted: it would leave no active admin. Make another user an active admin first."
)


def _delete(admin_site, how, *users):
    """Delete `users` through the admin's delete view (one user) or its delete action, as
    confirmed on Django's page; the page the admin lands on."""
    if how == "delete view":
        (user,) = users
        return admin_site.post(
            f"/admin/accounts/user/{user.id}/delete/", {"post": "yes"}, follow=True
        )
    return admin_site.post(
        "/admin/accounts/user/",
        {"action": "delete_selected", "_selected_action": [u.id for u in users], "post": "yes"},
        follow=True,
    )


def _said(response):
    return [(m.level_tag, m.message) for m in response.context["messages"]]


@pytest.mark.parametrize("how", ["delete view", "delete action"])
def test_the_admin_refuses_to_delete_the_last_active_admin(
    admin_site, api_client, admin_user, alice, how
):
    pair = login(api_client, "root@example.com")
    # The admin deleting herself; or every admin at once (a suspended one does not count).
    AdminFactory(email="away@example.com", status="suspended")
    users = [admin_user] if how == "delete view" else [admin_user, alice]
    response = _delete(admin_site, how, *users)
    assert _said(response) == [("error", LAST_ADMIN_DELETE)]
    assert User.objects.filter(pk__in=[u.id for u in users]).count() == len(users)
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()
    # Nothing ended: her sessions and tokens go on, in the database and in the cache.
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200
    assert SimpleJWTAccessTokenVerifier().verify(pair["access_token"]).is_ok()


def test_the_admin_refuses_to_delete_every_active_admin_at_once(admin_site, admin_user):
    second = AdminFactory(email="second@example.com")
    response = _delete(admin_site, "delete action", admin_user, second)
    assert _said(response) == [("error", LAST_ADMIN_DELETE)]
    assert User.objects.filter(pk__in=[admin_user.id, second.id]).count() == 2


@pytest.mark.parametrize("how", ["delete view", "delete action"])
def test_the_admin_deletes_an_admin_while_another_active_admin_remains(
    admin_site, admin_user, alice, how
):
    second = AdminFactory(email="second@example.com")
    users = [second] if how == "delete view" else [second, alice]
    response = _delete(admin_site, how, *users)
    assert [level for level, _ in _said(response)] == ["success"]
    assert not User.objects.filter(pk__in=[u.id for u in users]).exists()
    assert User.objects.filter(pk=admin_user.id).exists()


@pytest.mark.parametrize("how", ["delete view", "delete action"])
def test_the_admin_deletes_a_user_who_is_no_admin_beside_the_last_admin(
    admin_site, admin_user, alice, how
):
    response = _delete(admin_site, how, alice)
    assert [level for level, _ in _said(response)] == ["success"]
    assert not User.objects.filter(pk=alice.id).exists()


@pytest.mark.parametrize("how", ["delete view", "delete action"])
def test_the_admin_asks_before_deleting(admin_site, alice, how):
    if how == "delete view":
        page = admin_site.get(f"/admin/accounts/user/{alice.id}/delete/")
        confirmation = "admin/delete_confirmation.html"
    else:
        page = admin_site.post(
            "/admin/accounts/user/", {"action": "delete_selected", "_selected_action": [alice.id]}
        )
        confirmation = "admin/delete_selected_confirmation.html"
    assert page.status_code == 200
    assert confirmation in [template.name for template in page.templates]
    assert User.objects.filter(pk=alice.id).exists()


def test_the_admin_refuses_a_password_like_the_users_name(admin_site, alice):
    alice.full_name = "Zebrafish Jones"
    alice.save()
    response = admin_site.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": "zebrafish-jones", "password2": "zebrafish-jones"},
    )
    assert response.status_code == 200  # the form again, with its error
    assert b"The password is too similar to the full name." in response.content
