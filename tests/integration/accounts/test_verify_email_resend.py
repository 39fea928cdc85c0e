"""POST /api/v1/auth/verify-email/resend."""

import pytest
from django.core import mail

from tests.factories.accounts import UserFactory
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


def test_resend_answers_alike_and_mails_only_unverified_accounts(api_client):
    old = register(api_client)
    UserFactory(email="done@example.com")
    mail.outbox.clear()
    answers = [
        api_client.post("/api/v1/auth/verify-email/resend", {"email": email})
        for email in ("new@example.com", "done@example.com", "nobody@example.com")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    # The fresh token works and the earlier one no longer does.
    fresh = last_mailed_token()
    assert api_client.post("/api/v1/auth/verify-email", {"token": old}).status_code == 400
    assert api_client.post("/api/v1/auth/verify-email", {"token": fresh}).status_code == 200


@pytest.mark.parametrize("email", ["not-email", "bad", "a@b", ""])
def test_a_malformed_email_is_a_field_error_like_an_empty_one(api_client, email):
    response = api_client.post("/api/v1/auth/verify-email/resend", {"email": email})
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("validation_error", ["email"])


def test_resend_is_rate_limited(api_client, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "verification_resend": "1/m"}
    url = "/api/v1/auth/verify-email/resend"
    assert api_client.post(url, {"email": "a@example.com"}).status_code == 202
    limited = api_client.post(url, {"email": "a@example.com"})
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_emails_can_leave_on_a_background_thread(api_client, background_work):
    # Not `register()`: it reads the outbox at once, before the background thread may have sent.
    response = api_client.post(
        "/api/v1/auth/register",
        {"email": "new@example.com", "password": "quiet-meadow-river-7", "full_name": "New"},
    )
    assert response.status_code == 201
    background_work.finish()
    assert background_work.tasks, "the email did not go to the background pool"
    assert [message.to for message in mail.outbox] == [["new@example.com"]]


@pytest.mark.django_db(databases=["default"], transaction=True)
def test_in_the_background_the_request_does_the_same_for_every_address(api_client, background_work):
    UserFactory(email="pending@example.com", email_verified=False)
    url = "/api/v1/auth/verify-email/resend"
    for email in ("nobody@example.com", "pending@example.com"):
        assert api_client.post(url, {"email": email}).status_code == 202
    # Both requests' work is over (not merely the first email in): none went to `nobody`.
    background_work.finish()
    assert [message.to for message in mail.outbox] == [["pending@example.com"]]


def test_an_address_gets_at_most_its_budget_of_emails_whatever_the_spelling_or_client_ip(
    client, api_client, settings
):
    settings.ACCOUNTS_ADDRESS_RATE_LIMITS = {
        **settings.ACCOUNTS_ADDRESS_RATE_LIMITS,
        "verification_resend": "1/h",
    }
    UserFactory(email="pending@example.com", email_verified=False)
    name = "platform_accounts_emails_throttled_total"
    throttled = sample(client, name, endpoint="verification_resend")
    url = "/api/v1/auth/verify-email/resend"
    answers = [
        api_client.post(url, {"email": email}, REMOTE_ADDR=ip)
        for email, ip in (
            ("pending@example.com", "10.0.0.1"),
            ("PENDING@example.com", "10.0.0.2"),
            ("nobody@example.com", "10.0.0.3"),
        )
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["pending@example.com"]]
    assert sample(client, name, endpoint="verification_resend") == throttled + 1
    # The throttled ask issued no token: the one mailed still verifies the address.
    token = last_mailed_token()
    assert api_client.post("/api/v1/auth/verify-email", {"token": token}).status_code == 200


@pytest.mark.django_db(databases=["default"], transaction=True)
def test_in_the_background_a_throttled_address_is_answered_as_any_other(
    client, api_client, settings, background_work
):
    UserFactory(email="pending@example.com", email_verified=False)
    settings.ACCOUNTS_ADDRESS_RATE_LIMITS = {
        **settings.ACCOUNTS_ADDRESS_RATE_LIMITS,
        "verification_resend": "1/h",
    }
    name = "platform_accounts_emails_throttled_total"
    throttled = sample(client, name, endpoint="verification_resend")
    url = "/api/v1/auth/verify-email/resend"
    answers = [
        api_client.post(url, {"email": email})
        for email in ("pending@example.com", "pending@example.com", "nobody@example.com")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    background_work.finish()  # two pool threads: the email and the refusal in either order
    assert sample(client, name, endpoint="verification_resend") == throttled + 1
    assert [message.to for message in mail.outbox] == [["pending@example.com"]]
