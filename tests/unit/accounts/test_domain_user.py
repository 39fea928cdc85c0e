"""The User entity: statuses, login rule, lockout; sessions."""

from dataclasses import replace
from datetime import timedelta

import pytest

from core.domain.accounts.sessions import Session
from core.domain.accounts.user import (
    LockoutPolicy,
    UserStatus,
    can_transition,
    leaves_no_admin,
    removal_leaves_no_admin,
)
from tests.fakes.accounts import make_user
from tests.fakes.clock import FakeClock

clock = FakeClock()

LEGAL = {
    ("active", "inactive"),
    ("active", "suspended"),
    ("active", "deleted"),
    ("inactive", "active"),
    ("inactive", "deleted"),
    ("suspended", "active"),
    ("suspended", "deleted"),
}


@pytest.mark.parametrize("current", list(UserStatus))
@pytest.mark.parametrize("target", list(UserStatus))
def test_only_legal_transitions_happen(current, target):
    user = make_user(clock, status=current)
    legal = current == target or (current.value, target.value) in LEGAL
    assert can_transition(current, target) is legal
    assert user.change_status(target) is legal
    assert user.status == (target if legal else current)


@pytest.mark.parametrize("status", list(UserStatus))
def test_only_a_deleted_account_releases_its_address(status):
    assert make_user(clock, status=status).holds_email is (status != UserStatus.DELETED)


def test_new_users_are_active_unverified_plain_users():
    user = make_user(clock, email_verified=False)
    assert user.status == UserStatus.ACTIVE
    assert user.roles == ("user",)
    assert not user.can_login()
    user.verify_email()
    assert user.can_login()
    assert not user.is_admin


def test_deleted_is_final():
    user = make_user(clock)
    assert not user.is_final
    assert user.change_status(UserStatus.DELETED)
    assert user.is_final
    assert not user.can_login()
    assert not user.change_status(UserStatus.ACTIVE)


def test_leaving_active_ends_sessions():
    user = make_user(clock)
    assert user.ends_sessions_on(UserStatus.SUSPENDED)
    assert not user.ends_sessions_on(UserStatus.ACTIVE)


def test_lockout_after_repeated_failures_and_its_expiry():
    user = make_user(clock)
    policy = LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=5))
    now = clock.now()
    assert not user.record_failed_login(now, policy)
    assert not user.record_failed_login(now, policy)
    assert user.record_failed_login(now, policy)
    assert user.is_locked(now + timedelta(minutes=4))
    later = now + timedelta(minutes=5)
    assert not user.is_locked(later)
    assert not user.record_failed_login(later, policy)  # the count restarts after a lock
    assert user.failed_logins == 1
    user.record_login(later)
    assert (user.failed_logins, user.locked_until, user.last_login_at) == (0, None, later)


def test_a_failure_recorded_while_locked_neither_counts_nor_extends_the_lock():
    # Wrong passwords checked at once all find the account unlocked; the lock lands with one
    # of them, and the others, recorded after it, must not lock it again and again.
    user = make_user(clock)
    policy = LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=5))
    now = clock.now()
    locks = [user.record_failed_login(now + timedelta(seconds=i), policy) for i in range(19)]
    assert locks == [False, False, True] + [False] * 16
    assert (user.failed_logins, user.locked_until) == (0, now + timedelta(seconds=2, minutes=5))


def test_revoking_tokens_sets_the_cut_off():
    user = make_user(clock)
    user.revoke_tokens(clock.now())
    assert user.tokens_valid_after == clock.now()


def test_a_session_lives_until_revoked_or_expired():
    user = make_user(clock)
    session = Session.start(
        user_id=user.id, now=clock.now(), lifetime=timedelta(days=7), user_agent="x" * 400, ip="1"
    )
    assert len(session.user_agent) == 300
    assert session.is_live(clock.now())
    assert not session.is_live(clock.now() + timedelta(days=7))
    session.revoked_at = clock.now()
    assert not session.is_live(clock.now())


def test_a_user_honours_only_tokens_after_their_cut_off_and_only_while_active():
    from dataclasses import replace
    from datetime import timedelta

    now = clock.now()  # a whole second, as `iat` is
    user = make_user(clock)
    assert user.honours_token(now)
    cut = replace(user, tokens_valid_after=now + timedelta(seconds=1, milliseconds=500))
    assert not cut.honours_token(now)
    # `iat` has whole seconds: one of the cut-off's own second may predate the cut-off, so
    # it is refused; tokens are honoured from the next whole second (`tokens_valid_from`).
    assert not cut.honours_token(now + timedelta(seconds=1))
    assert cut.tokens_valid_from == now + timedelta(seconds=2)
    assert cut.honours_token(now + timedelta(seconds=2))
    on_the_second = replace(user, tokens_valid_after=now + timedelta(seconds=1))
    assert on_the_second.tokens_valid_from == now + timedelta(seconds=1)
    assert not on_the_second.honours_token(now)
    assert on_the_second.honours_token(now + timedelta(seconds=1))
    assert user.tokens_valid_from is None
    for status in (UserStatus.INACTIVE, UserStatus.SUSPENDED, UserStatus.DELETED):
        assert not replace(user, status=status).honours_token(now)


