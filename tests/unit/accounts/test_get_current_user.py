"""GetCurrentUser."""

from dataclasses import replace
from datetime import timedelta

import pytest

from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.user import UserStatus
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.caller import CurrentUserError
from core.usecases.accounts.profile import GetCurrentUser
from tests.fakes.accounts import make_user
from tests.unit.accounts.conftest import WEEK


def token_of(user_id, issued_at, session_id=None):
    return Principal(user_id, frozenset({"user"}), "jti-1", issued_at, issued_at, session_id)


def test_get_current_user(world, alice):
    me = token_of(alice.id.value, world.clock.now())
    assert GetCurrentUser(users=world.users).execute(me).unwrap().id == alice.id
    assert GetCurrentUser(users=world.users).execute(
        token_of("not-a-uuid", world.clock.now())
    ) == Err(CurrentUserError.UNKNOWN_USER)
    assert GetCurrentUser(users=world.users).execute(
        token_of("00000000-0000-4000-8000-000000000001", world.clock.now())
    ) == Err(CurrentUserError.UNKNOWN_USER)


@pytest.mark.parametrize("status", [UserStatus.SUSPENDED, UserStatus.INACTIVE, UserStatus.DELETED])
def test_the_token_of_a_user_who_is_not_active_is_revoked(world, alice, status):
    # What the cache's revocation facts say, also once those facts are lost.
    world.users.save(replace(alice, status=status))
    me = token_of(alice.id.value, world.clock.now())
    assert GetCurrentUser(users=world.users).execute(me) == Err(CurrentUserError.TOKEN_REVOKED)


def test_a_token_issued_before_the_users_cut_off_is_revoked(world, alice):
    issued = world.clock.now()
    world.users.save(replace(alice, tokens_valid_after=issued + timedelta(seconds=1)))
    before = token_of(alice.id.value, issued)
    after = token_of(alice.id.value, issued + timedelta(seconds=1))
    get = GetCurrentUser(users=world.users)
    assert get.execute(before) == Err(CurrentUserError.TOKEN_REVOKED)
    assert get.execute(after).unwrap().id == alice.id


def test_a_token_of_the_cut_off_second_itself_is_refused_as_the_cache_refuses_it(world, alice):
    """It may predate the cut-off (`iat` has no fraction); no token of that second is minted
    after it (login and refresh wait for the next), so the next second's token is kept."""
    issued = world.clock.now()  # a whole second: `iat` has no fraction
    world.users.save(replace(alice, tokens_valid_after=issued + timedelta(milliseconds=700)))
    get = GetCurrentUser(users=world.users)
    assert get.execute(token_of(alice.id.value, issued)) == Err(CurrentUserError.TOKEN_REVOKED)
    assert get.execute(token_of(alice.id.value, issued + timedelta(seconds=1))).is_ok()


def test_a_token_of_a_revoked_session_is_revoked(world, alice):
    # What the cache's `sid` mark says too (logout, session delete, reuse, password change),
    # also once that mark is lost.
    mine, theirs = start_session(world, alice), start_session(world, alice)
    world.sessions.revoke(theirs.id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    get = GetCurrentUser(users=world.users)
    assert get.execute(token_of(alice.id.value, world.clock.now(), theirs.id)) == Err(
        CurrentUserError.TOKEN_REVOKED
    )
    assert get.execute(token_of(alice.id.value, world.clock.now(), mine.id)).is_ok()


def test_a_revoked_session_of_someone_else_says_nothing_about_the_token(world, alice):
    bob = make_user(world.clock, email="bob@example.com")
    world.users.add(bob)
    bobs = start_session(world, bob)
    world.sessions.revoke(bobs.id, bob.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    me = token_of(alice.id.value, world.clock.now(), bobs.id)
    assert GetCurrentUser(users=world.users).execute(me).is_ok()


def start_session(world, user):
    session = Session.start(
        user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip=""
    )
    world.sessions.add(session)
    return session
