"""Shared steps for the session use-case tests: log alice in against the faked world."""

from datetime import timedelta

from core.domain.accounts.user import LockoutPolicy
from core.usecases.accounts.authentication import AuthenticateUser, Credentials


def login(w):
    return (
        AuthenticateUser(
            users=w.users,
            sessions=w.sessions,
            hasher=w.hasher,
            issuer=w.issuer,
            uow=w.uow,
            clock=w.clock,
            events=w.events,
            lockout=LockoutPolicy(),
            session_lifetime=timedelta(days=7),
        )
        .execute(Credentials("alice@example.com", "s3cret-pass"))
        .unwrap()
        .tokens
    )
