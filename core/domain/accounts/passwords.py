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
TOO_LONG_MESSAGE = (
    f"This password is too long. It must contain at most {MAX_PASSWORD_LENGTH} characters."
)
_INVISIBLE = frozenset({"Cc", "Cf"})  # control and format characters (tabs, zero-width space)
# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt of Unicode 14.0, which
# `unicodedata` does not expose): what renders as nothing, letters among them (the Hangul
# fillers), plus variation selectors, tags and the reserved code points kept for more of them.
_DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, joiners, direction marks
    (0x202A, 0x202E),  # bidirectional embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors 1-16
    (0xFEFF, 0xFEFF),  # zero-width no-break space
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # reserved
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical beam and phrase controls
    (0xE0000, 0xE0FFF),  # tags, variation selectors 17-256, reserved
)
# Assigned characters outside that property that fonts draw as an empty cell.
_BLANK_GLYPHS = frozenset({"\u2800", "\U0001d159"})  # Braille blank, musical null notehead


def normalise_password(raw: str) -> str:
    """The form a password is checked, hashed and compared in: NFKC (NIST SP 800-63B
    §5.1.1.2), so `café` typed composed (NFC) or decomposed (NFD), or in fullwidth letters,
    is one password. Nothing is trimmed: every space typed is part of the secret."""
    return unicodedata.normalize("NFKC", raw)


def is_too_long(password: str) -> bool:
    """Longer than the API takes at login: a password nobody could sign in with."""
    return len(password) > MAX_PASSWORD_LENGTH


def looks_like_email(password: str) -> bool:
    """A password that is an email address is the first thing an attacker tries."""
    return bool(_EMAIL_LIKE.match(password))


def is_blank(password: str) -> bool:
    """A password of whitespace (or invisible characters) alone passes every length rule and
    is still no secret: twenty spaces are guessed as fast as one."""
    return all(_is_invisible(char) for char in password)


def rule_breaches(password: str) -> list[str]:
    """The messages of the domain's own password rules this password breaks (too long, blank,
    an email address), in that order; empty when it keeps them all."""
    checks = (
        (is_too_long, TOO_LONG_MESSAGE),
        (is_blank, BLANK_MESSAGE),
        (looks_like_email, EMAIL_LIKE_MESSAGE),
    )
    return [message for breaks, message in checks if breaks(password)]


def _is_invisible(char: str) -> bool:
    if char.isspace() or char in _BLANK_GLYPHS or unicodedata.category(char) in _INVISIBLE:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


@dataclass(frozen=True, slots=True)
class PasswordRejected:
    """A new password failed the policy; `messages` say why (API: 400 `validation_error`)."""

    messages: tuple[str, ...]
    field: str = "password"
    value: str = "validation_error"