def test_a_user_honours_no_token_of_a_revoked_session():
    now = clock.now()
    user = make_user(clock)
    assert not user.honours_token(now, session_revoked=True)
    assert user.honours_token(now, session_revoked=False)


def test_a_user_honours_no_token_carrying_a_role_they_no_longer_have():
    now = clock.now()
    user = make_user(clock, roles=("user", "billing:read"))
    assert user.honours_token(now, roles=frozenset({"user", "billing:read"}))
    assert user.honours_token(now, roles=frozenset({"user"}))  # a role added since: kept
    assert not user.honours_token(now, roles=frozenset({"user", "admin"}))


def test_a_name_is_kept_without_the_blanks_around_it():
    user = make_user(clock)
    user.rename("  Alice  Liddell \n")
    assert user.full_name == "Alice  Liddell"


def test_roles_are_held_once_each_in_the_order_given():
    user = make_user(clock)
    assert user.assign_roles(["billing:read", "user", "billing:read"]) is True
    assert user.roles == ("billing:read", "user")


@pytest.mark.parametrize("roles", [["user", "Admin"], ["user", ""], ["admin\r\nX: 1"]])
def test_a_role_that_is_not_one_changes_nothing(roles):
    user = make_user(clock, roles=("user", "admin"))
    assert user.assign_roles(roles) is False
    assert user.roles == ("user", "admin")


def test_an_administrator_who_loses_the_admin_role_loses_django_admin_too():
    user = make_user(clock, roles=("user", "admin"))
    user.make_staff()
    assert user.assign_roles(["user", "admin", "billing"]) is True
    assert user.is_staff is True
    assert user.assign_roles(["user"]) is True
    assert user.is_staff is False


def test_staff_without_the_admin_role_stay_staff_when_their_roles_change():
    # Django's own grants (a staff account with view permissions) are not the admin role's.
    user = make_user(clock, roles=("user",))
    user.make_staff()
    assert user.assign_roles(["user", "billing"]) is True
    assert user.is_staff is True


def test_staff_may_use_django_admin_and_a_verification_can_be_taken_back():
    user = make_user(clock)
    user.make_staff()
    user.unverify_email()
    assert (user.is_staff, user.email_verified, user.can_login()) == (True, False, False)


@pytest.mark.parametrize("status", list(UserStatus))
@pytest.mark.parametrize("verified", [False, True])
def test_who_may_reset_a_password_and_who_awaits_verification(status, verified):
    user = make_user(clock, status=status, email_verified=verified)
    assert user.may_reset_password() is (status != UserStatus.DELETED)
    assert user.awaits_verification() is (status == UserStatus.ACTIVE and not verified)


ADMIN = ("user", "admin")


@pytest.mark.parametrize(
    ("fields", "administers"),
    [
        ({"roles": ADMIN}, True),
        ({"roles": ("user",)}, False),
        ({"roles": ADMIN, "status": UserStatus.SUSPENDED}, False),
        ({"roles": ADMIN, "email_verified": False}, False),
    ],
)
def test_an_admin_administers_only_while_they_can_sign_in(fields, administers):
    assert make_user(clock, **fields).administers is administers


def test_ending_the_last_admin_leaves_no_admin():
    boss = make_user(clock, roles=ADMIN)
    demoted, suspended = replace(boss, roles=("user",)), replace(boss, status=UserStatus.SUSPENDED)
    other = make_user(clock, email="other@example.com", roles=ADMIN)
    assert leaves_no_admin(boss, demoted, [boss])
    assert leaves_no_admin(boss, suspended, [replace(other, email_verified=False)])
    assert not leaves_no_admin(boss, demoted, [boss, other])
    assert not leaves_no_admin(boss, replace(boss, full_name="B"), [boss])
    plain = make_user(clock, email="plain@example.com")
    assert not leaves_no_admin(plain, replace(plain, status=UserStatus.SUSPENDED), [])


def test_removing_the_last_admins_leaves_no_admin():
    boss = make_user(clock, roles=ADMIN)
    other = make_user(clock, email="other@example.com", roles=ADMIN)
    plain = make_user(clock, email="plain@example.com")
    assert removal_leaves_no_admin([boss], [boss])
    assert removal_leaves_no_admin([boss, other, plain], [boss, other])  # every admin at once
    assert removal_leaves_no_admin([boss], [boss, replace(other, status=UserStatus.INACTIVE)])
    assert not removal_leaves_no_admin([boss], [boss, other])
    assert not removal_leaves_no_admin([plain], [boss])
    # Nobody administers before: removing anyone takes nobody's last admin away.
    assert not removal_leaves_no_admin([replace(boss, email_verified=False), plain], [])


def test_removing_admins_given_one_at_a_time_counts_every_one_of_them():
    # Any iterable: the removed users are read once, each of them both checked and left out.
    boss = make_user(clock, roles=ADMIN)
    other = make_user(clock, email="other@example.com", roles=ADMIN)
    assert removal_leaves_no_admin(iter([boss, other]), [boss, other])
    assert not removal_leaves_no_admin(iter([boss]), [boss, other])
