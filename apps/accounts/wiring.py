"""Composition root of the accounts context: factories that build use cases from adapters.

Views, commands, admin actions and the seeder get their use cases here; nothing else constructs
adapters. Settings are read when a use case is built, never at import time. Every use case and
the token issuer read one clock, the system's unless a test set another (`use_clock`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from django.conf import settings

from apps.accounts.adapters import (
    DjangoMailer,
    DjangoPasswordHasher,
    DjangoPasswordPolicy,
    PrometheusAccountEvents,
    SimpleJWTTokenIssuer,
)
from apps.accounts.background import BackgroundLoginFailures, InBackground
from apps.accounts.ratelimits import CacheEmailQuota
from apps.accounts.repositories import (
    DB,
    DjangoOneTimeTokens,
    DjangoSessionRepository,
    DjangoUserRepository,
)
from apps.common.clock import SystemClock
from apps.common.tokens import CacheTokenRevocations
from apps.common.transactions import DjangoUnitOfWork
from core.domain.accounts.user import LockoutPolicy
from core.usecases.accounts.admin import DeleteUsers, GetUser, ListUsers, UpdateUser
from core.usecases.accounts.authentication import (
    AuthenticateUser,
    Logout,
    LogoutAll,
    RecordFailedLogin,
    RefreshTokens,
    VerifyCredentials,
)
from core.usecases.accounts.maintenance import CreateUser, FlushExpiredTokens, ProvisionUser
from core.usecases.accounts.password_reset import (
    RequestPasswordReset,
    ResetPassword,
    SealPasswordSet,
)
from core.usecases.accounts.ports import Clock, MomentWaiter
from core.usecases.accounts.profile import ChangePassword, GetCurrentUser, UpdateProfile
from core.usecases.accounts.registration import RegisterUser, ResendVerification, VerifyEmail
from core.usecases.accounts.sessions import ListSessions, RevokeSession


class _AccountsClock(Clock, MomentWaiter, Protocol):
    """The accounts' one clock: it tells the time and waits for a moment (`MomentWaiter`)."""


_clock: _AccountsClock = SystemClock()


def clock() -> _AccountsClock:
    """The clock use cases are built with: what time it is for the accounts context."""
    return _clock


def use_clock(new: _AccountsClock) -> _AccountsClock:
    """Build every use case from now on with `new` and return the clock it replaces; tests
    move time with it instead of sleeping (tokens' `iat` and `exp` come from it too, and a
    wait for a cut-off's second moves it)."""
    global _clock
    previous, _clock = _clock, new
    return previous


def _session_lifetime() -> timedelta:
    lifetime: timedelta = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    return lifetime


def _mailer() -> DjangoMailer:
    return DjangoMailer(background=settings.ACCOUNTS_EMAIL_IN_BACKGROUND)


def _email_quota(kind: str) -> CacheEmailQuota:
    return CacheEmailQuota(kind, settings.ACCOUNTS_ADDRESS_RATE_LIMITS[kind], clock=clock())


