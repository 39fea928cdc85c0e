"""`manage.py seed`: the accounts seeder."""

from dataclasses import replace
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.models import User
from apps.accounts.seed import _why, seed_accounts
from apps.common.seeding import SeedOptions
from core.domain.accounts.passwords import PasswordRejected
from core.usecases.accounts.maintenance import ProvisionError, Provisioning

# `seed` runs every context's seeder, so the command test touches every database.
pytestmark = pytest.mark.django_db(databases=["default", "gateway", "aggregation"])


def test_seed_creates_the_admin_once_and_demo_users(settings):
    assert seed_accounts(SeedOptions(demo=False)) == [
        "no admin: set ADMIN_EMAIL and ADMIN_PASSWORD to create one"
    ]
    settings.ACCOUNTS_ADMIN_EMAIL = "Boss@Example.com"
    settings.ACCOUNTS_ADMIN_PASSWORD = "boss-password-long-1"
    out = StringIO()
    call_command("seed", "--demo", stdout=out)
    assert "[accounts] created boss@example.com" in out.getvalue().casefold()
    boss = User.objects.get(email="boss@example.com")
    assert (boss.roles, boss.is_staff, boss.email_verified) == (["user", "admin"], True, True)
    assert boss.is_superuser
    assert not User.objects.get(email="alice@example.com").is_superuser
    assert User.objects.count() == 3
    again = seed_accounts(SeedOptions(demo=True))
    assert all(line.startswith("exists") for line in again)
    settings.ACCOUNTS_ADMIN_EMAIL = "not-an-email"
    assert seed_accounts(SeedOptions(demo=False)) == [
        "skipped: 'not-an-email' is not an email address"
    ]


def test_the_seed_words_each_refusal():
    boss = Provisioning("boss@example.com", "pw", "Boss", ("user", "Boss"))
    assert _why(boss, ProvisionError.INVALID_ROLE) == (
        "['user', 'Boss'] are not roles: roles are short lowercase slugs"
    )
    assert _why(replace(boss, email=" Boss@Example.com"), PasswordRejected(("Too short.",))) == (
        "the password for boss@example.com is refused: Too short."
    )


@pytest.mark.parametrize("password", ["short", "12345678901", "boss@example.com", " " * 20])
def test_seed_fails_on_an_admin_password_registration_would_refuse(settings, password):
    settings.ACCOUNTS_ADMIN_EMAIL = "boss@example.com"
    settings.ACCOUNTS_ADMIN_PASSWORD = password
    out = StringIO()
    with pytest.raises(CommandError, match="could not be created"):  # a non-zero exit status
        call_command("seed", stdout=out)
    assert "[accounts] skipped: the password for boss@example.com is refused: " in out.getvalue()
    assert not User.objects.exists()


def test_seed_fails_on_an_admin_address_registration_would_refuse(settings):
    settings.ACCOUNTS_ADMIN_EMAIL = "not-an-email"
    settings.ACCOUNTS_ADMIN_PASSWORD = "boss-password-long-1"
    with pytest.raises(CommandError):
        call_command("seed", stdout=StringIO())
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "page",
    [
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/user/add/",
        "/admin/gateway/routerow/",
        "/admin/gateway/routerow/add/",
        "/admin/aggregation/compositerow/",
        "/admin/aggregation/runrow/",
    ],
)
def test_the_seeded_admin_can_use_django_admin(client, settings, page):
    settings.ACCOUNTS_ADMIN_EMAIL = "boss@example.com"
    settings.ACCOUNTS_ADMIN_PASSWORD = "boss-password-long-1"
    call_command("seed", stdout=StringIO())
    assert client.login(email="boss@example.com", password="boss-password-long-1")
    response = client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    assert b"have permission to view or edit anything" not in response.content
