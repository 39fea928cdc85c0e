"""Shared steps for the accounts use-case tests: AuthenticateUser on the faked world, and
logging alice in with it."""

from datetime import timedelta

from core.domain.accounts.user import LockoutPolicy
from core.domain.shared.identity import Principal
from core.usecases.accounts.authentication import (
    AuthenticateUser,
    Credentials,
    RecordFailedLogin,
)
from tests.fakes.accounts import InlineLoginFailures


def record_failed_login(w, lockout=None):
    return RecordFailedLogin(
        users=w.users, uow=w.uow, events=w.events, lockout=lockout or LockoutPolicy()
    )


def authenticate_user(w, lockout=None, waiter=None):
    return AuthenticateUser(
        users=w.users,
        sessions=w.sessions,
        hasher=w.hasher,
        issuer=w.issuer,
        uow=w.uow,
        clock=w.clock,
        events=w.events,
        failures=InlineLoginFailures(record_failed_login(w, lockout)),
        session_lifetime=timedelta(days=7),
        waiter=waiter or w.clock,
    )


def login(w):
    credentials = Credentials("alice@example.com", "s3cret-pass")
    return authenticate_user(w).execute(credentials).unwrap().tokens


def principal_of(w, user, *, session_id=None, jti="mine", issued_at=None):
    """An access token of `user` as the verifier hands it to the use cases."""
    issued = issued_at or w.clock.now()
    return Principal(user.id.value, frozenset(user.roles), jti, issued, issued, session_id)
