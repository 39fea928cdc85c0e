"""SealPasswordSet."""

from datetime import timedelta

from core.domain.accounts.sessions import SessionEnd
from core.domain.shared.result import Ok
from core.usecases.accounts.password_reset import SealPasswordSet
from core.usecases.accounts.ports import TokenPurpose
from tests.fakes.accounts import make_user
from tests.unit.accounts.conftest import unlocked_token_writes
from tests.unit.accounts.sessions import login


def seal(world):
    return SealPasswordSet(
        users=world.users,
        sessions=world.sessions,
        tokens=world.tokens,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    )


def test_sessions_end_and_reset_tokens_stop_in_one_unit_of_work(world, alice):
    login(world)
    login(world)
    reset = world.tokens.issue(
        alice.id, TokenPurpose.RESET, world.clock.now() + timedelta(hours=1), now=world.clock.now()
    )
    before = (world.uow.commits, world.uow.rollbacks)
    assert seal(world).execute(alice.id.value) == Ok(None)
    now = world.clock.now()
    assert world.tokens.peek(reset, TokenPurpose.RESET, now) is None
    assert world.sessions.live_for(alice.id, now) == []
    reasons = {s.revoked_reason for s in world.sessions.rows.values()}
    assert reasons == {SessionEnd.PASSWORD_SET}
    assert world.users.get(alice.id).tokens_valid_after == now
    # The new password ends browser sign-ins itself, but the one Django keeps (its own page).
    assert world.users.get(alice.id).sessions_ended_at is None
    assert (world.uow.commits, world.uow.rollbacks) == (before[0] + 1, before[1])
    # Published after the commit (the fake refuses a fact written while the unit is open).
    assert len(world.revocations.denied) == 2
    assert len(world.revocations.denied_sessions) == 2
    assert world.revocations.cutoffs[alice.id.value] == now


def test_only_the_users_reset_tokens_stop(world, alice):
    bob = make_user(world.clock, email="bob@example.com")
    world.users.add(bob)
    later = world.clock.now() + timedelta(hours=1)
    verify = world.tokens.issue(alice.id, TokenPurpose.VERIFY_EMAIL, later, now=world.clock.now())
    others = world.tokens.issue(bob.id, TokenPurpose.RESET, later, now=world.clock.now())
    seal(world).execute(alice.id.value)
    now = world.clock.now()
    assert world.tokens.peek(verify, TokenPurpose.VERIFY_EMAIL, now) == alice.id
    assert world.tokens.peek(others, TokenPurpose.RESET, now) == bob.id
    assert bob.id.value not in world.revocations.cutoffs


def test_a_vanished_user_still_gets_the_cut_off(world):
    assert seal(world).execute("00000000-0000-0000-0000-000000000001") == Ok(None)
    assert world.revocations.cutoffs
    assert world.uow.commits == 1


def test_the_users_row_is_locked_before_the_reset_tokens_are_voided(world, alice):
    # The lock order every path that writes a user's one-time tokens keeps: the user's row
    # first. Tokens first deadlocked with a password change, which locks the row and then
    # voids the same tokens.
    sealing = seal(world)
    assert unlocked_token_writes(world, lambda: sealing.execute(alice.id.value)) == []
    assert world.users.locked == [alice.id.value]
