"""Who is calling: the principal a verified access token stands for.

Every context that accepts tokens (accounts' own API, the gateway's edge, composites that forward
auth) speaks in this type, so none of them needs another context's user entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller proven by a valid, unrevoked access token."""

    user_id: str
    roles: frozenset[str]
    token_id: str
    issued_at: datetime
    expires_at: datetime
    session_id: str | None = None  # the refresh family (`sid`) the token was issued in

    def has_roles(self, required: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
        """True when every role in `required` is one of the principal's."""
        return set(required) <= self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class TokenError(StrEnum):
    """Why an access token was refused; values are the stable API codes."""

    INVALID = "token_invalid"  # malformed, forged, wrong algorithm, type, audience or issuer
    EXPIRED = "token_expired"  # past its `exp`
    REVOKED = "token_revoked"  # logged out, its session ended, or issued before the user's cut-off


def is_revoked(
    *,
    issued_at: int,
    token_denied: bool,
    user_valid_after: int | None,
    session_revoked: bool = False,
) -> bool:
    """A token is revoked when its own id was denied, its session (refresh family) was ended, or
    it predates the user's cut-off.

    The cut-off is a whole second, as `iat` is: the moment of the change rounded up (a token of
    the change's own second may predate it), and a token issued in that second is kept. Accounts
    mint no token in the second before it, so a login right after a password reset works
    (Keycloak's not-before rule; docs/accounts.md).
    """
    if token_denied or session_revoked:
        return True
    return user_valid_after is not None and issued_at < user_valid_after
