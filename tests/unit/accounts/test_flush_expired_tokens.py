"""FlushExpiredTokens."""

from core.domain.accounts.sessions import Session
from core.usecases.accounts.maintenance import FlushExpiredTokens
from core.usecases.accounts.ports import TokenPurpose
from tests.unit.accounts.conftest import WEEK


def test_flush_deletes_ended_sessions_and_spent_tokens(world, alice):
    ended = Session.start(
        user_id=alice.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip=""
    )
    ended.revoked_at = world.clock.now()
    live = Session.start(
        user_id=alice.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip=""
    )
    world.sessions.add(ended)
    world.sessions.add(live)
    world.tokens.issue(alice.id, TokenPurpose.RESET, world.clock.now(), now=world.clock.now())
    world.clock.advance(seconds=1)
    flushed = FlushExpiredTokens(
        sessions=world.sessions, tokens=world.tokens, clock=world.clock
    ).execute()
    assert (flushed.unwrap().sessions, flushed.unwrap().one_time_tokens) == (1, 1)
    assert list(world.sessions.rows) == [live.id]
