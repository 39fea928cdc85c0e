"""ChangePassword."""

from dataclasses import replace
from datetime import timedelta

from core.domain.accounts.passwords import BLANK_MESSAGE, PasswordRejected
from core.domain.accounts.sessions import Session, SessionEnd
from core.domain.accounts.user import UserStatus
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.ports import TokenPurpose
from core.usecases.accounts.profile import (
    ChangePassword,
    ChangePasswordError,
)
from tests.unit.accounts.conftest import WEEK, unlocked_token_writes


def session(world, user, jti):
    s = Session.start(user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip="")
    s.access_jti, s.access_expires_at = jti, world.clock.now() + WEEK
    world.sessions.add(s)
    return s


def change(world):
    return ChangePassword(
        users=world.users,
        sessions=world.sessions,
        hasher=world.hasher,
        policy=world.policy,
        revocations=world.revocations,
        tokens=world.tokens,
        uow=world.uow,
        clock=world.clock,
    )


def principal(world, user, jti="mine", session_id=None):
    now = world.clock.now()
    return Principal(user.id.value, frozenset({"user"}), jti, now, now, session_id)


def test_change_password_keeps_only_the_callers_session(world, alice):
    mine, other = session(world, alice, "mine"), session(world, alice, "theirs")
    result = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result.is_ok()
    live = world.sessions.live_for(alice.id, world.clock.now())
    assert [s.id for s in live] == [mine.id]
    assert other.access_jti in world.revocations.denied
    assert world.revocations.denied_sessions == {other.id: other.access_expires_at}
    assert world.hasher.verify("brand-new-1", world.users.get(alice.id).password_hash)


def test_the_callers_own_access_token_keeps_working(world, alice):
    mine, other = session(world, alice, "mine"), session(world, alice, "theirs")
    me = principal(world, alice, jti="mine", session_id=mine.id)
    result = change(world).execute(me, current_password="s3cret-pass", new_password="brand-new-1")
    assert result.is_ok()
    # A per-user cut-off cannot spare one session: it would deny the caller's token too.
    assert world.revocations.cutoffs == {}
    assert "mine" not in world.revocations.denied
    assert mine.id not in world.revocations.denied_sessions
    assert other.id in world.revocations.denied_sessions
    assert world.users.get(alice.id).tokens_valid_after is None


def test_access_tokens_of_families_that_already_ended_are_denied_too(world, alice):
    mine = session(world, alice, "mine")
    expired = session(world, alice, "outlives-its-family")
    expired.expires_at = world.clock.now() - timedelta(seconds=1)  # family over, token alive
    gone = session(world, alice, "long-expired")
    gone.access_expires_at = world.clock.now() - timedelta(seconds=1)
    world.sessions.add(expired)
    world.sessions.add(gone)
    me = principal(world, alice, session_id=mine.id)
    result = change(world).execute(me, current_password="s3cret-pass", new_password="brand-new-1")
    assert result.is_ok()
    assert world.revocations.denied_sessions == {expired.id: expired.access_expires_at}
    assert world.revocations.denied == {"outlives-its-family": expired.access_expires_at}
    # Ended in the database too, so its token stays refused where the database is asked.
    assert world.sessions.get(expired.id).revoked_at == world.clock.now()


def test_a_caller_whose_own_family_expired_is_not_denied(world, alice):
    mine, other = session(world, alice, "mine"), session(world, alice, "theirs")
    mine.expires_at = world.clock.now() - timedelta(seconds=1)
    world.sessions.add(mine)
    me = principal(world, alice, session_id=mine.id)
    result = change(world).execute(me, current_password="s3cret-pass", new_password="brand-new-1")
    assert result.is_ok()
    assert set(world.revocations.denied_sessions) == {other.id}


def test_change_password_refusals(world, alice):
    me = principal(world, alice)
    wrong = change(world).execute(me, current_password="nope", new_password="brand-new-1")
    assert wrong == Err(ChangePasswordError.INVALID_CREDENTIALS)
    weak = change(world).execute(me, current_password="s3cret-pass", new_password="short")
    assert weak == Err(PasswordRejected(("too short",), field="new_password"))
    ghost = replace(me, user_id="00000000-0000-0000-0000-000000000001")
    gone = change(world).execute(ghost, current_password="x", new_password="brand-new-1")
    assert gone == Err(ChangePasswordError.UNKNOWN_USER)


def test_a_password_of_spaces_alone_is_rejected(world, alice):
    blank = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="\t" + " " * 19
    )
    assert blank == Err(PasswordRejected((BLANK_MESSAGE,), field="new_password"))
    assert world.hasher.verify("s3cret-pass", world.users.get(alice.id).password_hash)


