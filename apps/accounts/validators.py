"""The domain's password rules as a Django password validator, so passwords set in Django admin
(user creation and change forms, `changepassword`) meet the same rules as the API's."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from core.domain.accounts.passwords import (
    BLANK_MESSAGE,
    EMAIL_LIKE_MESSAGE,
    is_blank,
    looks_like_email,
)


class DomainPasswordValidator:
    """Refuses a password of whitespace alone, or one that is an email address."""

    def validate(self, password: str, user: Any = None) -> None:
        messages = []
        if is_blank(password):
            messages.append(BLANK_MESSAGE)
        if looks_like_email(password):
            messages.append(EMAIL_LIKE_MESSAGE)
        if messages:
            raise ValidationError(messages, code="password_not_secret")

    def get_help_text(self) -> str:
        return "Your password cannot be only spaces, nor an email address."
