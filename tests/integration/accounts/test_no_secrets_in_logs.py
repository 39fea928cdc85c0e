"""Passwords and tokens never reach a log line: every record of the accounts' flows, at every
level and from every logger (ours, Django's, django-redis's), with its exception text, is
searched for each secret the flows handled, also while the mail server and Redis are down."""

import logging
import re

import pytest
from django.core.mail.backends.base import BaseEmailBackend

from tests.factories.accounts import PASSWORD
from tests.integration.accounts.conftest import bearer, last_mailed_token, login

pytestmark = pytest.mark.django_db(databases=["default"])
NEW = "quiet-meadow-river-7"
CHANGED = "a-changed-password-42"
RESET = "a-reset-password-43"


class DownMailServer(BaseEmailBackend):
    """A mail server that refuses every message (kept here, so the test knows its tokens)."""

    refused: list[str] = []

    def send_messages(self, email_messages):
        self.refused += [message.body for message in email_messages]
        raise ConnectionRefusedError("the mail server is down")


def _everything_logged(records):
    formatter = logging.Formatter()
    lines = []
    for record in records:
        lines += [str(record.msg), record.getMessage()]
        if record.exc_info:
            lines.append(formatter.formatException(record.exc_info))
    return "\n".join(lines)


def _accounts_flows(api_client, secrets):
    """Register, verify, log in, refresh, change and reset the password, log out, collecting
    every password and token handled on the way."""
    body = {"email": "new@example.com", "password": NEW, "full_name": "New"}
    api_client.post("/api/v1/auth/register", body)
    api_client.post("/api/v1/auth/verify-email/resend", {"email": "new@example.com"})
    verification = last_mailed_token()
    api_client.post("/api/v1/auth/verify-email", {"token": verification})
    first = login(api_client, "new@example.com", NEW)
    api_client.post("/api/v1/auth/login", {"email": "new@example.com", "password": "wrong-1234"})
    rotated = api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})
    api_client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]})  # reuse
    pair = login(api_client, "new@example.com", NEW)
    api_client.get("/api/v1/auth/me", **bearer(pair["access_token"]))
    api_client.post(
        "/api/v1/auth/password/change",
        {"current_password": NEW, "new_password": CHANGED},
        **bearer(pair["access_token"]),
    )
    api_client.post("/api/v1/auth/password/reset", {"email": "new@example.com"})
    reset = last_mailed_token()
    api_client.post("/api/v1/auth/password/reset/confirm", {"token": reset, "new_password": RESET})
    pair = login(api_client, "new@example.com", RESET)
    api_client.post(
        "/api/v1/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        **bearer(pair["access_token"]),
    )
    api_client.post("/api/v1/auth/logout", {"refresh_token": "x"}, **bearer("not-a-token"))
    secrets += [NEW, CHANGED, RESET, PASSWORD, verification, reset]
    secrets += [first["access_token"], first["refresh_token"], pair["access_token"]]
    secrets += [pair["refresh_token"], rotated.json()["refresh_token"]]


def test_no_password_or_token_is_logged(api_client, caplog):
    secrets = []
    with caplog.at_level(logging.DEBUG):
        _accounts_flows(api_client, secrets)
    assert len(caplog.records) > 10  # the access lines at least
    logged = _everything_logged(caplog.records)
    leaked = [secret for secret in secrets if secret in logged]
    assert not leaked


def test_no_password_or_token_is_logged_while_mail_and_redis_are_down(
    api_client, settings, caplog, redis_down
):
    secrets = []
    with caplog.at_level(logging.DEBUG):
        _accounts_flows(api_client, secrets)  # the locmem outbox still receives the mail
        settings.EMAIL_BACKEND = f"{__name__}.DownMailServer"
        DownMailServer.refused.clear()
        api_client.post("/api/v1/auth/password/reset", {"email": "new@example.com"})
    [body] = DownMailServer.refused
    secrets.append(re.search(r"Token: (\S+)", body).group(1))
    messages = [str(record.msg) for record in caplog.records]
    assert any("account_email_failed" in m for m in messages)  # the failures were logged
    assert any("revocation_write_failed" in m for m in messages)
    logged = _everything_logged(caplog.records)
    leaked = [secret for secret in secrets if secret in logged]
    assert not leaked
