"""Registration and email verification: RegisterUser, VerifyEmail, ResendVerification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from core.domain.accounts.passwords import PasswordRejected, normalise_password, rule_breaches
from core.domain.accounts.user import User, UserStatus
from core.domain.accounts.values import Email
from core.domain.shared.result import Err, Ok, Result
from core.usecases.accounts.ports import (
    AccountEvents,
    Clock,
    EmailQuota,
    Mailer,
    OneTimeTokens,
    PasswordHasher,
    PasswordPolicy,
    TokenPurpose,
    UnitOfWork,
    UserRepository,
)

VERIFICATION_TTL = timedelta(hours=24)


def password_problems(
    policy: PasswordPolicy, password: str, *, email: str, full_name: str
) -> PasswordRejected | None:
    """The policy's verdict on a new password, None when it is acceptable: on the password as
    it is hashed (`normalise_password`), so what is judged is what is kept."""
    password = normalise_password(password)
    messages = [*policy.problems(password, email=email, full_name=full_name)]
    messages += rule_breaches(password)
    # The Django policy may hold the same rules (admin forms use them): each message once.
    return PasswordRejected(tuple(dict.fromkeys(messages))) if messages else None


class RegisterError(StrEnum):
    """Why registration was refused."""

    INVALID_EMAIL = "validation_error"
    EMAIL_TAKEN = "email_taken"


@dataclass(frozen=True, slots=True)
class Registration:
    email: str
    password: str
    full_name: str = ""


class RegisterUser:
    """Create an active, unverified user with the default roles and mail a verification token."""

    def __init__(
        self,
        *,
        users: UserRepository,
        tokens: OneTimeTokens,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        mailer: Mailer,
        uow: UnitOfWork,
        clock: Clock,
        events: AccountEvents,
    ) -> None:
        self._users, self._tokens, self._hasher, self._policy = users, tokens, hasher, policy
        self._mailer, self._uow, self._clock, self._events = mailer, uow, clock, events

    def execute(self, command: Registration) -> Result[User, RegisterError | PasswordRejected]:
        email = Email.parse(command.email)
        if email is None:
            return Err(RegisterError.INVALID_EMAIL)
        rejected = password_problems(
            self._policy, command.password, email=email.value, full_name=command.full_name
        )
        if rejected is not None:
            return Err(rejected)
        now = self._clock.now()
        user = User.register(
            email=email,
            password_hash=self._hasher.hash(command.password),
            full_name=command.full_name,
            now=now,
        )
        with self._uow:
            if not self._users.add(user):
                return Err(RegisterError.EMAIL_TAKEN)
            # The row just added is this unit of work's until it commits: it holds the user's
            # row before it writes their token (the lock order of `OneTimeTokens`).
            token = self._tokens.issue(
                user.id, TokenPurpose.VERIFY_EMAIL, now + VERIFICATION_TTL, now=now
            )
            self._uow.commit()
        self._mailer.send_verification(user.email, token)
        self._events.registered()
        return Ok(user)


class VerifyEmailError(StrEnum):
    """Why a verification token was refused."""

    INVALID = "invalid_token"


class VerifyEmail:
    """Consume a verification token (single use, 24 h) and mark the email verified."""

    def __init__(
        self, *, users: UserRepository, tokens: OneTimeTokens, uow: UnitOfWork, clock: Clock
    ) -> None:
        self._users, self._tokens, self._uow, self._clock = users, tokens, uow, clock

    def execute(self, token: str) -> Result[User, VerifyEmailError]:
        now = self._clock.now()
        owner = self._tokens.peek(token, TokenPurpose.VERIFY_EMAIL, now)
        if owner is None:
            return Err(VerifyEmailError.INVALID)
        with self._uow:
            # The user's row, then the token (the lock order of `OneTimeTokens`): a resend
            # locks the row and then voids this token.
            user = self._users.get_for_update(owner)
            if user is None or user.status == UserStatus.DELETED:
                return Err(VerifyEmailError.INVALID)
            if self._tokens.consume(token, TokenPurpose.VERIFY_EMAIL, now) is None:
                return Err(VerifyEmailError.INVALID)  # used or voided meanwhile
            user.verify_email()
            self._users.save(user)
            self._uow.commit()
        return Ok(user)


class ResendVerification:
    """Mail a fresh verification token when the address belongs to an unverified account and
    its budget of verification emails (`EmailQuota`) is not spent.

    The caller always answers the same way, so nobody learns which addresses have accounts.
    """

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
        if user is None or not user.awaits_verification():
            return Ok(None)
        # Before a token is issued: a new one voids the last one mailed.
        if not self._quota.take(user.email):
            self._events.email_throttled("verification_resend")
            return Ok(None)
        now = self._clock.now()
        with self._uow:
            # The user's row first (the lock order of `OneTimeTokens`): a concurrent resend
            # waits here, then voids the token this one issues. What the row says now counts:
            # an account verified, suspended or given another address meanwhile is answered as
            # an unknown address, so no link goes to an address the account no longer has.
            locked = self._users.get_for_update(user.id)
            if locked is None or not locked.awaits_verification() or locked.email != user.email:
                return Ok(None)
            token = self._tokens.issue(
                locked.id, TokenPurpose.VERIFY_EMAIL, now + VERIFICATION_TTL, now=now
            )
            self._uow.commit()
        self._mailer.send_verification(locked.email, token)
        return Ok(None)
