"""Forgotten passwords: RequestPasswordReset, ResetPassword, and SealPasswordSet for a
password set outside the API."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from enum import StrEnum

from core.domain.accounts.passwords import PasswordRejected
from core.domain.accounts.sessions import SessionEnd
from core.domain.accounts.values import Email, UserId
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts._revocation import end_user_sessions
from core.usecases.accounts.ports import (
    AccountEvents,
    Clock,
    EmailQuota,
    Mailer,
    OneTimeTokens,
    PasswordHasher,
    PasswordPolicy,
    SessionRepository,
    TokenPurpose,
    TokenRevocations,
    UnitOfWork,
    UserRepository,
)
from core.usecases.accounts.registration import password_problems

RESET_TTL = timedelta(hours=1)


class RequestPasswordReset:
    """Mail a single-use reset token (1 h) if the address has an account and its budget of
    reset emails (`EmailQuota`) is not spent; answer alike whatever happened."""

    def __init__(
        self,
        *,
        users: UserRepository,
        tokens: OneTimeTokens,
        mailer: Mailer,
        quota: EmailQuota,
        uow: UnitOfWork,
        clock: Clock,
        events: AccountEvents,
    ) -> None:
        self._users, self._tokens, self._mailer, self._quota = users, tokens, mailer, quota
        self._uow, self._clock, self._events = uow, clock, events

    def execute(self, email: str) -> Result[None, None]:
        address = Email.lookup(email)
        user = self._users.by_email(address) if address is not None else None
        if user is None or not user.may_reset_password():
            return Ok(None)
        # Before a token is issued: a new one voids the last, so a throttled request must not
        # issue one either, or it would void the token the owner was already mailed.
        if not self._quota.take(user.email):
            self._events.email_throttled("password_reset")
            return Ok(None)
        now = self._clock.now()
        with self._uow:
            # The user's row first (the lock order of `OneTimeTokens`): a concurrent request
            # waits here, then voids the token this one issues. What the row says now counts:
            # an account deleted or given another address meanwhile is answered as an unknown
            # address, so no link goes to an address the account no longer has.
            locked = self._users.get_for_update(user.id)
            if locked is None or not locked.may_reset_password() or locked.email != user.email:
                return Ok(None)
            token = self._tokens.issue(locked.id, TokenPurpose.RESET, now + RESET_TTL, now=now)
            self._uow.commit()
        self._mailer.send_password_reset(locked.email, token)
        return Ok(None)


class ResetPasswordError(StrEnum):
    """Why a reset was refused."""

    INVALID = "invalid_token"


class ResetPassword:
    """Set a new password with a reset token; every session of the user ends.

    A weak new password leaves the token unused (the transaction rolls back), so the user can
    try again with the same email. Proving control of the mailbox also verifies the address
    and lifts a lockout. The other reset links the user was mailed stop working: a link is
    good for one password.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        tokens: OneTimeTokens,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        revocations: TokenRevocations,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._users, self._sessions, self._tokens = users, sessions, tokens
        self._hasher, self._policy, self._revocations = hasher, policy, revocations
        self._uow, self._clock = uow, clock

    def execute(
        self, token: str, new_password: str
    ) -> Result[None, ResetPasswordError | PasswordRejected]:
        now = self._clock.now()
        # bcrypt is slow: only for a token that may work (nobody without one makes us hash,
        # and this endpoint has no rate limit), and before the row lock.
        owner = self._tokens.peek(token, TokenPurpose.RESET, now)
        if owner is None:
            return Err(ResetPasswordError.INVALID)
        new_hash = self._hasher.hash(new_password)
        with self._uow:
            # The user's row, then the token (the lock order of `OneTimeTokens`): locked the
            # other way round, a password change, which voids this token under the row
            # lock, deadlocked with it. A token used or voided meanwhile is not consumed.
            user = self._users.get_for_update(owner)
            if user is None or not user.may_reset_password():
                return Err(ResetPasswordError.INVALID)
            if self._tokens.consume(token, TokenPurpose.RESET, now) is None:
                return Err(ResetPasswordError.INVALID)
            rejected = password_problems(
                self._policy, new_password, email=user.email.value, full_name=user.full_name
            )
            if rejected is not None:
                return Err(replace(rejected, field="new_password"))
            user.password_hash = new_hash
            user.verify_email()
            user.failed_logins, user.locked_until = 0, None
            user.end_sessions(now)
            self._users.save(user)
            self._tokens.void(user.id, TokenPurpose.RESET, now)
            revocation = end_user_sessions(
                user_id=user.id,
                now=now,
                sessions=self._sessions,
                reason=SessionEnd.PASSWORD_RESET,
            )
            self._uow.commit()
        revocation.publish(self._revocations)
        return Ok(None)


class SealPasswordSet:
    """After a password was set outside the API (Django admin, `manage.py changepassword`): in
    one unit of work, end every session of the user, as `LogoutAll` does, and void the reset
    tokens they were mailed, so neither a session nor a link outlives the old password."""

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        tokens: OneTimeTokens,
        revocations: TokenRevocations,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._users, self._sessions, self._tokens = users, sessions, tokens
        self._revocations, self._uow, self._clock = revocations, uow, clock

    def execute(self, user_id: str) -> Result[None, None]:
        now, user_id_ = self._clock.now(), UserId(user_id)
        with self._uow:
            # The user's row, then the tokens: the lock order of `OneTimeTokens`.
            user = self._users.get_for_update(user_id_)
            if user is not None:
                # Tokens only (`revoke_tokens`, not `end_sessions`): the new password already
                # ends every browser sign-in but the one Django keeps on its own password page
                # (the acting admin's, `update_session_auth_hash`), which must go on.
                user.revoke_tokens(now)
                self._users.save(user)
            self._tokens.void(user_id_, TokenPurpose.RESET, now)
            revocation = end_user_sessions(
                user_id=user_id_, now=now, sessions=self._sessions, reason=SessionEnd.PASSWORD_SET
            )
            self._uow.commit()
        revocation.publish(self._revocations)
        return Ok(None)
