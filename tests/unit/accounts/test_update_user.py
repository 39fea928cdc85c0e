"""UpdateUser."""

from dataclasses import replace

import pytest

from core.domain.accounts.sessions import Session
from core.domain.accounts.user import UserStatus
from core.domain.accounts.values import UserId
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.admin import (
    UpdateUser,
    UpdateUserError,
    UserChanges,
)
from core.usecases.accounts.caller import CurrentUserError
from tests.fakes.accounts import make_user
from tests.unit.accounts.conftest import WEEK

GHOST = "00000000-0000-0000-0000-000000000001"


def update(world):
    return UpdateUser(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    )


def with_session(world, user):
    s = Session.start(user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip="")
    s.access_jti, s.access_expires_at = "live-jti", world.clock.now() + WEEK
    world.sessions.add(s)
    return s


@pytest.mark.parametrize(
    "changes",
    [
        UserChanges(),
        UserChanges(roles=("user",), full_name="Alice", email_verified=True),
    ],
    ids=["nothing", "the same values"],
)
def test_a_change_to_what_is_kept_already_writes_nothing(world, alice, changes):
    with_session(world, alice)
    assert update(world).execute(alice.id.value, changes).unwrap() == alice
    assert world.users.saves == 0
    assert world.revocations.denied == {}
    assert world.sessions.live_for(alice.id, world.clock.now()) != []


@pytest.mark.parametrize("status", [UserStatus.SUSPENDED, UserStatus.INACTIVE, UserStatus.DELETED])
def test_leaving_active_ends_sessions(world, alice, status):
    with_session(world, alice)
    user = update(world).execute(alice.id.value, UserChanges(status=status)).unwrap()
    assert user.status == status
    assert world.sessions.live_for(alice.id, world.clock.now()) == []
    assert "live-jti" in world.revocations.denied
    assert len(world.revocations.denied_sessions) == 1
    assert alice.id.value in world.revocations.cutoffs
    assert world.users.get(alice.id).sessions_ended_at == world.clock.now()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (UserChanges(roles=("user", "admin")), UpdateUserError.USER_DELETED),
        (UserChanges(full_name="Back"), UpdateUserError.USER_DELETED),
        (UserChanges(email_verified=False), UpdateUserError.USER_DELETED),
        (UserChanges(status=UserStatus.ACTIVE), UpdateUserError.ILLEGAL_TRANSITION),
    ],
)
def test_a_deleted_user_is_final(world, alice, changes, error):
    update(world).execute(alice.id.value, UserChanges(status=UserStatus.DELETED)).unwrap()
    before = replace(world.users.get(alice.id))
    assert update(world).execute(alice.id.value, changes) == Err(error)
    assert world.users.get(alice.id) == before


def test_deleting_and_renaming_in_one_change_is_allowed(world, alice):
    changes = UserChanges(status=UserStatus.DELETED, full_name="Gone")
    user = update(world).execute(alice.id.value, changes).unwrap()
    assert (user.status, user.full_name) == (UserStatus.DELETED, "Gone")


def test_role_changes_revoke_access_tokens_but_keep_sessions(world, alice):
    with_session(world, alice)
    changes = UserChanges(roles=("user", "admin", "admin"), full_name=" A ", email_verified=True)
    user = update(world).execute(alice.id.value, changes).unwrap()
    assert (user.roles, user.full_name) == (("user", "admin"), "A")
    assert len(world.sessions.live_for(alice.id, world.clock.now())) == 1
    assert "live-jti" in world.revocations.denied
    # The session lives on, so its next refresh (same `sid`) must not be refused.
    assert world.revocations.denied_sessions == {}
    assert world.users.get(alice.id).sessions_ended_at is None  # and browser sign-ins too


def test_unchanged_roles_and_reactivation_revoke_nothing(world, alice):
    world.users.save(replace(alice, status=UserStatus.SUSPENDED))
    user = update(world).execute(
        alice.id.value, UserChanges(status=UserStatus.ACTIVE, roles=("user",))
    )
    assert user.unwrap().status == UserStatus.ACTIVE
    assert world.revocations.cutoffs == {}


