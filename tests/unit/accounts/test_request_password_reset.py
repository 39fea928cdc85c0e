"""RequestPasswordReset."""

from dataclasses import replace

from core.domain.accounts.user import UserStatus
from core.usecases.accounts.password_reset import (
    RequestPasswordReset,
    ResetPassword,
)


def request(w):
    return RequestPasswordReset(
        users=w.users, tokens=w.tokens, mailer=w.mailer, uow=w.uow, clock=w.clock
    )


def reset(w):
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


def test_request_mails_real_accounts_only(world, alice):
    world.users.add(replace(alice, id=type(alice.id).new(), email=type(alice.email)("d@x.io")))
    deleted = world.users.by_email(type(alice.email)("d@x.io"))
    deleted.status = UserStatus.DELETED
    world.users.save(deleted)
    for email in ("ALICE@example.com", "nobody@x.io", "d@x.io", "junk"):
        assert request(world).execute(email).is_ok()
    assert [(k, to) for k, to, _ in world.mailer.sent] == [("reset", "alice@example.com")]
