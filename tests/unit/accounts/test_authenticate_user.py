"""AuthenticateUser."""

from dataclasses import replace
from datetime import timedelta

import pytest

from core.domain.accounts.user import LockoutPolicy, UserStatus
from core.domain.accounts.values import PasswordHash, UserId
from core.domain.shared.result import Err
from core.usecases.accounts.authentication import (
    AuthenticateError,
    AuthenticateUser,
    Credentials,
    VerifyCredentials,
)
from tests.fakes.accounts import InlineLoginFailures, make_user
from tests.unit.accounts.sessions import authenticate_user, record_failed_login


def use_case(w, max_failures=3):
    return authenticate_user(
        w, LockoutPolicy(max_failures=max_failures, lock_for=timedelta(minutes=10))
    )


def creds(email="alice@example.com", password="s3cret-pass"):  # noqa: S107
    return Credentials(email=email, password=password, user_agent="ua", ip="10.0.0.1")


def test_success_opens_a_session_and_clears_failures(world, alice):
    signed_in = use_case(world).execute(creds(" ALICE@example.com")).unwrap()
    session = world.sessions.get(world.issuer.issued[0].refresh_token.split("|")[2])
    assert session.current_jti == signed_in.tokens.refresh_jti
    assert session.access_jti == signed_in.tokens.access_jti
    assert (session.user_agent, session.ip) == ("ua", "10.0.0.1")
    assert session.expires_at == world.clock.now() + timedelta(days=7)
    assert world.users.get(alice.id).last_login_at == world.clock.now()
    assert world.events.events == ["login:success"]


@pytest.mark.parametrize("email", ["nobody@example.com", "not an email"])
def test_unknown_email_runs_the_hasher_once_and_is_invalid_credentials(world, alice, email):
    assert use_case(world).execute(creds(email)) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert world.hasher.verifications == 1


def test_wrong_password_counts_and_locks(world, alice):
    login = use_case(world)
    for _ in range(3):
        assert login.execute(creds(password="nope")) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert world.events.events[-1] == "login:wrong_password"
    assert "locked_out" in world.events.events
    assert login.execute(creds()) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert world.events.events[-1] == "login:locked"
    assert world.hasher.verifications == 4
    world.clock.advance(minutes=10)
    assert login.execute(creds()).is_ok()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"status": UserStatus.SUSPENDED}, AuthenticateError.ACCOUNT_INACTIVE),
        ({"status": UserStatus.INACTIVE}, AuthenticateError.ACCOUNT_INACTIVE),
        ({"email_verified": False}, AuthenticateError.EMAIL_NOT_VERIFIED),
        ({"status": UserStatus.DELETED}, AuthenticateError.INVALID_CREDENTIALS),
    ],
)
def test_account_state_is_told_only_after_the_right_password(world, fields, error):
    world.users.add(make_user(world.clock, email="bob@example.com", **fields))
    assert use_case(world).execute(creds("bob@example.com")) == Err(error)
    wrong = use_case(world).execute(creds("bob@example.com", "wrong"))
    assert wrong == Err(AuthenticateError.INVALID_CREDENTIALS)


def test_a_user_deleted_between_check_and_count_is_ignored(world, alice):
    class Vanishing(type(world.users)):
        def get_for_update(self, user_id):
            return None

    world.users = Vanishing(alice)
    assert use_case(world).execute(creds(password="x")) == Err(
        AuthenticateError.INVALID_CREDENTIALS
    )


def test_a_user_deleted_during_a_good_login_gets_no_session(world, alice):
    class Vanishing(type(world.users)):
        def get_for_update(self, user_id):
            return None

    world.users = Vanishing(alice)
    assert use_case(world).execute(creds()) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert world.sessions.rows == {}


def test_a_wrong_password_is_handed_over_to_be_counted_not_counted_in_the_login(world, alice):
    counted = InlineLoginFailures(record_failed_login(world))
    login = AuthenticateUser(
        users=world.users,
        sessions=world.sessions,
        hasher=world.hasher,
        issuer=world.issuer,
        uow=world.uow,
        clock=world.clock,
        events=world.events,
        failures=counted,
        session_lifetime=timedelta(days=7),
        waiter=world.clock,
    )
    assert login.execute(creds(password="nope")) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert counted.recorded == [(alice.id, world.clock.now())]
    assert world.users.get(alice.id).failed_logins == 1
    assert login.execute(creds("nobody@example.com", "nope")).is_err()
    assert len(counted.recorded) == 1  # an unknown address has nothing to count


def test_a_lock_counted_while_the_right_password_was_hashed_still_holds(world, alice):
    class CountedMeanwhile(type(world.users)):
        def by_email(self, email):  # read before the last wrong password's count landed
            return replace(super().by_email(email), locked_until=None)

    world.users = CountedMeanwhile(
        replace(alice, locked_until=world.clock.now() + timedelta(minutes=5))
    )
    assert use_case(world).execute(creds()) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert world.events.events[-1] == "login:locked"
    assert world.sessions.rows == {}


def test_wrong_passwords_checked_at_once_lock_the_account_once(world, alice):
    # 19 wrong passwords checked before any of them was counted: each is recorded under the
    # row lock, one after the other, and only the one that reaches the threshold locks.
    now = world.clock.now()
    for _ in range(19):
        assert record_failed_login(world).execute(alice.id, now).is_ok()
    assert world.events.events == ["locked_out"]
    assert world.users.get(alice.id).locked_until == now + LockoutPolicy().lock_for


