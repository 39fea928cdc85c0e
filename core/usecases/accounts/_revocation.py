"""Ending sessions, shared by the use cases that revoke tokens (logout, reuse, logout-all,
password, status, roles, session delete).

A change that ends tokens inside a unit of work decides its revocation facts there and publishes
them (`Revocation.publish`) once the unit of work has committed: a fact published earlier would
be seen before the change it follows from (and would stay if the change rolled back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.values import UserId
from core.domain.shared.identity import Principal
from core.usecases.accounts.ports import (
    Clock,
    SessionRepository,
    TokenRevocations,
    UnitOfWork,
    UserRepository,
)


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


def deny_tokens_of_ended(
    revocations: TokenRevocations,
    sessions: SessionRepository,
    session_id: str,
    user_id: UserId,
    ended: Session | None,
) -> None:
    """Deny every access token of the user's session `session_id`: `ended`, the family as this
    request ended it, or else as stored, when it is the user's and had ended before.

    A request that ends a session may be sent again: its first try may have committed after
    answering 503 (a frozen database), or written no facts (Redis down). The retry finds the
    session ended already, and without its facts the session's access tokens would still pass
    the gateway, which reads only the cache. Denying again is harmless: the facts are the same
    and live no longer (until the family's last access token expires).
    """
    session = ended or sessions.get(session_id)
    if session is not None and session.user_id == user_id:
        deny_session_tokens(revocations, session)


@dataclass(frozen=True, slots=True)
class Revocation:
    """Revocation facts decided inside a unit of work, to publish once it has committed."""

    ended: tuple[Session, ...] = ()  # every access token of these families (by `sid`)
    last_tokens: tuple[Session, ...] = ()  # only the last access token of these families
    user_id: UserId | None = None  # with `issued_before`: every token of this user issued
    issued_before: datetime | None = None  # before then (the per-user cut-off)

    def publish(self, revocations: TokenRevocations) -> None:
        """Write the facts (the caches the token checks read)."""
        for session in self.ended:
            deny_session_tokens(revocations, session)
        for session in self.last_tokens:
            deny_access_token(revocations, session)
        if self.user_id is not None and self.issued_before is not None:
            revocations.revoke_user_tokens(self.user_id.value, self.issued_before)


def end_user_sessions(
    *, user_id: UserId, now: datetime, sessions: SessionRepository, reason: SessionEnd
) -> Revocation:
    """End every refresh family of the user; the facts that make every earlier access token
    invalid: the per-user cut-off (published as `now`'s next whole second, which reaches the
    tokens minted earlier in its own second too) and, for each ended family, its session mark
    (which the database's check of a token agrees with, `acting_for`).
    """
    return Revocation(
        ended=tuple(sessions.revoke_all(user_id, now, reason=reason)),
        user_id=user_id,
        issued_before=now,
    )


def end_other_sessions(
    *,
    user_id: UserId,
    caller: Principal,
    now: datetime,
    sessions: SessionRepository,
) -> Revocation:
    """End every refresh family of the caller's user but the caller's own; the facts that deny
    every access token of those families (the caller's session and its tokens go on working).

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
    sessions.revoke_all(user_id, now, reason=SessionEnd.PASSWORD_CHANGE, keep=keep)
    # Read after the families are ended (and locked), so every fact covers the newest token.
    return Revocation(
        ended=tuple(s for s in sessions.with_live_access(user_id, now) if s.id != keep)
    )


class EndsUserSessions:
    """The collaborators of a use case that ends a user's sessions inside its unit of work and
    publishes the revocation facts once it has committed (logout-all, a change of status or
    roles, a delete)."""

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        revocations: TokenRevocations,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._users, self._sessions, self._revocations = users, sessions, revocations
        self._uow, self._clock = uow, clock
