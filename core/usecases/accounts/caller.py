"""The caller of the accounts API: the user an access token acts for, checked in the database.

The token verifier checks revocation against the cache's facts only; the use cases that act for
the caller load the caller's row anyway, and check the token against the database in the same
query, so a lost fact (a Redis flush, an outage while it was written) does not reopen them.
"""

from __future__ import annotations

from enum import StrEnum

from core.domain.accounts.sessions import parse_session_id
from core.domain.accounts.user import User
from core.domain.accounts.values import UserId
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts.ports import UserRepository


class CurrentUserError(StrEnum):
    """Why the caller's user cannot be acted for although the token passed verification."""

    UNKNOWN_USER = "token_invalid"  # the token's user is gone
    # The user is no longer active, the token predates their cut-off, its session was revoked
    # or it carries a role taken away: what the cache's facts say too, kept here in case those
    # facts were lost.
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an error code, not a secret


def acting_for(
    users: UserRepository, principal: Principal, *, lock: bool = False
) -> Result[User, CurrentUserError]:
    """The principal's user, unless the database revokes the principal's token: the user is
    gone or not active, the token was issued before the user's cut-off, the token's session
    (`sid`) was revoked, or the token carries a role the user no longer has. One query; with
    `lock`, the user row-locked until the unit of work ends."""
    uid = UserId.parse(principal.user_id)
    if uid is None:
        return Err(CurrentUserError.UNKNOWN_USER)
    session_id = parse_session_id(principal.session_id) if principal.session_id else None
    owner = users.token_owner(uid, session_id, lock=lock)
    if owner is None:
        return Err(CurrentUserError.UNKNOWN_USER)
    if not owner.user.honours_token(
        principal.issued_at, roles=principal.roles, session_revoked=owner.session_revoked
    ):
        return Err(CurrentUserError.TOKEN_REVOKED)
    return Ok(owner.user)
