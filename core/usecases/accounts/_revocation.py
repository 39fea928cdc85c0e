"""Ending sessions, shared by the use cases that revoke tokens (logout, reuse, logout-all,
password, status, session delete)."""

from __future__ import annotations

from datetime import datetime

from core.domain.accounts.sessions import Session
from core.domain.accounts.values import UserId
from core.usecases.accounts.ports import SessionRepository, TokenRevocations


def deny_access_token(revocations: TokenRevocations, session: Session) -> None:
    """Deny the last access token handed out for `session` until it would expire."""
    if session.access_jti and session.access_expires_at is not None:
        revocations.revoke_token(session.access_jti, session.access_expires_at)


def deny_session_tokens(revocations: TokenRevocations, session: Session) -> None:
    """Deny every access token of an ended `session`, not only its last one.

    Access tokens carry the family id as `sid`, so one fact reaches those minted before a
    rotation too (a thief's, on reuse); it lives until the family's last access token expires,
    and every earlier one expires no later. The last one is also denied by id, as before.
    """
    if session.access_expires_at is not None:
        revocations.revoke_session(session.id, session.access_expires_at)
    deny_access_token(revocations, session)


def end_user_sessions(
    *,
    user_id: UserId,
    now: datetime,
    sessions: SessionRepository,
    revocations: TokenRevocations,
    keep: str | None = None,
) -> None:
    """End every refresh family (but `keep`) and make every earlier access token invalid.

    The per-user cut-off has one-second resolution (as `iat` has), so each ended family's
    access tokens are also denied by session: tokens minted in the same second die too.
    """
    for session in sessions.revoke_all(user_id, now, keep=keep):
        deny_session_tokens(revocations, session)
    revocations.revoke_user_tokens(str(user_id), now)
