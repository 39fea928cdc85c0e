"""DeleteUsers."""

from core.domain.accounts.sessions import Session
from core.domain.accounts.user import UserStatus
from core.domain.accounts.values import UserId
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.admin import DeleteUsers, DeleteUsersError
from tests.fakes.accounts import make_user
from tests.unit.accounts.conftest import WEEK

GHOST = "00000000-0000-0000-0000-000000000001"
ADMIN = ("user", "admin")


def delete(world):
    return DeleteUsers(
        users=world.users,
        sessions=world.sessions,
        revocations=world.revocations,
        uow=world.uow,
        clock=world.clock,
    )


def an_admin(world, email="boss@example.com", **fields):
    user = make_user(world.clock, email=email, roles=ADMIN, **fields)
    world.users.add(user)
    return user


def with_session(world, user):
    s = Session.start(user_id=user.id, now=world.clock.now(), lifetime=WEEK, user_agent="", ip="")
    s.access_jti, s.access_expires_at = "live-jti", world.clock.now() + WEEK
    world.sessions.add(s)
    return s


def test_deleting_users_ends_their_sessions_then_removes_them(world, alice):
    session = with_session(world, alice)
    boss = an_admin(world)
    assert delete(world).execute([alice.id.value, GHOST, "not-a-user-id"]) == Ok(1)
    assert world.users.get(alice.id) is None
    assert world.users.get(boss.id) == boss
    assert world.sessions.get(session.id) is None
    # Facts published once committed (the fake refuses them earlier): her every token.
    assert world.uow.commits == 1
    assert world.revocations.denied_sessions == {session.id: session.access_expires_at}
    assert world.revocations.cutoffs == {alice.id.value: world.clock.now()}


def test_the_last_active_admin_is_never_deleted(world, alice):
    boss = an_admin(world)
    an_admin(world, email="away@example.com", status=UserStatus.SUSPENDED)  # does not count
    with_session(world, boss)
    for ids in ([boss.id.value], [boss.id.value, alice.id.value]):
        assert delete(world).execute(ids) == Err(DeleteUsersError.LAST_ADMIN)
    assert world.users.get(boss.id) == boss
    assert world.users.get(alice.id) == alice
    assert world.sessions.live_for(boss.id, world.clock.now()) != []
    assert (world.uow.commits, world.revocations.cutoffs) == (0, {})
    assert world.revocations.denied_sessions == {}


def test_every_active_admin_at_once_is_never_deleted(world):
    boss, other = an_admin(world), an_admin(world, email="other@example.com")
    refused = delete(world).execute([boss.id.value, other.id.value])
    assert refused == Err(DeleteUsersError.LAST_ADMIN)
    assert delete(world).execute([other.id.value]) == Ok(1)  # one of two: allowed
    assert delete(world).execute([boss.id.value]) == Err(DeleteUsersError.LAST_ADMIN)


def test_an_admin_demoted_meanwhile_is_not_counted(world):
    boss, other = an_admin(world), an_admin(world, email="other@example.com")

    def demote_other(users):  # committed before the delete's locks were granted
        users.rows[other.id.value].roles = ("user",)

    world.users.concurrently = demote_other
    assert delete(world).execute([boss.id.value]) == Err(DeleteUsersError.LAST_ADMIN)
    assert world.users.concurrently is None, "the change never landed"


def test_the_users_rows_are_locked_with_the_admins_in_id_order_before_the_delete(world):
    # The admin's id between the users': locked after the admin, the first user's row would
    # not be in id order.
    ann, boss, cat = (UserId(f"00000000-0000-0000-0000-00000000000{n}") for n in (1, 2, 3))
    an_admin(world, id=boss)
    for email, uid in (("ann@example.com", ann), ("cat@example.com", cat)):
        world.users.add(make_user(world.clock, email=email, id=uid))
    world.users.locked = []
    assert delete(world).execute([cat.value, ann.value]) == Ok(2)
    assert world.users.admin_locks == 1
    # One statement, in id order, before any other.
    assert world.users.locked[:3] == [ann.value, boss.value, cat.value]


def test_a_delete_of_nobody_locks_nothing(world, alice):
    an_admin(world)
    world.users.locked = []
    assert delete(world).execute([GHOST.upper()[:8]]) == Ok(0)
    assert (world.users.admin_locks, world.users.locked) == (0, [])
