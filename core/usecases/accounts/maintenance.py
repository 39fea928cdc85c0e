"""Operator tasks: ProvisionUser (seeding), CreateUser (Django admin, `createsuperuser`),
FlushExpiredTokens."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.domain.accounts.passwords import PasswordRejected
from core.domain.accounts.user import User
from core.domain.accounts.values import ADMIN_ROLES, Email, PasswordHash
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts.ports import (
    Clock,
    OneTimeTokens,
    PasswordHasher,
    PasswordPolicy,
    SessionRepository,
    UnitOfWork,
    UserRepository,
)
from core.usecases.accounts.registration import password_problems


@dataclass(frozen=True, slots=True)
class Provisioning:
    email: str
    password: str
    full_name: str
    roles: tuple[str, ...]
    is_staff: bool = False


class ProvisionError(StrEnum):
    """Why the seed's user was not created (a refused password is `PasswordRejected`)."""

    INVALID_EMAIL = "invalid_email"
    INVALID_ROLE = "invalid_role"


class ProvisionUser:
    """Create a verified user unless the email exists; Ok(True) when one was created, Ok(False)
    when it existed, an error when the address, the password or a role would not be accepted
    at registration or by an admin."""

    def __init__(
        self,
        *,
        users: UserRepository,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        uow: UnitOfWork,
        clock: Clock,
    ) -> None:
        self._users, self._hasher, self._policy = users, hasher, policy
        self._uow, self._clock = uow, clock

    def execute(self, command: Provisioning) -> Result[bool, ProvisionError | PasswordRejected]:
        email = Email.parse(command.email)
        if email is None:
            return Err(ProvisionError.INVALID_EMAIL)
        if self._users.by_email(email) is not None:
            return Ok(False)  # seeding never changes an existing account, its password neither
        rejected = password_problems(
            self._policy, command.password, email=email.value, full_name=command.full_name
        )
        if rejected is not None:
            return Err(rejected)
        user = User.register(
            email=email,
            password_hash=self._hasher.hash(command.password),
            full_name=command.full_name,
            now=self._clock.now(),
        )
        if not user.assign_roles(command.roles):
            return Err(ProvisionError.INVALID_ROLE)
        if command.is_staff:
            user.make_staff()
        user.verify_email()
        with self._uow:
            created = self._users.add(user)
            self._uow.commit()
        return Ok(created)


class CreateUserError(StrEnum):
    """Why an operator's new user was not created."""

    INVALID_EMAIL = "invalid_email"
    EMAIL_TAKEN = "email_taken"


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user an operator creates. The password arrives hashed: Django's forms and commands
    check it (or leave it unusable) and hash it."""

    email: str
    password_hash: PasswordHash
    full_name: str = ""
    administrator: bool = False


class CreateUser:
    """Create a user as Django admin's add form and `createsuperuser` do: the address as
    register takes it (`Email.parse`), the user as register makes one (active, unverified, the
    default roles) or, for an administrator, verified, staff and with `ADMIN_ROLES`."""

    def __init__(self, *, users: UserRepository, uow: UnitOfWork, clock: Clock) -> None:
        self._users, self._uow, self._clock = users, uow, clock

    def execute(self, command: NewUser) -> Result[User, CreateUserError]:
        email = Email.parse(command.email)
        if email is None:
            return Err(CreateUserError.INVALID_EMAIL)
        user = User.register(
            email=email,
            password_hash=command.password_hash,
            full_name=command.full_name,
            now=self._clock.now(),
        )
        if command.administrator:
            user.assign_roles(ADMIN_ROLES)
            user.make_staff()
            user.verify_email()
        with self._uow:
            if not self._users.add(user):
                return Err(CreateUserError.EMAIL_TAKEN)
            self._uow.commit()
        return Ok(user)


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