def register_user() -> RegisterUser:
    return RegisterUser(
        users=DjangoUserRepository(),
        tokens=DjangoOneTimeTokens(),
        hasher=DjangoPasswordHasher(),
        policy=DjangoPasswordPolicy(),
        mailer=_mailer(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
        events=PrometheusAccountEvents(),
    )


def verify_email() -> VerifyEmail:
    return VerifyEmail(
        users=DjangoUserRepository(),
        tokens=DjangoOneTimeTokens(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def resend_verification() -> InBackground:
    """Answered alike for every address: the whole use case runs in the background."""
    return InBackground(_resend_verification, enabled=settings.ACCOUNTS_EMAIL_IN_BACKGROUND)


def _resend_verification() -> ResendVerification:
    return ResendVerification(
        users=DjangoUserRepository(),
        tokens=DjangoOneTimeTokens(),
        mailer=DjangoMailer(),
        quota=_email_quota("verification_resend"),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
        events=PrometheusAccountEvents(),
    )


def authenticate_user() -> AuthenticateUser:
    return AuthenticateUser(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        hasher=DjangoPasswordHasher(),
        issuer=SimpleJWTTokenIssuer(clock()),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
        events=PrometheusAccountEvents(),
        failures=_login_failures(),
        session_lifetime=_session_lifetime(),
        waiter=clock(),
    )


def verify_credentials() -> VerifyCredentials:
    """Login's password check without a session: Django admin's sign-in."""
    return VerifyCredentials(
        users=DjangoUserRepository(),
        hasher=DjangoPasswordHasher(),
        clock=clock(),
        events=PrometheusAccountEvents(),
        failures=_login_failures(),
    )


def _login_failures() -> BackgroundLoginFailures:
    return BackgroundLoginFailures(
        _record_failed_login, enabled=settings.ACCOUNTS_EMAIL_IN_BACKGROUND
    )


def _record_failed_login() -> RecordFailedLogin:
    return RecordFailedLogin(
        users=DjangoUserRepository(),
        uow=DjangoUnitOfWork(DB),
        events=PrometheusAccountEvents(),
        lockout=LockoutPolicy(
            max_failures=settings.ACCOUNTS_LOCKOUT_THRESHOLD,
            lock_for=timedelta(seconds=settings.ACCOUNTS_LOCKOUT_SECONDS),
        ),
    )


def refresh_tokens() -> RefreshTokens:
    return RefreshTokens(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        issuer=SimpleJWTTokenIssuer(clock()),
        revocations=CacheTokenRevocations(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
        events=PrometheusAccountEvents(),
        waiter=clock(),
    )


def logout() -> Logout:
    return Logout(
        sessions=DjangoSessionRepository(),
        issuer=SimpleJWTTokenIssuer(clock()),
        revocations=CacheTokenRevocations(),
        clock=clock(),
    )


def logout_all() -> LogoutAll:
    return LogoutAll(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        revocations=CacheTokenRevocations(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def get_current_user() -> GetCurrentUser:
    return GetCurrentUser(users=DjangoUserRepository())


def update_profile() -> UpdateProfile:
    return UpdateProfile(users=DjangoUserRepository(), uow=DjangoUnitOfWork(DB))


def change_password() -> ChangePassword:
    return ChangePassword(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        hasher=DjangoPasswordHasher(),
        policy=DjangoPasswordPolicy(),
        revocations=CacheTokenRevocations(),
        tokens=DjangoOneTimeTokens(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def seal_password_set() -> SealPasswordSet:
    return SealPasswordSet(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        tokens=DjangoOneTimeTokens(),
        revocations=CacheTokenRevocations(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def request_password_reset() -> InBackground:
    """Answered alike for every address: the whole use case runs in the background."""
    return InBackground(_request_password_reset, enabled=settings.ACCOUNTS_EMAIL_IN_BACKGROUND)


def _request_password_reset() -> RequestPasswordReset:
    return RequestPasswordReset(
        users=DjangoUserRepository(),
        tokens=DjangoOneTimeTokens(),
        mailer=DjangoMailer(),  # already off the request's thread when that is wanted
        quota=_email_quota("password_reset"),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
        events=PrometheusAccountEvents(),
    )


def reset_password() -> ResetPassword:
    return ResetPassword(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        tokens=DjangoOneTimeTokens(),
        hasher=DjangoPasswordHasher(),
        policy=DjangoPasswordPolicy(),
        revocations=CacheTokenRevocations(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def list_sessions() -> ListSessions:
    return ListSessions(
        users=DjangoUserRepository(), sessions=DjangoSessionRepository(), clock=clock()
    )


def revoke_session() -> RevokeSession:
    return RevokeSession(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        revocations=CacheTokenRevocations(),
        clock=clock(),
    )


def list_users() -> ListUsers:
    return ListUsers(users=DjangoUserRepository())


def get_user() -> GetUser:
    return GetUser(users=DjangoUserRepository())


def update_user() -> UpdateUser:
    return UpdateUser(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        revocations=CacheTokenRevocations(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def delete_users() -> DeleteUsers:
    """Django admin's delete (a hard delete; the API's is the status `deleted`)."""
    return DeleteUsers(
        users=DjangoUserRepository(),
        sessions=DjangoSessionRepository(),
        revocations=CacheTokenRevocations(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def provision_user() -> ProvisionUser:
    return ProvisionUser(
        users=DjangoUserRepository(),
        hasher=DjangoPasswordHasher(),
        policy=DjangoPasswordPolicy(),
        uow=DjangoUnitOfWork(DB),
        clock=clock(),
    )


def create_user() -> CreateUser:
    """Users made by Django admin's add form and `createsuperuser` (`UserManager`)."""
    return CreateUser(users=DjangoUserRepository(), uow=DjangoUnitOfWork(DB), clock=clock())


def flush_expired_tokens() -> FlushExpiredTokens:
    return FlushExpiredTokens(
        sessions=DjangoSessionRepository(), tokens=DjangoOneTimeTokens(), clock=clock()
    )
