"""`manage.py changepassword`."""

from io import StringIO

import pytest
from django.contrib.auth.management.commands import changepassword
from django.core.management import CommandError, call_command

from tests.integration.accounts.conftest import assert_sealed, bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])

NEW = "console-chosen-pass-7"


@pytest.fixture
def typed(monkeypatch):
    """What the operator types at the prompts (Django's, which ours inherits)."""
    answers: list[str] = []
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt="": answers.pop(0))
    return answers


def test_a_password_set_with_the_command_ends_sessions_and_stops_reset_links(
    api_client, alice, typed
):
    pair = login(api_client, "alice@example.com")
    api_client.post("/api/v1/auth/password/reset", {"email": "alice@example.com"})
    token = last_mailed_token()
    typed.extend([NEW, NEW])
    out = StringIO()
    call_command("changepassword", "alice@example.com", stdout=out)
    assert "Password changed successfully" in out.getvalue()
    assert_sealed(api_client, pair, token)
    assert login(api_client, "alice@example.com", NEW)


def test_a_refused_change_ends_nothing(api_client, alice, typed):
    pair = login(api_client, "alice@example.com")
    typed.extend([NEW, "typo"] * 3)
    with pytest.raises(CommandError):
        call_command("changepassword", "alice@example.com", stdout=StringIO())
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 200


def test_the_email_is_normalised_as_at_login(api_client, alice, typed):
    # Sign-in, registration and the admin fold `ALICE@Example.COM ` to the stored address.
    pair = login(api_client, "alice@example.com")
    typed.extend([NEW, NEW])
    out = StringIO()
    call_command("changepassword", " ALICE@Example.COM ", stdout=out)
    assert "Password changed successfully for user 'alice@example.com'" in out.getvalue()
    assert api_client.get("/api/v1/auth/me", **bearer(pair["access_token"])).status_code == 401
    assert login(api_client, "alice@example.com", NEW)
