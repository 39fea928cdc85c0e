"""Ending sessions, shared by the use cases that revoke tokens (logout, reuse, logout-all,
password, status, session delete)."""

from __future__ import annotations

from datetime import datetime

from core.domain.accounts.sessions import Session
from core.domain.accounts.values import UserId
from core.domain.shared.identity import Principal
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
) -> None:
    """End every refresh family and make every earlier access token invalid.

    The per-user cut-off has one-second resolution (as `iat` has), so each ended family's
    access tokens are also denied by session: tokens minted in the same second die too.
    """
    for session in sessions.revoke_all(user_id, now):
        deny_session_tokens(revocations, session)
    revocations.revoke_user_tokens(str(user_id), now)


def end_other_sessions(
    *,
    user_id: UserId,
    caller: Principal,
    now: datetime,
    sessions: SessionRepository,
    revocations: TokenRevocations,
) -> None:
    """End every refresh family of the caller's user but the caller's own, and deny every
    access token of those families; the caller's session and its tokens go on working.

    No per-user cut-off: it cannot spare one session, so it would log the caller out too.
    Every access token carries its family as `sid`, so denying by session reaches them all,
    including those of families that already ended (expired or revoked) but whose last access
    token has not expired yet. The caller's family is the token's `sid` (or, for a token
    without one, the family that handed it out).
    """
    keep = caller.session_id or next(
        (s.id for s in sessions.with_live_access(user_id, now) if s.access_jti == caller.token_id),
        None,
    )
    sessions.revoke_all(user_id, now, keep=keep)
    # Read after the families are ended (and locked), so every fact covers the newest token.
    for session in sessions.with_live_access(user_id, now):
        if session.id != keep:
            deny_session_tokens(revocations, session)
