"""Passwords are compared in their NFKC form (NIST SP 800-63B §5.1.1.2), on every door: the
API's register, login, change and reset, and Django admin's sign-in and password forms."""

import pytest

from apps.accounts.models import User
from tests.factories.accounts import PASSWORD, AdminFactory
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default"])

COMPOSED = "caf\u00e9-strong-pass-1"  # NFC, as most keyboards type it
DECOMPOSED = "cafe\u0301-strong-pass-1"  # NFD (macOS file names, some input methods)
# "password123" in fullwidth letters and digits (U+FF50...): a common password once normalised.
FULLWIDTH_COMMON = "".join(chr(ord(char) + 0xFEE0) for char in "password123")
# "zed-longer-name@example.com" in fullwidth characters: an email address once normalised.
FULLWIDTH_EMAIL = "".join(chr(ord(char) + 0xFEE0) for char in "zed-longer-name@example.com")


def _registered(api_client, password):
    response = api_client.post(
        "/api/v1/auth/register", {"email": "cleo@example.com", "password": password}
    )
    assert response.status_code == 201, response.content
    User.objects.filter(email="cleo@example.com").update(email_verified=True)


@pytest.mark.parametrize(("registered", "typed"), [(COMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED)])
def test_login_takes_either_spelling_of_the_password(api_client, registered, typed):
    _registered(api_client, registered)
    assert login(api_client, "cleo@example.com", typed)
    user = User.objects.get(email="cleo@example.com")
    assert user.failed_logins == 0


def test_a_password_changed_in_one_spelling_signs_in_with_the_other(api_client, alice):
    pair = login(api_client, "alice@example.com")
    changed = api_client.post(
        "/api/v1/auth/password/change",
        {"current_password": PASSWORD, "new_password": DECOMPOSED},
        **bearer(pair["access_token"]),
    )
    assert changed.status_code == 204, changed.content
    assert login(api_client, "alice@example.com", COMPOSED)


def test_the_policy_judges_the_normalised_password(api_client):
    # "password123" in fullwidth characters is "password123" once normalised: a common one.
    response = api_client.post(
        "/api/v1/auth/register",
        {"email": "cleo@example.com", "password": FULLWIDTH_COMMON},
    )
    assert response.status_code == 400, response.content
    assert "This password is too common." in response.json()["errors"]["password"]


def test_the_admin_sign_in_takes_the_password_the_api_takes(client, api_client):
    AdminFactory(email="root@example.com", is_superuser=True, password=COMPOSED)
    assert login(api_client, "root@example.com", DECOMPOSED)
    signed_in = client.post(
        "/admin/login/?next=/admin/", {"username": "root@example.com", "password": DECOMPOSED}
    )
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/admin/")


def test_a_password_set_in_the_admin_signs_in_with_either_spelling(client, api_client, alice):
    admin = AdminFactory(email="root@example.com", is_superuser=True)
    client.force_login(admin)
    response = client.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": DECOMPOSED, "password2": DECOMPOSED},
    )
    assert response.status_code == 302, response.content
    assert login(api_client, "alice@example.com", COMPOSED)


def test_the_admin_forms_judge_the_normalised_password(client, alice):
    admin = AdminFactory(email="root@example.com", is_superuser=True)
    client.force_login(admin)
    response = client.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": FULLWIDTH_COMMON, "password2": FULLWIDTH_COMMON},
    )
    assert response.status_code == 200  # the form again, with its error
    assert b"This password is too common." in response.content


def test_the_admin_forms_judge_the_domain_rules_on_the_normalised_password(client, alice):
    admin = AdminFactory(email="root@example.com", is_superuser=True)
    client.force_login(admin)
    response = client.post(
        f"/admin/accounts/user/{alice.id}/password/",
        {"password1": FULLWIDTH_EMAIL, "password2": FULLWIDTH_EMAIL},
    )
    assert response.status_code == 200  # the form again, with its error
    assert b"The password must not be an email address." in response.content
