"""The caller's own account: GetCurrentUser, UpdateProfile, ChangePassword."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

from core.domain.accounts.passwords import PasswordRejected
from core.domain.accounts.user import User
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts._revocation import end_other_sessions
from core.usecases.accounts.caller import CurrentUserError, acting_for
from core.usecases.accounts.ports import (
    Clock,
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


class GetCurrentUser:
    """The caller's user, unless the database says the caller's token is revoked."""

    def __init__(self, *, users: UserRepository) -> None:
        self._users = users

    def execute(self, principal: Principal) -> Result[User, CurrentUserError]:
        return acting_for(self._users, principal)


class UpdateProfile:
    """Change what the caller may change about themselves: their name."""

    def __init__(self, *, users: UserRepository, uow: UnitOfWork) -> None:
        self._users, self._uow = users, uow

    def execute(
        self, principal: Principal, *, full_name: str | None
    ) -> Result[User, CurrentUserError]:
        with self._uow:
            current = acting_for(self._users, principal, lock=True)
            if current.is_err():
                return current
            user = current.unwrap()
            kept = user.full_name
            if full_name is not None:
                user.rename(full_name)
            if user.full_name != kept:  # the name kept already: nothing to write
                self._users.save(user)
            self._uow.commit()
        return Ok(user)


class ChangePasswordError(StrEnum):
    """Why a password change was refused."""

    INVALID_CREDENTIALS = "invalid_credentials"
    UNKNOWN_USER = "token_invalid"
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - as for `CurrentUserError`


_CHANGE_PASSWORD_ERRORS = {
    CurrentUserError.UNKNOWN_USER: ChangePasswordError.UNKNOWN_USER,
    CurrentUserError.TOKEN_REVOKED: ChangePasswordError.TOKEN_REVOKED,
}


class ChangePassword:
    """Replace the password after checking the current one; every other session ends.

    Every other refresh family ends and its access tokens are denied by session (`sid`); the
    caller's own session (the presenting token's family) goes on: its access token keeps
    working and its refresh token still refreshes. No per-user cut-off, which would log the
    caller out too. Reset tokens mailed before the change stop working: a reset link someone
    else obtained must not outlive the password it was meant to replace.
    """

    def __init__(
        self,
        *,
        users: UserRepository,
        sessions: SessionRepository,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        revocations: TokenRevocations,
        tokens: OneTimeTokens,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._users, self._sessions, self._hasher, self._policy = users, sessions, hasher, policy
        self._revocations, self._tokens, self._uow, self._clock = revocations, tokens, uow, clock

    def execute(
        self, principal: Principal, *, current_password: str, new_password: str
    ) -> Result[None, ChangePasswordError | PasswordRejected]:
        current = acting_for(self._users, principal)
        if current.is_err():
            return Err(_CHANGE_PASSWORD_ERRORS[current.unwrap_err()])
        user = current.unwrap()
        if not self._hasher.verify(current_password, user.password_hash):
            return Err(ChangePasswordError.INVALID_CREDENTIALS)
        if new_password == current_password:
            return Err(
                PasswordRejected(("Choose a password other than the current one.",), "new_password")
            )
        rejected = password_problems(
            self._policy, new_password, email=user.email.value, full_name=user.full_name
        )
        if rejected is not None:
            return Err(replace(rejected, field="new_password"))
        new_hash = self._hasher.hash(new_password)
        with self._uow:
            # Again under the row lock: what was committed while we were hashing decides. A
            # reset, suspension, logout-all or deletion revokes this token (a reset's new
            # password must not be overwritten with one checked against the old), and so does
            # a password change from another session (it ended this one).
            again = acting_for(self._users, principal, lock=True)
            if again.is_err():
                return Err(_CHANGE_PASSWORD_ERRORS[again.unwrap_err()])
            locked = again.unwrap()
            if locked.password_hash != user.password_hash:
                return Err(ChangePasswordError.INVALID_CREDENTIALS)
            locked.password_hash = new_hash
            self._users.save(locked)
            now = self._clock.now()
            # Under the user's row lock, the lock order of `OneTimeTokens`.
            self._tokens.void(user.id, TokenPurpose.RESET, now)
            revocation = end_other_sessions(
                user_id=user.id, caller=principal, now=now, sessions=self._sessions
            )
            self._uow.commit()
        revocation.publish(self._revocations)
        return Ok(None)
