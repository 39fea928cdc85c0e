"""The caller's sessions (refresh families): ListSessions, RevokeSession."""

from __future__ import annotations

from enum import StrEnum

from core.domain.accounts.sessions import Session, SessionEnd, parse_session_id
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts._revocation import deny_tokens_of_ended
from core.usecases.accounts.caller import CurrentUserError, acting_for
from core.usecases.accounts.ports import (
    Clock,
    SessionRepository,
    TokenRevocations,
    UserRepository,
)


class ListSessions:
    """The caller's live sessions, newest first, unless the database revokes the caller's
    token."""

    def __init__(self, *, users: UserRepository, sessions: SessionRepository, clock: Clock) -> None:
        self._users, self._sessions, self._clock = users, sessions, clock

    def execute(self, principal: Principal) -> Result[list[Session], CurrentUserError]:
        caller = acting_for(self._users, principal)
        if caller.is_err():
            return Err(caller.unwrap_err())
        live = self._sessions.live_for(caller.unwrap().id, self._clock.now())
        return Ok(sorted(live, key=lambda s: s.created_at, reverse=True))


class RevokeSessionError(StrEnum):
    """Why a session could not be ended."""

    NOT_FOUND = "not_found"


class RevokeSession:
    """End one of the caller's sessions: its refresh token and all its access tokens die."""

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        revocations: TokenRevocations,
        clock: Clock,
    ) -> None:
        self._users, self._sessions = users, sessions
        self._revocations, self._clock = revocations, clock

    def execute(
        self, principal: Principal, session_id: str
    ) -> Result[None, RevokeSessionError | CurrentUserError]:
        """`session_id` as the client wrote it: any case, or not a UUID at all (not found).
        Refused first if the database revokes the caller's token."""
        caller = acting_for(self._users, principal)
        if caller.is_err():
            return Err(caller.unwrap_err())
        canonical = parse_session_id(session_id)
        if canonical is None:
            return Err(RevokeSessionError.NOT_FOUND)
        user_id = caller.unwrap().id
        ended = self._sessions.revoke(
            canonical, user_id, self._clock.now(), reason=SessionEnd.SESSION_REVOKED
        )
        # A session of the caller's that had ended (this delete's retry, maybe) is no longer
        # found, but its access tokens are denied again all the same.
        deny_tokens_of_ended(self._revocations, self._sessions, canonical, user_id, ended)
        if ended is None:
            return Err(RevokeSessionError.NOT_FOUND)
        return Ok(None)