def test_update_refusals(world, alice):
    bad_role = update(world).execute(alice.id.value, UserChanges(roles=("Boss",)))
    assert bad_role == Err(UpdateUserError.INVALID_ROLE)
    assert update(world).execute(GHOST, UserChanges()) == Err(UpdateUserError.NOT_FOUND)
    assert update(world).execute("junk", UserChanges()) == Err(UpdateUserError.NOT_FOUND)
    update(world).execute(alice.id.value, UserChanges(status=UserStatus.DELETED))
    back = update(world).execute(alice.id.value, UserChanges(status=UserStatus.ACTIVE))
    assert back == Err(UpdateUserError.ILLEGAL_TRANSITION)


def test_an_admin_token_the_database_revokes_changes_nothing(world, alice):
    boss = make_user(world.clock, email="boss@example.com", roles=("user", "admin"))
    world.users.add(boss)
    now = world.clock.now()
    token = Principal(boss.id.value, frozenset({"user", "admin"}), "j", now, now)
    changes = UserChanges(status=UserStatus.SUSPENDED)
    assert update(world).execute(alice.id.value, changes, caller=token).is_ok()
    world.users.save(replace(boss, roles=("user",)))  # demoted since the token was minted
    back = update(world).execute(
        alice.id.value, UserChanges(status=UserStatus.ACTIVE), caller=token
    )
    assert back == Err(CurrentUserError.TOKEN_REVOKED)
    assert world.users.get(alice.id).status == UserStatus.SUSPENDED


def test_an_admin_can_take_an_email_verification_back(world, alice):
    user = update(world).execute(alice.id.value, UserChanges(email_verified=False)).unwrap()
    assert user.email_verified is False
    assert world.users.get(alice.id).email_verified is False


@pytest.mark.parametrize(
    "changes",
    [UserChanges(status=UserStatus.SUSPENDED), UserChanges(roles=("user", "admin"))],
    ids=["suspension", "role change"],
)
def test_a_retried_change_that_revoked_tokens_publishes_the_users_cut_off_again(
    world, alice, changes
):
    # The first try committed after its 503 (PostgreSQL froze), or its cut-off was lost
    # (Redis down): the retry found nothing to change and published nothing, so the user's
    # tokens still passed the gateway, which reads only the cache.
    with_session(world, alice)
    update(world).execute(alice.id.value, changes).unwrap()
    published = world.revocations.cutoffs.pop(alice.id.value)
    world.clock.advance(seconds=30)
    assert update(world).execute(alice.id.value, changes).is_ok()
    # The same cut-off (the durable one), which refuses no token the first did not.
    assert world.revocations.cutoffs == {alice.id.value: published}


ADMIN = ("user", "admin")


def an_admin(world, email="boss@example.com", **fields):
    user = make_user(world.clock, email=email, roles=ADMIN, **fields)
    world.users.add(user)
    return user


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (UserChanges(roles=("user",)), UpdateUserError.LAST_ADMIN_ROLE),
        (UserChanges(roles=()), UpdateUserError.LAST_ADMIN_ROLE),
        (UserChanges(status=UserStatus.SUSPENDED), UpdateUserError.LAST_ADMIN_STATUS),
        (UserChanges(status=UserStatus.INACTIVE), UpdateUserError.LAST_ADMIN_STATUS),
        (UserChanges(status=UserStatus.DELETED), UpdateUserError.LAST_ADMIN_STATUS),
        (
            UserChanges(status=UserStatus.SUSPENDED, roles=("user",)),
            UpdateUserError.LAST_ADMIN_STATUS,
        ),
        (UserChanges(email_verified=False), UpdateUserError.LAST_ADMIN_VERIFICATION),
    ],
)
def test_the_last_active_admin_is_never_demoted_or_ended(world, alice, changes, error):
    boss = an_admin(world)
    with_session(world, boss)
    token = Principal(boss.id.value, frozenset(ADMIN), "j", world.clock.now(), world.clock.now())
    for caller in (token, None):  # the API's admin (themself), the Django admin
        assert update(world).execute(boss.id.value, changes, caller=caller) == Err(error)
    assert world.users.get(boss.id) == boss
    assert world.users.saves == 0
    assert world.revocations.denied == {}
    assert world.revocations.cutoffs == {}
    assert world.sessions.live_for(boss.id, world.clock.now()) != []


