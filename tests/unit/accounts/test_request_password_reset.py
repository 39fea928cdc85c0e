"""RequestPasswordReset."""

from dataclasses import replace

import pytest

from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.password_reset import ResetPasswordError
from tests.fakes.accounts import InMemoryEmailQuota
from tests.unit.accounts.conftest import (
    request_password_reset,
    reset_password,
    unlocked_token_writes,
)


def test_request_mails_real_accounts_only(world, alice):
    world.users.add(replace(alice, id=type(alice.id).new(), email=type(alice.email)("d@x.io")))
    deleted = world.users.by_email(type(alice.email)("d@x.io"))
    deleted.status = UserStatus.DELETED
    world.users.save(deleted)
    for email in ("ALICE@example.com", "nobody@x.io", "d@x.io", "junk"):
        assert request_password_reset(world).execute(email).is_ok()
    assert [(k, to) for k, to, _ in world.mailer.sent] == [("reset", "alice@example.com")]
    assert world.quota.taken == {"alice@example.com": 1}


def test_an_address_past_its_budget_is_sent_nothing_and_its_last_token_still_works(world, alice):
    world.quota.limit = 1
    assert request_password_reset(world).execute("alice@example.com").is_ok()
    mailed = world.mailer.sent[-1][2]
    assert request_password_reset(world).execute(" ALICE@Example.COM").is_ok()
    assert [to for _, to, _ in world.mailer.sent] == ["alice@example.com"]
    assert world.quota.taken == {"alice@example.com": 2}
    assert world.events.events == ["email_throttled:password_reset"]
    # No token was issued for the throttled ask, so the one mailed still resets the password.
    assert reset_password(world).execute(mailed, "brand-new-secret-9").is_ok()
    assert reset_password(world).execute(mailed, "brand-new-secret-9") == Err(
        ResetPasswordError.INVALID
    )


def test_issuing_locks_the_user_first(world, alice):
    # Issuers of one user run one after the other behind the user's row, so each one's void
    # sees the token the last one issued: one live reset link at a time.
    request = request_password_reset(world)
    assert unlocked_token_writes(world, lambda: request.execute("alice@example.com")) == []
    assert world.users.locked == [alice.id.value]


class _DeletedWhileSpending(InMemoryEmailQuota):
    """Spends the budget, meanwhile the account is deleted (soft, or its row removed)."""

    def __init__(self, world, alice, *, hard: bool) -> None:
        super().__init__()
        self._world, self._alice, self._hard = world, alice, hard

    def take(self, to):
        if self._hard:
            del self._world.users.rows[self._alice.id.value]
        else:
            self._world.users.save(replace(self._alice, status=UserStatus.DELETED))
        return super().take(to)


@pytest.mark.parametrize("hard", [False, True])
def test_an_account_deleted_before_its_row_was_locked_is_mailed_nothing(world, alice, hard):
    world.quota = _DeletedWhileSpending(world, alice, hard=hard)
    assert request_password_reset(world).execute("alice@example.com").is_ok()
    assert world.mailer.sent == []
    assert world.tokens.rows == {}


def _readdressed(user, email):
    """An admin gives `user` the address `email` (between the use case's read and its lock)."""

    def change(users):
        users.save(replace(users.get(user.id), email=type(user.email)(email)))

    return change


def test_an_address_changed_before_the_row_was_locked_is_mailed_nothing(world, alice):
    # The link would go to an address the account no longer has.
    world.users.concurrently = _readdressed(alice, "alice@elsewhere.example")
    assert request_password_reset(world).execute("alice@example.com").is_ok()
    assert world.users.concurrently is None, "the change never landed"
    assert world.mailer.sent == []
    assert world.tokens.rows == {}
