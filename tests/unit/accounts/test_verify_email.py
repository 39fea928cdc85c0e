"""VerifyEmail."""

from datetime import timedelta

from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.ports import TokenPurpose
from core.usecases.accounts.registration import VerifyEmail, VerifyEmailError
from tests.fakes.accounts import make_user


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
