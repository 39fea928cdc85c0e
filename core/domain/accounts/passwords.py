"""Password rules of the domain that no framework validator covers."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
_EMAIL_LIKE = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")


def looks_like_email(password: str) -> bool:
    """A password that is an email address is the first thing an attacker tries."""
    return bool(_EMAIL_LIKE.match(password))


@dataclass(frozen=True, slots=True)
class PasswordRejected:
    """A new password failed the policy; `messages` say why (API: 400 `validation_error`)."""

    messages: tuple[str, ...]
    field: str = "password"
    value: str = "validation_error"
