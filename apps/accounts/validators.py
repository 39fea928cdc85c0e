"""The domain's password rules as a Django password validator, so passwords set in Django admin
(user creation and change forms, `changepassword`, an interactive `createsuperuser`) meet the
same rules as the API's. The messages are the domain's own text: `password_problems` asks this
validator too (through the Django policy) and keeps each message once."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from core.domain.accounts.passwords import MAX_PASSWORD_LENGTH, rule_breaches


class DomainPasswordValidator:
    """Refuses a password longer than the API takes, of whitespace alone, or that is an email
    address."""

    def validate(self, password: str, user: Any = None) -> None:
        messages = rule_breaches(password)
        if messages:
            raise ValidationError(messages, code="password_not_secret")

    def get_help_text(self) -> str:
        return (
            f"Your password can contain at most {MAX_PASSWORD_LENGTH} characters, and cannot be "
            "only spaces, nor an email address."
        )
