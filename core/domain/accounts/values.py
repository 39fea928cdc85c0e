"""Value objects of the accounts context: `Email`, `UserId`, `PasswordHash` and roles."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

USER_ROLE = "user"
ADMIN_ROLE = "admin"
DEFAULT_ROLES: tuple[str, ...] = (USER_ROLE,)
_ROLE = re.compile(r"^[a-z][a-z0-9_:.-]{0,49}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_valid_role(role: str) -> bool:
    """Roles are short lowercase slugs (`user`, `admin`, `billing:read`)."""
    return bool(_ROLE.match(role))


@dataclass(frozen=True, slots=True)
class Email:
    """An email address, normalised (trimmed, case-folded) so `A@X.io` and `a@x.io` are one."""

    value: str

    def __post_init__(self) -> None:
        if not _EMAIL.match(self.value) or self.value != self.value.strip().casefold():
            raise ValueError("not a normalised email address")

    @classmethod
    def parse(cls, raw: str) -> Email | None:
        """The normalised email, or None when `raw` is not an address."""
        normalised = raw.strip().casefold()
        if not _EMAIL.match(normalised) or len(normalised) > 254:
            return None
        return cls(normalised)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class UserId:
    """A user's identity: a UUID, carried as its canonical string."""

    value: str

    @classmethod
    def new(cls) -> UserId:
        return cls(str(uuid.uuid4()))

    @classmethod
    def parse(cls, raw: str) -> UserId | None:
        """The id in canonical form, or None when `raw` is not a UUID."""
        try:
            return cls(str(uuid.UUID(raw)))
        except (ValueError, AttributeError, TypeError):
            return None

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password hash in Django's `algorithm$...` form; never printed."""

    value: str

    def __repr__(self) -> str:
        return "PasswordHash('********')"

    __str__ = __repr__

    @property
    def usable(self) -> bool:
        """False for Django's unusable marker (accounts created without a password)."""
        return bool(self.value) and not self.value.startswith("!")
