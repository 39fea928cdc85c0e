"""RevokeSession."""

from core.domain.accounts.sessions import Session, SessionEnd, parse_session_id
from core.domain.shared.result import Err
from core.usecases.accounts.caller import CurrentUserError
from core.usecases.accounts.sessions import RevokeSession, RevokeSessionError
from tests.fakes.accounts import make_user
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


def revoke_session(world):
    return RevokeSession(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        clock=world.clock,
    )


def test_revoke_one_session(world, alice):
    target = start(world, alice, "old")
    revoke = revoke_session(world)
    me = principal_of(world, alice)
    assert revoke.execute(me, target.id).is_ok()
    assert "jti-old" in world.revocations.denied
    assert world.revocations.denied_sessions == {target.id: target.access_expires_at}
    assert revoke.execute(me, target.id) == Err(RevokeSessionError.NOT_FOUND)
    assert revoke.execute(me, "x") == Err(RevokeSessionError.NOT_FOUND)


def test_a_session_id_in_upper_case_is_the_same_session(world, alice):
    target = start(world, alice, "old")
    revoke = revoke_session(world)
    assert revoke.execute(principal_of(world, alice), target.id.upper()).is_ok()
    assert target.id in world.revocations.denied_sessions


def test_session_ids_parse_to_their_canonical_form():
    canonical = "6f1c3b1e-8d2a-4c5b-9e7f-0a1b2c3d4e5f"
    assert parse_session_id(canonical.upper()) == canonical
    assert parse_session_id("{" + canonical + "}") is None  # one session, one spelling
    assert parse_session_id("not-a-uuid") is None


def test_a_token_of_a_revoked_session_ends_nothing(world, alice):
    mine, other = start(world, alice, "mine"), start(world, alice, "other")
    world.sessions.revoke(mine.id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    me = principal_of(world, alice, session_id=mine.id)
    assert revoke_session(world).execute(me, other.id) == Err(CurrentUserError.TOKEN_REVOKED)
    assert world.sessions.get(other.id).is_live(world.clock.now())


def test_a_retried_delete_of_a_session_ended_meanwhile_denies_its_access_tokens_again(world, alice):
    # The first delete's UPDATE committed after its 503, or its facts were lost (Redis down):
    # the retry found nothing live to end (404) and denied nothing, so the session's access
    # tokens still passed the gateway.
    target = start(world, alice, "old")
    world.sessions.revoke(target.id, alice.id, world.clock.now(), reason=SessionEnd.SESSION_REVOKED)
    revoke = revoke_session(world)
    assert revoke.execute(principal_of(world, alice), target.id) == Err(
        RevokeSessionError.NOT_FOUND
    )
    assert world.revocations.denied_sessions == {target.id: target.access_expires_at}
    assert world.revocations.denied == {"jti-old": target.access_expires_at}


def test_another_users_ended_session_is_not_found_and_denies_nothing(world, alice):
    bob = make_user(world.clock, "bob@example.com")
    world.users.add(bob)
    theirs = start(world, bob, "theirs")
    world.sessions.revoke(theirs.id, bob.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    revoke = revoke_session(world)
    assert revoke.execute(principal_of(world, alice), theirs.id) == Err(
        RevokeSessionError.NOT_FOUND
    )
    assert world.revocations.denied_sessions == {}
    assert world.revocations.denied == {}
