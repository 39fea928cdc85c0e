"""DjangoMailer: account emails through Django's backend, in the request or on the pool."""

from __future__ import annotations

import threading

from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from apps.accounts.adapters import DjangoMailer
from core.domain.accounts.values import Email

senders: list[str] = []


class RecordingBackend(EmailBackend):
    """The locmem backend, noting which thread sent each message."""

    def send_messages(self, messages):
        senders.append(threading.current_thread().name)
        return super().send_messages(messages)


def test_in_the_background_the_email_leaves_on_the_accounts_pool(settings, background_work):
    settings.EMAIL_BACKEND = f"{__name__}.RecordingBackend"
    senders.clear()
    DjangoMailer(background=True).send_verification(Email.parse("a@example.com"), "tok-1")
    background_work.finish()
    assert [message.to for message in mail.outbox] == [["a@example.com"]]
    assert "Token: tok-1" in mail.outbox[0].body
    assert senders[0].startswith("account-email")


def test_in_the_request_the_email_leaves_at_once(settings):
    settings.EMAIL_BACKEND = f"{__name__}.RecordingBackend"
    senders.clear()
    DjangoMailer().send_password_reset(Email.parse("b@example.com"), "tok-2")
    assert [message.to for message in mail.outbox] == [["b@example.com"]]
    assert senders == [threading.current_thread().name]
