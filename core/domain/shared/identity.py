"""Who is calling: the principal a verified access token stands for.

Every context that accepts tokens (accounts' own API, the gateway's edge, composites that forward
auth) speaks in this type, so none of them needs another context's user entity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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


# A user id as the accounts issue it in `sub`: a UUID, canonical and lowercase (`UserId`). One
# spelling only: revocation facts are keyed by the id's text, so another spelling of the same
# user would miss them.
_USER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

LONGEST_ACCESS_LIFETIME = 86_400
"""The longest life, in seconds, the platform gives an access token (a day): the most the
configured lifetime may be, and so the bound on a token's `exp` - `iat`. A fixed bound, not the
lifetime configured now: a lifetime lowered, or raised while a rollout has workers on the old
value, refuses no token already issued."""


def principal_from_claims(
    claims: Mapping[str, object], *, longest_lifetime: int
) -> Principal | None:
    """The principal a verified access token's claims stand for, or None when they are not
    what the platform issues: `sub` a user id (`_USER_ID`), `jti` a string, `sid` a non-empty one,
    `iat` and `exp` integers (not booleans, not floats), `exp` no earlier than `iat` and at
    most `longest_lifetime` seconds after it, `roles` a list of strings (absent: none)."""
    user_id, jti, session_id = claims.get("sub"), claims.get("jti"), claims.get("sid")
    iat, exp, roles = claims.get("iat"), claims.get("exp"), claims.get("roles", [])
    if not (isinstance(user_id, str) and _USER_ID.fullmatch(user_id)):
        return None
    if not (isinstance(jti, str) and isinstance(session_id, str) and session_id):
        return None
    # `type(...) is int`: True is an int to isinstance, and PyJWT reads a float `exp` too.
    if type(iat) is not int or type(exp) is not int or not 0 <= exp - iat <= longest_lifetime:
        return None
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        return None
    return Principal(
        user_id=user_id,
        roles=frozenset(roles),
        token_id=jti,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
        session_id=session_id,
    )


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
