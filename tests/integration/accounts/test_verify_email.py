"""POST /api/v1/auth/verify-email and /api/v1/auth/verify-email/resend."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.accounts.models import OneTimeToken, User
from tests.factories.accounts import UserFactory
from tests.integration.accounts.conftest import last_mailed_token

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


def test_resend_answers_alike_and_mails_only_unverified_accounts(api_client):
    old = register(api_client)
    UserFactory(email="done@example.com")
    mail.outbox.clear()
    answers = [
        api_client.post("/api/v1/auth/verify-email/resend", {"email": email})
        for email in ("new@example.com", "done@example.com", "nobody@example.com", "bad")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    # The fresh token works and the earlier one no longer does.
    fresh = last_mailed_token()
    assert api_client.post("/api/v1/auth/verify-email", {"token": old}).status_code == 400
    assert api_client.post("/api/v1/auth/verify-email", {"token": fresh}).status_code == 200


def test_resend_is_rate_limited(api_client, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "verification_resend": "1/m"}
    url = "/api/v1/auth/verify-email/resend"
    assert api_client.post(url, {"email": "a@example.com"}).status_code == 202
    limited = api_client.post(url, {"email": "a@example.com"})
    assert limited.status_code == 429
    assert limited["Retry-After"]


def test_a_mail_server_that_is_down_does_not_fail_registration(api_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    response = api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "quiet-meadow-river-7"},
    )
    assert response.status_code == 201
