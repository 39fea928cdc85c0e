"""POST /api/v1/auth/password/reset."""

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db(databases=["default"])
NEW = "fresh-orchard-lantern-4"


def test_reset_answers_alike_and_mails_only_real_accounts(api_client, alice):
    answers = [
        api_client.post("/api/v1/auth/password/reset", {"email": email})
        for email in ("ALICE@example.com", "nobody@example.com", "not an email")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_reset_is_rate_limited(api_client, settings):
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "password_reset": "1/m"}
    assert api_client.post("/api/v1/auth/password/reset", {"email": "a@b.io"}).status_code == 202
    limited = api_client.post("/api/v1/auth/password/reset", {"email": "a@b.io"})
    assert limited.status_code == 429
