"""Logout."""

from core.domain.accounts.sessions import SessionEnd
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.authentication import (
    Logout,
    LogoutError,
)
from tests.unit.accounts.sessions import login


def principal(w, user, tokens):
    return Principal(
        user_id=user.id.value,
        roles=frozenset({"user"}),
        token_id=tokens.access_jti,
        issued_at=w.clock.now(),
        expires_at=tokens.access_expires_at,
    )


def logout(w):
    return Logout(sessions=w.sessions, issuer=w.issuer, revocations=w.revocations, clock=w.clock)


def test_logout_ends_the_session_and_denies_the_access_token(world, alice):
    tokens = login(world)
    assert logout(world).execute(principal(world, alice, tokens), tokens.refresh_token).is_ok()
    assert tokens.access_jti in world.revocations.denied
    assert world.sessions.live_for(alice.id, world.clock.now()) == []
    # Logging out twice is harmless.
    assert logout(world).execute(principal(world, alice, tokens), tokens.refresh_token).is_ok()


def test_logout_refuses_garbage_and_other_peoples_tokens(world, alice):
    tokens = login(world)
    me = principal(world, alice, tokens)
    assert logout(world).execute(me, "garbage") == Err(LogoutError.INVALID)
    other = Principal("someone-else", frozenset(), "j", me.issued_at, me.expires_at)
    assert logout(world).execute(other, tokens.refresh_token) == Err(LogoutError.INVALID)


def test_logout_denies_every_access_token_of_the_session(world, alice):
    tokens = login(world)
    session_id = tokens.refresh_token.split("|")[2]
    assert logout(world).execute(principal(world, alice, tokens), tokens.refresh_token).is_ok()
    assert world.revocations.denied_sessions == {session_id: tokens.access_expires_at}


def test_an_expired_refresh_token_still_logs_the_caller_out(world, alice):
    tokens = login(world)
    world.clock.advance(days=7, seconds=1)  # the family has ended; its refresh token expired
    assert world.issuer.read_refresh(tokens.refresh_token).is_err()
    assert logout(world).execute(principal(world, alice, tokens), tokens.refresh_token).is_ok()
    assert tokens.access_jti in world.revocations.denied


def test_a_retried_logout_denies_every_access_token_of_the_session_again(world, alice):
    # The first logout's UPDATE committed after its 503 (PostgreSQL froze), or its facts were
    # lost (Redis down): the retry found the session ended and denied only the presented token,
    # so the session's other access tokens still passed the gateway, which reads Redis only.
    tokens = login(world)
    session_id = tokens.refresh_token.split("|")[2]
    world.sessions.revoke(session_id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    assert world.revocations.denied_sessions == {}
    assert logout(world).execute(principal(world, alice, tokens), tokens.refresh_token).is_ok()
    assert world.revocations.denied_sessions == {session_id: tokens.access_expires_at}
    assert world.revocations.denied[tokens.access_jti] == tokens.access_expires_at
    assert world.sessions.get(session_id).revoked_reason == SessionEnd.LOGOUT  # kept as it was
