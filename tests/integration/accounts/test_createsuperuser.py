"""`manage.py createsuperuser`: the email is normalised as register does before Django checks it."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.models import User
from tests.factories.accounts import UserFactory

pytestmark = pytest.mark.django_db(databases=["default"])


def createsuperuser(email):
    call_command(
        "createsuperuser", "--noinput", "--email", email, stdout=StringIO(), stderr=StringIO()
    )


def test_an_address_taken_under_another_spelling_is_the_usual_error():
    UserFactory(email="su1@example.com")
    with pytest.raises(CommandError, match="already taken"):  # not an IntegrityError
        createsuperuser("SU1@Example.com")
    assert User.objects.count() == 1


def test_a_padded_address_is_taken_trimmed_and_case_folded_as_the_api_takes_it():
    createsuperuser("  su2@EXAMPLE.com ")
    su = User.objects.get(email="su2@example.com")
    assert (su.is_superuser, su.is_staff, su.roles) == (True, True, ["user", "admin"])


@pytest.mark.parametrize("email", ["josé@example.com", "xİ@example.com", "not-an-email"])
def test_an_address_register_refuses_is_refused(email):
    with pytest.raises(CommandError, match="valid email address"):
        createsuperuser(email)
    assert not User.objects.exists()


def test_django_admin_sign_in_finds_the_account_as_login_does(client):
    UserFactory(email="su3@example.com", password="solid-granite-pass-3")
    assert client.login(email=" SU3@Example.com", password="solid-granite-pass-3")


@pytest.mark.parametrize("email", ["josé@example.com", "xİ@example.com", "not-an-email"])
@pytest.mark.parametrize("create", ["create_user", "create_superuser"])
def test_the_user_manager_stores_no_address_register_refuses(create, email):
    with pytest.raises(ValueError, match="not an email address"):
        getattr(User.objects, create)(email, "solid-granite-pass-3")
    assert not User.objects.exists()


def test_the_user_manager_creates_an_administrator_as_the_seed_does():
    su = User.objects.create_superuser(" SU4@Bücher.example ", "solid-granite-pass-3")
    user = User.objects.create_user("u4@example.com", full_name="U Four")
    assert (su.email, su.roles, su.is_staff, su.is_superuser, su.email_verified) == (
        "su4@xn--bcher-kva.example",
        ["user", "admin"],
        True,
        True,
        True,
    )
    assert su.check_password("solid-granite-pass-3")
    assert (user.roles, user.is_staff, user.is_superuser, user.email_verified) == (
        ["user"],
        False,
        False,
        False,
    )
    assert (user.full_name, user.has_usable_password()) == ("U Four", False)
