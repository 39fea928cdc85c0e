"""FlushExpiredTokens."""

from datetime import timedelta

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
    world.tokens.issue(alice.id, TokenPurpose.RESET, world.clock.now())
    world.clock.advance(seconds=1)
    flushed = FlushExpiredTokens(
        sessions=world.sessions, tokens=world.tokens, clock=world.clock
    ).execute()
    assert (flushed.unwrap().sessions, flushed.unwrap().one_time_tokens) == (1, 1)
    assert list(world.sessions.rows) == [live.id]


def test_flush_keeps_an_ended_family_until_its_last_access_token_expires(world, alice):
    ended = Session.start(
        user_id=alice.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip=""
    )
    ended.revoked_at = world.clock.now()
    ended.access_expires_at = world.clock.now() + timedelta(minutes=30)
    world.sessions.add(ended)
    flush = FlushExpiredTokens(sessions=world.sessions, tokens=world.tokens, clock=world.clock)
    world.clock.advance(seconds=1)
    assert flush.execute().unwrap().sessions == 0
    world.clock.advance(seconds=30 * 60)
    assert flush.execute().unwrap().sessions == 1