def test_recording_a_failure_of_a_vanished_user_does_nothing(world):
    ghost = UserId("00000000-0000-0000-0000-000000000001")
    assert record_failed_login(world).execute(ghost, world.clock.now()).is_ok()
    assert world.uow.commits == 0


@pytest.mark.parametrize(
    ("meanwhile", "error"),
    [
        ({"status": UserStatus.SUSPENDED}, AuthenticateError.ACCOUNT_INACTIVE),
        ({"status": UserStatus.DELETED}, AuthenticateError.INVALID_CREDENTIALS),
        ({"password_hash": PasswordHash("fake$changed-1")}, AuthenticateError.INVALID_CREDENTIALS),
    ],
    ids=["suspended", "deleted", "password-reset"],
)
def test_a_change_committed_while_the_password_was_hashed_decides(world, alice, meanwhile, error):
    class ReadBeforeTheChange(type(world.users)):
        def by_email(self, email):
            # The row as it was before the change (a deleted one held its address then).
            row = next(user for user in self.rows.values() if user.email == email)
            return replace(row, **{k: getattr(alice, k) for k in meanwhile})

    world.users = ReadBeforeTheChange(replace(alice, **meanwhile))
    assert use_case(world).execute(creds()) == Err(error)
    assert world.sessions.rows == {}


def test_the_tokens_carry_the_roles_read_under_the_lock(world, alice):
    class ReadBeforeTheChange(type(world.users)):
        def by_email(self, email):
            return replace(super().by_email(email), roles=("user",))

    world.users = ReadBeforeTheChange(replace(alice, roles=("user", "billing:read")))
    signed_in = use_case(world).execute(creds()).unwrap()
    assert signed_in.user.roles == world.issuer.roles[-1] == ("user", "billing:read")


def test_verifying_credentials_opens_no_session_and_counts_like_login(world, alice):
    verify = VerifyCredentials(
        users=world.users,
        hasher=world.hasher,
        clock=world.clock,
        events=world.events,
        failures=InlineLoginFailures(record_failed_login(world)),
    )
    assert verify.execute(creds()).unwrap().id == alice.id
    assert world.sessions.rows == {}
    assert verify.execute(creds(password="nope")) == Err(AuthenticateError.INVALID_CREDENTIALS)
    assert world.users.get(alice.id).failed_logins == 1


def _cut_off(world, user_id, at):
    user = world.users.get(user_id)
    user.revoke_tokens(at)
    world.users.save(user)


def test_a_login_in_the_second_of_a_cut_off_mints_from_the_next_second(world, alice):
    """A cut-off refuses its whole second (`iat` has no finer resolution), so a login right
    after one waits for the next second instead of handing out a token refused on arrival."""
    second = world.clock.now()  # a whole second
    _cut_off(world, alice.id, second + timedelta(milliseconds=400))
    world.clock.advance(milliseconds=500)
    signed_in = use_case(world).execute(creds()).unwrap()
    assert signed_in.tokens.issued_at == second + timedelta(seconds=1)
    assert world.clock.now() == second + timedelta(seconds=1)  # it waited, no longer
    assert world.users.get(alice.id).honours_token(signed_in.tokens.issued_at)


def test_a_login_after_the_cut_offs_second_does_not_wait(world, alice):
    second = world.clock.now()
    _cut_off(world, alice.id, second + timedelta(milliseconds=400))
    world.clock.advance(seconds=1, milliseconds=100)
    before = world.clock.now()
    assert use_case(world).execute(creds()).unwrap().tokens.issued_at == before
    assert world.clock.now() == before


def test_a_cut_off_ahead_of_the_clock_holds_no_login(world, alice):
    """A cut-off written by a server whose clock runs ahead: a wait would not make the token
    good (it is refused until the clocks agree, as any token of that server's future would
    be), so none is made."""
    before = world.clock.now()
    _cut_off(world, alice.id, before + timedelta(minutes=5))
    assert use_case(world).execute(creds()).is_ok()
    assert world.clock.now() == before


def test_a_login_waits_for_the_cut_offs_second_before_it_takes_the_row_lock(world, alice):
    """The row lock orders the user's changes, logins and refreshes (and embedded SQLite's
    write lock holds the whole database): a login does not hold it while it waits."""
    second = world.clock.now()
    _cut_off(world, alice.id, second + timedelta(milliseconds=400))
    world.clock.advance(milliseconds=500)
    world.users.locked = []
    locks_while_waiting = []

    class Watching:
        def sleep_until(self, moment):
            locks_while_waiting.append(list(world.users.locked))
            world.clock.sleep_until(moment)

    signed_in = authenticate_user(world, waiter=Watching()).execute(creds()).unwrap()
    assert locks_while_waiting == [[]]  # once, before the lock; not again under it
    assert world.users.locked == [alice.id.value]
    assert signed_in.tokens.issued_at == second + timedelta(seconds=1)


def test_a_cut_off_committed_while_the_password_was_hashed_is_waited_for_under_the_lock(
    world, alice
):
    second = world.clock.now()
    world.clock.advance(milliseconds=100)

    class CutOffWhileHashing(type(world.hasher)):
        def verify(self, raw_password, hashed):
            _cut_off(world, alice.id, second + timedelta(milliseconds=300))
            world.clock.advance(milliseconds=300)
            return super().verify(raw_password, hashed)

    world.hasher = CutOffWhileHashing()
    signed_in = use_case(world).execute(creds()).unwrap()
    assert signed_in.tokens.issued_at == second + timedelta(seconds=1)
    assert world.users.get(alice.id).honours_token(signed_in.tokens.issued_at)
