"""VerifyEmail."""

from datetime import timedelta

from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.ports import TokenPurpose
from core.usecases.accounts.registration import VerifyEmail, VerifyEmailError
from tests.fakes.accounts import make_user
from tests.unit.accounts.conftest import unlocked_token_writes


def verify(w):
    return VerifyEmail(users=w.users, tokens=w.tokens, uow=w.uow, clock=w.clock)


def unverified(w, **fields):
    user = make_user(w.clock, email_verified=False, **fields)
    w.users.add(user)
    return user


def test_a_valid_token_verifies_once(world):
    user = unverified(world)
    token = world.tokens.issue(
        user.id,
        TokenPurpose.VERIFY_EMAIL,
        world.clock.now() + timedelta(hours=1),
        now=world.clock.now(),
    )
    assert verify(world).execute(token).unwrap().email_verified
    assert world.users.get(user.id).email_verified
    assert verify(world).execute(token) == Err(VerifyEmailError.INVALID)


def test_expired_or_foreign_purpose_tokens_fail(world):
    user = unverified(world)
    expired = world.tokens.issue(
        user.id, TokenPurpose.VERIFY_EMAIL, world.clock.now(), now=world.clock.now()
    )
    assert verify(world).execute(expired) == Err(VerifyEmailError.INVALID)
    reset = world.tokens.issue(
        user.id, TokenPurpose.RESET, world.clock.now() + timedelta(hours=1), now=world.clock.now()
    )
    assert verify(world).execute(reset) == Err(VerifyEmailError.INVALID)


def test_a_deleted_user_cannot_verify(world):
    user = unverified(world, status=UserStatus.DELETED)
    token = world.tokens.issue(
        user.id,
        TokenPurpose.VERIFY_EMAIL,
        world.clock.now() + timedelta(hours=1),
        now=world.clock.now(),
    )
    assert verify(world).execute(token) == Err(VerifyEmailError.INVALID)
    assert world.uow.rollbacks == 1


def test_verifying_locks_the_user_before_it_uses_the_token(world):
    # The lock order of every path that writes a user's one-time tokens: the user's row
    # first. Otherwise a resend, which locks the row and then voids this token, deadlocks.
    user = unverified(world)
    later = world.clock.now() + timedelta(hours=1)
    token = world.tokens.issue(user.id, TokenPurpose.VERIFY_EMAIL, later, now=world.clock.now())
    verifying = verify(world)
    assert unlocked_token_writes(world, lambda: verifying.execute(token).unwrap()) == []
    assert world.users.locked == [user.id.value]


def test_a_user_removed_after_the_token_was_checked_verifies_nothing(world):
    user = unverified(world)
    later = world.clock.now() + timedelta(hours=1)
    token = world.tokens.issue(user.id, TokenPurpose.VERIFY_EMAIL, later, now=world.clock.now())
    del world.users.rows[user.id.value]  # the row gone (Django admin's hard delete)
    assert verify(world).execute(token) == Err(VerifyEmailError.INVALID)
