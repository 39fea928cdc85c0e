"""A fully faked accounts world: `world.<port>` for every port, built around one clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import pytest

from core.domain.accounts.values import UserId
from core.usecases.accounts.password_reset import RequestPasswordReset, ResetPassword
from tests.fakes.accounts import (
    FakeAccountEvents,
    FakeMailer,
    FakePasswordHasher,
    FakePasswordPolicy,
    FakeTokenIssuer,
    FakeTokenRevocations,
    InMemoryEmailQuota,
    InMemoryOneTimeTokens,
    InMemorySessionRepository,
    InMemoryUserRepository,
    make_user,
)
from tests.fakes.clock import FakeClock
from tests.fakes.transactions import FakeUnitOfWork

WEEK = timedelta(days=7)


@pytest.fixture
def world():
    clock = FakeClock()
    uow, sessions = FakeUnitOfWork(), InMemorySessionRepository()
    users = InMemoryUserRepository(sessions=sessions)
    return SimpleNamespace(
        clock=clock,
        users=users,
        sessions=sessions,
        tokens=InMemoryOneTimeTokens(users),
        hasher=FakePasswordHasher(),
        policy=FakePasswordPolicy(),
        issuer=FakeTokenIssuer(clock),
        mailer=FakeMailer(),
        quota=InMemoryEmailQuota(),
        uow=uow,
        events=FakeAccountEvents(),
        revocations=FakeTokenRevocations(uow),
    )


@pytest.fixture
def alice(world):
    user = make_user(world.clock)
    world.users.add(user)
    return user


def unlocked_token_writes(world, action: Callable[[], object]) -> list[tuple[str, UserId]]:
    """The one-time-token writes `action()` made before it had locked their user's row: every
    path locks the user's row first and writes their tokens after (`OneTimeTokens`), so two
    paths never wait for each other's locks in a cycle."""
    world.users.locked, world.tokens.unlocked_writes = [], []
    action()
    return world.tokens.unlocked_writes


def request_password_reset(w):
    """`RequestPasswordReset` on the faked world (its tests and ResetPassword's need one)."""
    return RequestPasswordReset(
        users=w.users,
        tokens=w.tokens,
        mailer=w.mailer,
        quota=w.quota,
        uow=w.uow,
        clock=w.clock,
        events=w.events,
    )


def reset_password(w):
    """`ResetPassword` on the faked world."""
    return ResetPassword(
        users=w.users,
        sessions=w.sessions,
        tokens=w.tokens,
        hasher=w.hasher,
        policy=w.policy,
        revocations=w.revocations,
        uow=w.uow,
        clock=w.clock,
    )
