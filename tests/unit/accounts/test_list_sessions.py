"""ListSessions."""

from core.domain.accounts.sessions import Session
from core.usecases.accounts.sessions import ListSessions
from tests.unit.accounts.conftest import WEEK


def start(world, user, agent):
    s = Session.start(
        user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent=agent, ip=""
    )
    s.access_jti, s.access_expires_at = f"jti-{agent}", world.clock.now() + WEEK
    world.sessions.add(s)
    world.clock.advance(seconds=1)
    return s


def test_list_is_newest_first(world, alice):
    start(world, alice, "old")
    start(world, alice, "new")
    listed = ListSessions(sessions=world.sessions, clock=world.clock).execute(alice.id.value)
    assert [s.user_agent for s in listed.unwrap()] == ["new", "old"]