@pytest.mark.parametrize(
    "changes",
    [UserChanges(roles=("user",)), UserChanges(status=UserStatus.SUSPENDED)],
)
def test_an_admin_is_demoted_or_ended_while_another_active_admin_remains(world, changes):
    boss = an_admin(world)
    other = an_admin(world, email="other@example.com")
    user = update(world).execute(boss.id.value, changes).unwrap()
    assert not (user.is_admin and user.status == UserStatus.ACTIVE)
    assert world.users.get(other.id) == other
    # The second is now the last: the same change of them is refused.
    assert update(world).execute(other.id.value, changes).is_err()


@pytest.mark.parametrize(
    "fields",
    [
        {"status": UserStatus.SUSPENDED},
        {"status": UserStatus.INACTIVE},
        {"status": UserStatus.DELETED},
        {"email_verified": False},
    ],
    ids=["suspended", "inactive", "deleted", "unverified"],
)
def test_an_admin_who_cannot_sign_in_does_not_count(world, fields):
    boss = an_admin(world)
    an_admin(world, email="other@example.com", **fields)
    refused = update(world).execute(boss.id.value, UserChanges(roles=("user",)))
    assert refused == Err(UpdateUserError.LAST_ADMIN_ROLE)
    assert world.users.get(boss.id).is_admin


@pytest.mark.parametrize(
    "changes",
    [
        UserChanges(full_name="The Boss"),
        UserChanges(roles=("admin", "billing:read")),
        UserChanges(status=UserStatus.ACTIVE),
        UserChanges(email_verified=True),
    ],
)
def test_a_change_that_keeps_the_last_admin_an_active_admin_is_allowed(world, changes):
    boss = an_admin(world)
    user = update(world).execute(boss.id.value, changes).unwrap()
    assert user.administers


def test_demoting_or_ending_a_non_admin_never_counts_the_admins(world, alice):
    for changes in (UserChanges(roles=("billing:read",)), UserChanges(status=UserStatus.SUSPENDED)):
        assert update(world).execute(alice.id.value, changes).is_ok()
    # Nobody administers, and nobody is refused for it.
    assert update(world).execute(alice.id.value, UserChanges(status=UserStatus.ACTIVE)).is_ok()


def test_a_suspended_admin_may_lose_the_role_or_be_deleted(world, alice):
    boss = an_admin(world, status=UserStatus.SUSPENDED)
    assert update(world).execute(boss.id.value, UserChanges(roles=("user",))).is_ok()
    assert update(world).execute(boss.id.value, UserChanges(status=UserStatus.DELETED)).is_ok()


def test_the_admins_are_locked_only_by_a_change_that_could_end_one(world, alice):
    boss = an_admin(world)
    other = an_admin(world, email="other@example.com")
    update(world).execute(boss.id.value, UserChanges(full_name="The Boss")).unwrap()
    update(world).execute(boss.id.value, UserChanges(roles=("user", "admin"))).unwrap()
    assert world.users.admin_locks == 0
    update(world).execute(boss.id.value, UserChanges(roles=("user",))).unwrap()
    assert world.users.admin_locks == 1
    # Every admin's row with the target's in id order, then the target's (held already).
    assert world.users.locked[-3:] == [*sorted([boss.id.value, other.id.value]), boss.id.value]


def test_a_target_who_is_no_admin_is_locked_with_the_admins_in_id_order(world):
    # Her id before the admin's: locked after his, her row would not be in id order.
    amy, boss = (UserId(f"00000000-0000-0000-0000-00000000000{n}") for n in (1, 2))
    an_admin(world, id=boss)
    world.users.add(make_user(world.clock, email="amy@example.com", id=amy))
    world.users.locked = []
    update(world).execute(amy.value, UserChanges(status=UserStatus.SUSPENDED)).unwrap()
    assert world.users.admin_locks == 1
    assert world.users.locked == [amy.value, boss.value, amy.value]  # then hers (held already)
