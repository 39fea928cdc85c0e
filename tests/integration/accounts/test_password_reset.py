"""POST /api/v1/auth/password/reset."""

import pytest
from django.core import mail

from tests.integration.accounts.test_metrics import sample

pytestmark = pytest.mark.django_db(databases=["default"])
NEW = "fresh-orchard-lantern-4"


def test_reset_answers_alike_and_mails_only_real_accounts(api_client, alice):
    answers = [
        api_client.post("/api/v1/auth/password/reset", {"email": email})
        for email in ("ALICE@example.com", "nobody@example.com")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


@pytest.mark.parametrize("email", ["not-email", "not an email", "a@b", "", "a\n@example.com"])
def test_a_malformed_email_is_a_field_error_like_an_empty_one(api_client, alice, email):
    response = api_client.post("/api/v1/auth/password/reset", {"email": email})
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("validation_error", ["email"])
    assert not mail.outbox


def test_reset_is_rate_limited(api_client, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "password_reset": "1/m"}
    assert api_client.post("/api/v1/auth/password/reset", {"email": "a@b.io"}).status_code == 202
    limited = api_client.post("/api/v1/auth/password/reset", {"email": "a@b.io"})
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_an_account_stored_under_earlier_looser_rules_can_still_reset_and_sign_in(api_client):
    from tests.factories.accounts import UserFactory

    UserFactory(email="josé@example.com")  # register refuses it now; older rows may hold it
    reset = api_client.post("/api/v1/auth/password/reset", {"email": "JOSÉ@example.com"})
    assert reset.status_code == 202
    assert [m.to for m in mail.outbox] == [["josé@example.com"]]


def test_an_address_folding_into_another_mailbox_is_answered_as_an_unknown_one(api_client):
    from tests.factories.accounts import UserFactory

    UserFactory(email="ss@example.com")
    answers = [
        api_client.post("/api/v1/auth/password/reset", {"email": email})
        for email in ("ß@example.com", "nobody@example.com")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert not mail.outbox


def test_either_spelling_of_an_internationalised_host_finds_the_account(api_client):
    from tests.factories.accounts import UserFactory

    UserFactory(email="n1@xn--bcher-kva.example")
    reset = api_client.post("/api/v1/auth/password/reset", {"email": "N1@Bücher.example"})
    assert reset.status_code == 202
    assert [m.to for m in mail.outbox] == [["n1@xn--bcher-kva.example"]]


def test_an_address_gets_at_most_its_budget_of_emails_whatever_the_spelling_or_client_ip(
    client, api_client, alice, settings
):
    settings.ACCOUNTS_ADDRESS_RATE_LIMITS = {
        **settings.ACCOUNTS_ADDRESS_RATE_LIMITS,
        "password_reset": "2/h",
    }
    throttled = sample(
        client, "platform_accounts_emails_throttled_total", endpoint="password_reset"
    )
    asks = [
        ("alice@example.com", "10.0.0.1"),
        ("ALICE@Example.com", "10.0.0.2"),
        (" alice@EXAMPLE.COM ", "2001:db8::1"),
        ("alice@example.com", "10.0.0.4"),
        ("nobody@example.com", "10.0.0.5"),
    ]
    answers = [
        api_client.post("/api/v1/auth/password/reset", {"email": email}, REMOTE_ADDR=ip)
        for email, ip in asks
    ]
    # Throttled, sent or without an account: the same 202 and body for each.
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["alice@example.com"]] * 2
    after = sample(client, "platform_accounts_emails_throttled_total", endpoint="password_reset")
    assert after == throttled + 2


def test_with_redis_down_every_lapsed_budget_is_counted_and_warned_of_at_most_every_5_s(
    api_client, alice, redis_down, caplog
):
    # Eleven resets gave eleven `email_quota_unavailable` warnings and no count.
    from prometheus_client import REGISTRY

    name, labels = "platform_accounts_email_budget_unavailable_total", {"kind": "password_reset"}
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    with caplog.at_level("INFO", logger="apps.accounts.ratelimits"):
        for _ in range(11):
            answered = api_client.post("/api/v1/auth/password/reset", {"email": alice.email})
            assert answered.status_code == 202
    assert len(mail.outbox) == 11  # the budget lapsed, as the per-IP limit did
    assert REGISTRY.get_sample_value(name, labels) == before + 11
    lines = [r for r in caplog.records if r.name == "apps.accounts.ratelimits"]
    assert len(lines) <= 1  # one every 5 s per process (none if one was written just before)
