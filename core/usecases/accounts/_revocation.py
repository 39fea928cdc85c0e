"""Ending sessions, shared by the use cases that revoke tokens (logout-all, password, status)."""

from __future__ import annotations

from datetime import datetime

from core.domain.accounts.sessions import Session
from core.domain.accounts.values import UserId
from core.usecases.accounts.ports import SessionRepository, TokenRevocations


def deny_access_token(revocations: TokenRevocations, session: Session) -> None:
    """Deny the last access token handed out for `session` until it would expire."""
    if session.access_jti and session.access_expires_at is not None:
        revocations.revoke_token(session.access_jti, session.access_expires_at)


def end_user_sessions(
    *,
    user_id: UserId,
    now: datetime,
    sessions: SessionRepository,
    revocations: TokenRevocations,
    keep: str | None = None,
) -> None:
    """End every refresh family (but `keep`) and make every earlier access token invalid.

    The per-user cut-off has one-second resolution (as `iat` has), so each ended family's last
    access token is also denied by id: tokens minted in the same second die too.
    """
    for session in sessions.revoke_all(user_id, now, keep=keep):
        deny_access_token(revocations, session)
    revocations.revoke_user_tokens(str(user_id), now)
