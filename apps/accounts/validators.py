"""The domain's password rules as a Django password validator, so passwords set in Django admin
(user creation and change forms, `changepassword`, an interactive `createsuperuser`) meet the
same rules as the API's. The messages are the domain's own text: `password_problems` asks this
validator too (through the Django policy) and keeps each message once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from core.domain.accounts.passwords import MAX_PASSWORD_LENGTH, normalise_password, rule_breaches


class _OnNormalisedPassword:
    """Judges the password as it is hashed (`normalise_password`, NFKC): Django admin's forms
    pass the text as typed, where "password123" in fullwidth letters is no common password."""

    def validate(self, password: str, user: Any = None) -> None:
        super().validate(normalise_password(password), user)  # type: ignore[misc]


class UserAttributeSimilarityValidator(
    _OnNormalisedPassword, password_validation.UserAttributeSimilarityValidator
):
    """Django's, on the normalised password."""


class MinimumLengthValidator(_OnNormalisedPassword, password_validation.MinimumLengthValidator):
    """Django's, on the normalised password."""


class CommonPasswordValidator(_OnNormalisedPassword, password_validation.CommonPasswordValidator):
    """Django's, on the normalised password."""


class NumericPasswordValidator(_OnNormalisedPassword, password_validation.NumericPasswordValidator):
    """Django's, on the normalised password."""


class DomainPasswordValidator:
    """Refuses a password longer than the API takes, of whitespace alone, or that is an email
    address (each judged on the normalised password)."""

    def validate(self, password: str, user: Any = None) -> None:
        messages = rule_breaches(normalise_password(password))
        if messages:
            raise ValidationError(messages, code="password_not_secret")

    def get_help_text(self) -> str:
        return (
            f"Your password can contain at most {MAX_PASSWORD_LENGTH} characters, and cannot be "
            "only spaces, nor an email address."
        )