def test_an_access_token_from_before_a_rotation_keeps_its_own_session(world, alice):
    mine, other = session(world, alice, "newest"), session(world, alice, "theirs")
    older = replace(principal(world, alice, jti="before-rotation"), session_id=mine.id)
    result = change(world).execute(
        older, current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result.is_ok()
    assert [s.id for s in world.sessions.live_for(alice.id, world.clock.now())] == [mine.id]
    assert other.id in world.revocations.denied_sessions


def test_a_token_the_users_record_says_is_revoked_changes_nothing(world, alice):
    world.users.save(replace(alice, status=UserStatus.SUSPENDED))
    result = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result == Err(ChangePasswordError.TOKEN_REVOKED)
    assert world.hasher.verify("s3cret-pass", world.users.get(alice.id).password_hash)


def test_a_token_of_a_revoked_session_changes_nothing(world, alice):
    mine, other = session(world, alice, "mine"), session(world, alice, "theirs")
    world.sessions.revoke(mine.id, alice.id, world.clock.now(), reason=SessionEnd.LOGOUT)
    me = principal(world, alice, session_id=mine.id)
    result = change(world).execute(me, current_password="s3cret-pass", new_password="brand-new-1")
    assert result == Err(ChangePasswordError.TOKEN_REVOKED)
    assert world.hasher.verify("s3cret-pass", world.users.get(alice.id).password_hash)
    assert world.sessions.get(other.id).is_live(world.clock.now())


class ChangedWhileHashing:
    """The user as read first, then as a change committed during the hash left them."""

    def __init__(self, users, after):
        self._users, self._after = users, after

    def __getattr__(self, name):
        return getattr(self._users, name)

    def token_owner(self, user_id, session_id, *, lock=False):
        if lock:
            self._users.rows.pop(user_id.value, None)
            if self._after is not None:
                self._users.save(self._after)
        return self._users.token_owner(user_id, session_id, lock=lock)


def test_a_reset_committed_while_hashing_is_not_overwritten(world, alice):
    reset = replace(
        alice,
        password_hash=world.hasher.hash("reset-by-mail-1"),
        tokens_valid_after=world.clock.now() + timedelta(seconds=1),
    )
    world.users = ChangedWhileHashing(world.users, reset)
    result = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result == Err(ChangePasswordError.TOKEN_REVOKED)
    assert world.hasher.verify("reset-by-mail-1", world.users.get(alice.id).password_hash)


def test_a_password_changed_elsewhere_while_hashing_is_not_overwritten(world, alice):
    other = replace(alice, password_hash=world.hasher.hash("changed-elsewhere-1"))
    world.users = ChangedWhileHashing(world.users, other)
    result = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result == Err(ChangePasswordError.INVALID_CREDENTIALS)
    assert world.hasher.verify("changed-elsewhere-1", world.users.get(alice.id).password_hash)


def test_a_user_deleted_while_hashing_is_401_not_a_crash(world, alice):
    world.users = ChangedWhileHashing(world.users, None)
    result = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result == Err(ChangePasswordError.UNKNOWN_USER)


def test_reset_tokens_mailed_before_the_change_stop_working(world, alice):
    later = world.clock.now() + timedelta(hours=1)
    reset = world.tokens.issue(alice.id, TokenPurpose.RESET, later, now=world.clock.now())
    verify = world.tokens.issue(alice.id, TokenPurpose.VERIFY_EMAIL, later, now=world.clock.now())
    result = change(world).execute(
        principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
    )
    assert result.is_ok()
    assert world.tokens.peek(reset, TokenPurpose.RESET, world.clock.now()) is None
    assert world.tokens.peek(verify, TokenPurpose.VERIFY_EMAIL, world.clock.now()) == alice.id


def test_a_refused_change_leaves_a_reset_token_working(world, alice):
    reset = world.tokens.issue(
        alice.id, TokenPurpose.RESET, world.clock.now() + timedelta(hours=1), now=world.clock.now()
    )
    wrong = change(world).execute(
        principal(world, alice), current_password="nope", new_password="brand-new-1"
    )
    assert wrong == Err(ChangePasswordError.INVALID_CREDENTIALS)
    assert world.tokens.peek(reset, TokenPurpose.RESET, world.clock.now()) == alice.id


def test_the_reset_tokens_are_voided_under_the_users_row_lock(world, alice):
    # The lock order every path that writes a user's one-time tokens keeps: the user's row
    # first (a reset locked its token first and deadlocked with this change).
    changing = change(world)

    def run():
        result = changing.execute(
            principal(world, alice), current_password="s3cret-pass", new_password="brand-new-1"
        )
        assert result.is_ok()

    assert unlocked_token_writes(world, run) == []
