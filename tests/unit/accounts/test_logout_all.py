"""LogoutAll."""

from core.domain.accounts.sessions import SessionEnd
from core.domain.shared.result import Err
from core.usecases.accounts.authentication import LogoutAll
from core.usecases.accounts.caller import CurrentUserError
from tests.unit.accounts.sessions import login, principal_of


def logout_all(world):
    return LogoutAll(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    )


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
    # Without a caller it is an operator's doing (Django admin's revoke or delete).
    reasons = {s.revoked_reason for s in world.sessions.rows.values()}
    assert reasons == {SessionEnd.ADMIN}
    assert len(world.revocations.denied) == 2
    assert len(world.revocations.denied_sessions) == 2
    assert world.revocations.cutoffs[alice.id.value] == world.clock.now()
    assert world.users.get(alice.id).tokens_valid_after == world.clock.now()
    # Browser sign-ins (Django admin's session auth hash) end with them.
    assert world.users.get(alice.id).sessions_ended_at == world.clock.now()


def test_logout_all_of_a_vanished_user_still_publishes_the_cut_off(world):
    LogoutAll(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    ).execute("00000000-0000-0000-0000-000000000001")
    assert world.revocations.cutoffs


def test_a_caller_whose_session_was_revoked_ends_nothing(world, alice):
    first, second = login(world), login(world)
    mine = first.refresh_token.split("|")[2]
    world.sessions.revoke(mine, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    caller = principal_of(world, alice, session_id=mine)
    result = logout_all(world).execute(alice.id.value, caller=caller)
    assert result == Err(CurrentUserError.TOKEN_REVOKED)
    assert world.sessions.get(second.refresh_token.split("|")[2]).revoked_at is None
    assert world.revocations.cutoffs == {}


def test_a_caller_ends_their_own_sessions(world, alice):
    login(world)
    me = principal_of(world, alice)
    assert logout_all(world).execute(alice.id.value, caller=me).is_ok()
    assert world.sessions.live_for(alice.id, world.clock.now()) == []
    assert world.revocations.cutoffs[alice.id.value] == world.clock.now()
