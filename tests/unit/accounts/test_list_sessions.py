"""ListSessions."""

from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.shared.result import Err
from core.usecases.accounts.caller import CurrentUserError
from core.usecases.accounts.sessions import ListSessions
from tests.unit.accounts.conftest import WEEK
from tests.unit.accounts.sessions import principal_of


def start(world, user, agent):
    s = Session.start(
        user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent=agent, ip=""
    )
    s.access_jti, s.access_expires_at = f"jti-{agent}", world.clock.now() + WEEK
    world.sessions.add(s)
    world.clock.advance(seconds=1)
    return s


def list_sessions(world):
    return ListSessions(users=world.users, sessions=world.sessions, clock=world.clock)


def test_list_is_newest_first(world, alice):
    start(world, alice, "old")
    start(world, alice, "new")
    listed = list_sessions(world).execute(principal_of(world, alice))
    assert [s.user_agent for s in listed.unwrap()] == ["new", "old"]


def test_a_token_of_a_revoked_session_lists_nothing(world, alice):
    # What the cache's facts say too, also once they are lost.
    mine = start(world, alice, "mine")
    world.sessions.revoke(mine.id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    listed = list_sessions(world).execute(principal_of(world, alice, session_id=mine.id))
    assert listed == Err(CurrentUserError.TOKEN_REVOKED)
