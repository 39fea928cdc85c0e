"""RevokeSession."""

from core.domain.accounts.sessions import Session
from core.domain.shared.result import Err
from core.usecases.accounts.sessions import RevokeSession, RevokeSessionError
from tests.unit.accounts.conftest import WEEK


def start(world, user, agent):
    s = Session.start(
        user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent=agent, ip=""
    )
    s.access_jti, s.access_expires_at = f"jti-{agent}", world.clock.now() + WEEK
    world.sessions.add(s)
    world.clock.advance(seconds=1)
    return s


def test_revoke_one_session(world, alice):
    target = start(world, alice, "old")
    revoke = RevokeSession(
        sessions=world.sessions, revocations=world.revocations, clock=world.clock
    )
    assert revoke.execute(alice.id.value, target.id).is_ok()
    assert "jti-old" in world.revocations.denied
    assert world.revocations.denied_sessions == {target.id: target.access_expires_at}
    assert revoke.execute(alice.id.value, target.id) == Err(RevokeSessionError.NOT_FOUND)
    assert revoke.execute("00000000-0000-0000-0000-000000000001", "x") == Err(
        RevokeSessionError.NOT_FOUND
    )
