"""ResetPassword."""

from dataclasses import replace

from core.domain.accounts.passwords import BLANK_MESSAGE, PasswordRejected
from core.domain.accounts.sessions import Session
from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.password_reset import ResetPasswordError
from core.usecases.accounts.ports import TokenPurpose
from tests.unit.accounts.conftest import (
    WEEK,
    request_password_reset,
    reset_password,
    unlocked_token_writes,
)


def test_reset_sets_the_password_verifies_unlocks_and_ends_sessions(world, alice):
    world.users.save(replace(alice, email_verified=False, failed_logins=3))
    s = Session.start(user_id=alice.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip="")
    world.sessions.add(s)
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    assert reset_password(world).execute(token, "brand-new-1").is_ok()
    user = world.users.get(alice.id)
    assert world.hasher.verify("brand-new-1", user.password_hash)
    assert (user.email_verified, user.failed_logins) == (True, 0)
    assert world.sessions.live_for(alice.id, world.clock.now()) == []
    assert user.sessions_ended_at == world.clock.now()
    assert reset_password(world).execute(token, "brand-new-2") == Err(ResetPasswordError.INVALID)


def test_a_weak_password_leaves_the_token_usable(world, alice):
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    weak = reset_password(world).execute(token, "short")
    assert weak == Err(PasswordRejected(("too short",), field="new_password"))
    assert world.uow.rollbacks == 1


def test_a_password_of_spaces_alone_is_rejected(world, alice):
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    blank = reset_password(world).execute(token, " " * 20)
    assert blank == Err(PasswordRejected((BLANK_MESSAGE,), field="new_password"))
    assert world.hasher.verify("s3cret-pass", world.users.get(alice.id).password_hash)


def test_unknown_tokens_and_deleted_users(world, alice):
    assert reset_password(world).execute("nope", "brand-new-1") == Err(ResetPasswordError.INVALID)
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    world.users.save(replace(world.users.get(alice.id), status=UserStatus.DELETED))
    assert reset_password(world).execute(token, "brand-new-1") == Err(ResetPasswordError.INVALID)


def test_a_token_that_cannot_work_costs_no_hash(world, alice):
    # Hashing is slow and this endpoint has no rate limit: nobody without a usable token
    # makes us hash.
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    hashes = world.hasher.hashes
    for unusable in ("no-such-token", token + "x"):
        assert reset_password(world).execute(unusable, "brand-new-1") == Err(
            ResetPasswordError.INVALID
        )
    world.clock.advance(hours=2)  # the real token, expired
    assert reset_password(world).execute(token, "brand-new-1") == Err(ResetPasswordError.INVALID)
    assert world.hasher.hashes == hashes


def test_reset_locks_the_user_before_it_uses_the_token(world, alice):
    # The lock order of every path that writes a user's one-time tokens: the user's row
    # first. A reset that locked its token first deadlocked with a password change.
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    reset = reset_password(world)
    assert unlocked_token_writes(world, lambda: reset.execute(token, "brand-new-1")) == []
    assert world.users.locked == [alice.id.value]


def test_a_used_reset_link_voids_the_others(world, alice):
    request_password_reset(world).execute("alice@example.com")
    request_password_reset(world).execute("alice@example.com")
    first, second = (token for _, _, token in world.mailer.sent)
    world.tokens.rows[first]["used"] = False  # both live, as two requests at once left them
    verification = world.tokens.issue(
        alice.id,
        TokenPurpose.VERIFY_EMAIL,
        world.clock.now() + WEEK,
        now=world.clock.now(),
    )
    assert reset_password(world).execute(second, "brand-new-1").is_ok()
    assert reset_password(world).execute(first, "brand-new-2") == Err(ResetPasswordError.INVALID)
    assert world.hasher.verify("brand-new-1", world.users.get(alice.id).password_hash)
    # Only the reset links: a verification link is for another purpose.
    now = world.clock.now()
    assert world.tokens.peek(verification, TokenPurpose.VERIFY_EMAIL, now) == alice.id


def test_a_user_deleted_after_the_token_was_checked_resets_nothing(world, alice):
    request_password_reset(world).execute("alice@example.com")
    token = world.mailer.sent[-1][2]
    del world.users.rows[alice.id.value]  # the row gone (Django admin's hard delete)
    assert reset_password(world).execute(token, "brand-new-1") == Err(ResetPasswordError.INVALID)
