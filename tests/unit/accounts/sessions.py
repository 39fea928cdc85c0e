"""Shared steps for the accounts use-case tests: AuthenticateUser on the faked world, and
logging alice in with it."""

from datetime import timedelta

from core.domain.accounts.user import LockoutPolicy
from core.usecases.accounts.authentication import AuthenticateUser, Credentials


def authenticate_user(w, lockout=None):
    return AuthenticateUser(
        users=w.users,
        sessions=w.sessions,
        hasher=w.hasher,
        issuer=w.issuer,
        uow=w.uow,
        clock=w.clock,
        events=w.events,
        lockout=lockout or LockoutPolicy(),
        session_lifetime=timedelta(days=7),
    )


def login(w):
    credentials = Credentials("alice@example.com", "s3cret-pass")
    return authenticate_user(w).execute(credentials).unwrap().tokens
