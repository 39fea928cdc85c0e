"""POST /api/v1/auth/verify-email (and the verification email)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import OneTimeToken, User
from tests.integration.accounts.conftest import last_mailed_token
from tests.integration.accounts.test_metrics import sample

pytestmark = pytest.mark.django_db(databases=["default"])


def register(client, email="new@example.com"):
    response = client.post(
        "/api/v1/auth/register",
        {"email": email, "password": "quiet-meadow-river-7", "full_name": "New"},
    )
    assert response.status_code == 201
    return last_mailed_token()


def test_the_mailed_token_verifies_once(api_client):
    token = register(api_client)
    assert not OneTimeToken.objects.filter(token_hash=token).exists()  # stored hashed
    response = api_client.post("/api/v1/auth/verify-email", {"token": token})
    assert response.status_code == 200
    assert response.json()["email_verified"] is True
    again = api_client.post("/api/v1/auth/verify-email", {"token": token})
    assert (again.status_code, again.json()["code"]) == (400, "invalid_token")


def test_unknown_and_expired_tokens_are_invalid(api_client):
    token = register(api_client)
    OneTimeToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    for candidate in (token, "made-up"):
        response = api_client.post("/api/v1/auth/verify-email", {"token": candidate})
        assert response.json()["code"] == "invalid_token"
    assert User.objects.get().email_verified is False


def test_a_reset_token_does_not_verify(api_client):
    register(api_client)
    api_client.post("/api/v1/auth/password/reset", {"email": "new@example.com"})
    response = api_client.post("/api/v1/auth/verify-email", {"token": last_mailed_token()})
    assert response.json()["code"] == "invalid_token"


def test_a_mail_server_that_is_down_does_not_fail_registration(client, api_client, settings):
    """The account and its token were committed together before the email left; the failed
    email is counted, and the address can still be verified: resend mails a fresh token."""
    failures = sample(client, "platform_accounts_email_failures_total")
    locmem = settings.EMAIL_BACKEND
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    response = api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "quiet-meadow-river-7"},
    )
    assert response.status_code == 201
    assert sample(client, "platform_accounts_email_failures_total") == failures + 1
    assert OneTimeToken.objects.filter(user__email="new@example.com").count() == 1
    settings.EMAIL_BACKEND = locmem  # the mail server is back
    resent = api_client.post("/api/v1/auth/verify-email/resend", {"email": "new@example.com"})
    assert resent.status_code == 202
    verified = api_client.post("/api/v1/auth/verify-email", {"token": last_mailed_token()})
    assert (verified.status_code, verified.json()["email_verified"]) == (200, True)


def test_tokens_are_issued_and_superseded_on_the_accounts_clock(api_client, clock):
    register(api_client)
    first = OneTimeToken.objects.get()
    assert (first.created_at, first.expires_at) == (clock.now(), clock.now() + timedelta(hours=24))
    clock.advance(seconds=5)
    api_client.post("/api/v1/auth/verify-email/resend", {"email": "new@example.com"})
    first.refresh_from_db()
    assert first.used_at == clock.now()  # voided by the new one, at the same moment
    assert OneTimeToken.objects.get(used_at__isnull=True).created_at == clock.now()
