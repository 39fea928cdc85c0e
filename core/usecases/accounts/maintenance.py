"""Operator tasks: ProvisionUser (seeding), RevokeUserSessions (admin), FlushExpiredTokens."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.accounts.user import User
from core.domain.accounts.values import Email
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts.ports import (
    Clock,
    OneTimeTokens,
    PasswordHasher,
    SessionRepository,
    UnitOfWork,
    UserRepository,
)


@dataclass(frozen=True, slots=True)
class Provisioning:
    email: str
    password: str
    full_name: str
    roles: tuple[str, ...]
    is_staff: bool = False


class ProvisionUser:
    """Create a verified user unless the email exists; Ok(True) when one was created."""

    def __init__(
        self, *, users: UserRepository, hasher: PasswordHasher, uow: UnitOfWork, clock: Clock
    ) -> None:
        self._users, self._hasher, self._uow, self._clock = users, hasher, uow, clock

    def execute(self, command: Provisioning) -> Result[bool, str]:
        email = Email.parse(command.email)
        if email is None:
            return Err(f"{command.email!r} is not an email address")
        if self._users.by_email(email) is not None:
            return Ok(False)
        user = User.register(
            email=email,
            password_hash=self._hasher.hash(command.password),
            full_name=command.full_name,
            now=self._clock.now(),
        )
        user.roles, user.is_staff = command.roles, command.is_staff
        user.verify_email()
        with self._uow:
            created = self._users.add(user)
            self._uow.commit()
        return Ok(created)


@dataclass(frozen=True, slots=True)
class Flushed:
    sessions: int
    one_time_tokens: int


class FlushExpiredTokens:
    """Delete ended refresh families whose last access token has expired too (until then a
    password change may still need to deny it by session), and used or expired one-time
    tokens."""

    def __init__(self, *, sessions: SessionRepository, tokens: OneTimeTokens, clock: Clock) -> None:
        self._sessions, self._tokens, self._clock = sessions, tokens, clock

    def execute(self) -> Result[Flushed, None]:
        now = self._clock.now()
        return Ok(Flushed(self._sessions.purge(now), self._tokens.purge(now)))
