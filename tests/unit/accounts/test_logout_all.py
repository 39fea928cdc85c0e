"""LogoutAll."""

from core.usecases.accounts.authentication import LogoutAll
from tests.unit.accounts.sessions import login


def test_logout_all_ends_everything_and_sets_the_cut_off(world, alice):
    login(world)
    login(world)
    LogoutAll(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    ).execute(alice.id.value)
    assert world.sessions.live_for(alice.id, world.clock.now()) == []
    assert len(world.revocations.denied) == 2
    assert len(world.revocations.denied_sessions) == 2
    assert world.revocations.cutoffs[alice.id.value] == world.clock.now()
    assert world.users.get(alice.id).tokens_valid_after == world.clock.now()


def test_logout_all_of_a_vanished_user_still_publishes_the_cut_off(world):
    LogoutAll(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    ).execute("00000000-0000-0000-0000-000000000001")
    assert world.revocations.cutoffs
