"""Django admin for users, `seed` and `flush_expired_tokens`, and the business metrics."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import OneTimeToken, RefreshSession, User
from apps.accounts.seed import seed_accounts
from apps.common.seeding import SeedOptions
from tests.integration.accounts.conftest import bearer, login

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


def test_a_password_set_in_the_admin_ends_the_users_sessions(admin_site, api_client, alice):
    pair = login(api_client, "alice@example.com")
    response = admin_site.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": "admin-chosen-pass-5", "password2": "admin-chosen-pass-5"},
    )
    assert response.status_code == 302, response.content
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    assert login(api_client, "alice@example.com", "admin-chosen-pass-5")


def test_seed_creates_the_admin_once_and_demo_users(monkeypatch):
    assert seed_accounts(SeedOptions(demo=False)) == [
        "no admin: set ADMIN_EMAIL and ADMIN_PASSWORD to create one"
    ]
    monkeypatch.setenv("ADMIN_EMAIL", "Boss@Example.com")
    monkeypatch.setenv("ADMIN_PASSWORD", "boss-password-long-1")
    out = StringIO()
    call_command("seed", "--demo", stdout=out)
    assert "[accounts] created boss@example.com" in out.getvalue().casefold()
    boss = User.objects.get(email="boss@example.com")
    assert (boss.roles, boss.is_staff, boss.email_verified) == (["user", "admin"], True, True)
    assert User.objects.count() == 3
    again = seed_accounts(SeedOptions(demo=True))
    assert all(line.startswith("exists") for line in again)
    monkeypatch.setenv("ADMIN_EMAIL", "not-an-email")
    assert seed_accounts(SeedOptions(demo=False))[0].startswith("skipped")


def test_flush_expired_tokens_deletes_only_what_ended(api_client, alice):
    login(api_client, "alice@example.com")
    live = login(api_client, "alice@example.com")
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})  # voids 1st
    oldest = RefreshSession.objects.order_by("created_at").first()
    RefreshSession.objects.filter(pk=oldest.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    out = StringIO()
    call_command("flush_expired_tokens", stdout=out)
    assert "Deleted 1 sessions and 1 email tokens." in out.getvalue()
    assert RefreshSession.objects.count() == 1
    assert OneTimeToken.objects.count() == 1
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh_token": live["refresh_token"]})
    assert refreshed.status_code == 200


def test_business_counters_are_exported(client, api_client, alice):
    login(api_client, "alice@example.com")
    api_client.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "wrong-1"})
    text = client.get("/metrics").content.decode()
    assert 'platform_accounts_logins_total{outcome="success"}' in text
    assert 'platform_accounts_logins_total{outcome="wrong_password"}' in text
    for name in (
        "platform_accounts_registrations_total",
        "platform_accounts_token_refreshes_total",
        "platform_accounts_refresh_reuse_total",
        "platform_accounts_lockouts_total",
    ):
        assert name in text


def test_openapi_documents_every_accounts_path(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/sessions/{session_id}",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
    ):
        assert path in schema["paths"], path
    login_responses = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"200", "400", "401", "403", "429"} <= set(login_responses)
