"""The caller's sessions (refresh families): ListSessions, RevokeSession."""

from __future__ import annotations

from enum import StrEnum

from core.domain.accounts.sessions import Session, parse_session_id
from core.domain.accounts.values import UserId
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts._revocation import deny_session_tokens
from core.usecases.accounts.ports import Clock, SessionRepository, TokenRevocations


class ListSessions:
    """The caller's live sessions, newest first."""

    def __init__(self, *, sessions: SessionRepository, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock

    def execute(self, user_id: str) -> Result[list[Session], None]:
        live = self._sessions.live_for(UserId(user_id), self._clock.now())
        return Ok(sorted(live, key=lambda s: s.created_at, reverse=True))


class RevokeSessionError(StrEnum):
    """Why a session could not be ended."""

    NOT_FOUND = "not_found"


class RevokeSession:
    """End one of the caller's sessions: its refresh token and all its access tokens die."""

    def __init__(
        self, *, sessions: SessionRepository, revocations: TokenRevocations, clock: Clock
    ) -> None:
        self._sessions, self._revocations, self._clock = sessions, revocations, clock

    def execute(self, user_id: str, session_id: str) -> Result[None, RevokeSessionError]:
        """`session_id` as the client wrote it: any case, or not a UUID at all (not found)."""
        canonical = parse_session_id(session_id)
        if canonical is None:
            return Err(RevokeSessionError.NOT_FOUND)
        ended = self._sessions.revoke(canonical, UserId(user_id), self._clock.now())
        if ended is None:
            return Err(RevokeSessionError.NOT_FOUND)
        deny_session_tokens(self._revocations, ended)
        return Ok(None)
