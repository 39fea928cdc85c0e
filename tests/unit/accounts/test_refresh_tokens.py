"""RefreshTokens."""

from datetime import timedelta

import pytest

from core.domain.accounts.sessions import SessionEnd
from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.admin import UserChanges
from core.usecases.accounts.authentication import (
    RefreshError,
    RefreshTokens,
)
from tests.unit.accounts.sessions import login
from tests.unit.accounts.test_update_user import update


def use_case(w):
    return RefreshTokens(
        users=w.users,
        sessions=w.sessions,
        issuer=w.issuer,
        revocations=w.revocations,
        uow=w.uow,
        clock=w.clock,
        events=w.events,
        waiter=w.clock,
    )


def test_rotation_keeps_the_family_expiry(world, alice):
    first = login(world)
    world.clock.advance(days=1)
    second = use_case(world).execute(first.refresh_token).unwrap().tokens
    assert second.refresh_expires_at == first.refresh_expires_at
    assert use_case(world).execute(second.refresh_token).is_ok()
    assert world.events.events.count("refreshed") == 2


def test_reuse_ends_the_family_and_denies_its_access_token(world, alice):
    first = login(world)
    second = use_case(world).execute(first.refresh_token).unwrap().tokens
    assert use_case(world).execute(first.refresh_token) == Err(RefreshError.REUSED)
    assert second.access_jti in world.revocations.denied
    assert "reuse" in world.events.events
    session_id = first.refresh_token.split("|")[2]
    assert world.sessions.get(session_id).revoked_reason == SessionEnd.REUSE


def test_every_later_token_of_a_family_revoked_for_reuse_is_reused(world, alice):
    first = login(world)
    second = use_case(world).execute(first.refresh_token).unwrap().tokens
    assert use_case(world).execute(first.refresh_token) == Err(RefreshError.REUSED)
    world.clock.advance(hours=1)
    for token in (second, first, second):
        assert use_case(world).execute(token.refresh_token) == Err(RefreshError.REUSED)
    assert world.events.events.count("reuse") == 1  # detected once; the rest only say so


def test_a_family_ended_otherwise_is_invalid_for_every_token(world, alice):
    first = login(world)
    second = use_case(world).execute(first.refresh_token).unwrap().tokens
    session_id = first.refresh_token.split("|")[2]
    world.sessions.revoke(session_id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    for token in (second, first):
        assert use_case(world).execute(token.refresh_token) == Err(RefreshError.INVALID)
    assert world.sessions.get(session_id).revoked_reason == SessionEnd.LOGOUT
    assert "reuse" not in world.events.events


def test_expired_and_garbage_tokens(world, alice):
    first = login(world)
    assert use_case(world).execute("garbage") == Err(RefreshError.INVALID)
    world.clock.advance(days=8)
    assert use_case(world).execute(first.refresh_token) == Err(RefreshError.EXPIRED)


def test_unknown_user_or_session(world, alice):
    first = login(world)
    world.sessions.rows.clear()
    assert use_case(world).execute(first.refresh_token) == Err(RefreshError.INVALID)
    world.users.rows.clear()
    assert use_case(world).execute(first.refresh_token) == Err(RefreshError.INVALID)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (UserStatus.SUSPENDED, RefreshError.ACCOUNT_INACTIVE),
        (UserStatus.INACTIVE, RefreshError.ACCOUNT_INACTIVE),
        # A soft delete stands for removal: as a vanished user's token (above).
        (UserStatus.DELETED, RefreshError.INVALID),
    ],
)
def test_a_user_who_is_not_active_cannot_refresh(world, alice, status, error):
    first = login(world)
    user = world.users.get(alice.id)
    user.status = status
    world.users.save(user)
    assert use_case(world).execute(first.refresh_token) == Err(error)


def test_reuse_denies_every_access_token_of_the_family_until_the_last_expires(world, alice):
    first = login(world)
    world.clock.advance(minutes=5)
    stolen = use_case(world).execute(first.refresh_token).unwrap().tokens
    world.clock.advance(minutes=5)
    latest = use_case(world).execute(stolen.refresh_token).unwrap().tokens
    assert use_case(world).execute(first.refresh_token) == Err(RefreshError.REUSED)
    session_id = first.refresh_token.split("|")[2]
    # One fact for the family outlives its every access token (first, stolen and latest).
    assert world.revocations.denied_sessions == {session_id: latest.access_expires_at}


