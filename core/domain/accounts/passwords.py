"""Password rules of the domain that no framework validator covers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
_EMAIL_LIKE = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*\Z")
BLANK_MESSAGE = "The password must contain something other than spaces."
EMAIL_LIKE_MESSAGE = "The password must not be an email address."
_INVISIBLE = frozenset({"Cc", "Cf"})  # control and format characters (tabs, zero-width space)


def looks_like_email(password: str) -> bool:
    """A password that is an email address is the first thing an attacker tries."""
    return bool(_EMAIL_LIKE.match(password))


def is_blank(password: str) -> bool:
    """A password of whitespace (or invisible characters) alone passes every length rule and
    is still no secret: twenty spaces are guessed as fast as one."""
    return all(char.isspace() or unicodedata.category(char) in _INVISIBLE for char in password)


@dataclass(frozen=True, slots=True)
class PasswordRejected:
    """A new password failed the policy; `messages` say why (API: 400 `validation_error`)."""

    messages: tuple[str, ...]
    field: str = "password"
    value: str = "validation_error"