def test_the_user_is_read_under_a_row_lock_held_until_the_swap_commits(world, alice):
    first = login(world)
    commits, world.users.locked = world.uow.commits, []
    assert use_case(world).execute(first.refresh_token).is_ok()
    # A change of roles or status, which locks the row too, is ordered with this refresh.
    assert world.users.locked == [alice.id.value]
    assert world.uow.commits == commits + 1


def test_a_refresh_right_after_a_roles_change_mints_from_the_next_second(world, alice):
    """The change's cut-off refuses its whole second; the refresh that follows it within that
    second waits for the next one, so the new pair (with the new roles) works."""
    first = login(world)
    second = world.clock.now().replace(microsecond=0)
    world.clock.set(second + timedelta(milliseconds=300))
    changed = update(world).execute(alice.id.value, UserChanges(roles=("user", "billing")))
    assert changed.is_ok()
    world.clock.advance(milliseconds=100)
    rotated = use_case(world).execute(first.refresh_token).unwrap()
    assert rotated.tokens.issued_at == second + timedelta(seconds=1)
    assert rotated.user.roles == ("user", "billing")
    assert world.users.get(alice.id).honours_token(
        rotated.tokens.issued_at, roles=frozenset(rotated.user.roles)
    )


class _Watching:
    """The `MomentWaiter`: notes, at each wait, whether a transaction (the row lock) is open."""

    def __init__(self, world):
        self.world, self.open_at_waits = world, []

    def sleep_until(self, moment):
        self.open_at_waits.append(self.world.uow.open)
        self.world.clock.sleep_until(moment)


def _roles_changed_in_this_second(world, alice):
    second = world.clock.now().replace(microsecond=0)
    world.clock.set(second + timedelta(milliseconds=300))
    assert update(world).execute(alice.id.value, UserChanges(roles=("user", "billing"))).is_ok()
    world.clock.advance(milliseconds=100)
    return second


def test_a_refresh_waits_for_the_cut_offs_second_without_the_row_lock(world, alice):
    """The lock orders every change, login and refresh of the user (and embedded SQLite's
    write lock holds the whole database): held through the wait, it queued them all."""
    first = login(world)
    second = _roles_changed_in_this_second(world, alice)
    watching = _Watching(world)
    refresh = use_case(world)
    refresh._waiter = watching
    rotated = refresh.execute(first.refresh_token).unwrap()
    assert watching.open_at_waits == [False]
    assert rotated.tokens.issued_at == second + timedelta(seconds=1)
    assert rotated.user.roles == ("user", "billing")


@pytest.mark.parametrize("token", ["used", "ended"])
def test_a_refused_refresh_in_the_cut_offs_second_waits_for_nothing(world, alice, token):
    """A refused token does not rotate: had it waited, any client could make the server hold
    a thread a second per request, right after any change of the user."""
    first = login(world)
    world.clock.advance(minutes=1)
    newer = use_case(world).execute(first.refresh_token).unwrap().tokens
    if token == "ended":
        session_id = first.refresh_token.split("|")[2]
        world.sessions.revoke(session_id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    _roles_changed_in_this_second(world, alice)
    watching = _Watching(world)
    refresh = use_case(world)
    refresh._waiter = watching
    presented = first.refresh_token if token == "used" else newer.refresh_token
    expected = RefreshError.REUSED if token == "used" else RefreshError.INVALID
    assert refresh.execute(presented) == Err(expected)
    assert watching.open_at_waits == []


def test_a_cut_off_ahead_of_the_clock_holds_no_refresh(world, alice):
    first = login(world)
    user = world.users.get(alice.id)
    user.revoke_tokens(world.clock.now() + timedelta(minutes=5))
    world.users.save(user)
    before = world.clock.now()
    assert use_case(world).execute(first.refresh_token).is_ok()
    assert world.clock.now() == before
