"""ListUsers."""

from dataclasses import replace

from core.domain.accounts.user import UserStatus
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.admin import ListUsers
from core.usecases.accounts.caller import CurrentUserError
from core.usecases.accounts.ports import UserQuery
from tests.fakes.accounts import make_user


def test_an_admin_lists_until_the_database_revokes_their_token(world, alice):
    boss = make_user(world.clock, email="boss@example.com", roles=("user", "admin"))
    world.users.add(boss)
    now = world.clock.now()
    token = Principal(boss.id.value, frozenset({"user", "admin"}), "j", now, now)
    listed = ListUsers(users=world.users).execute(token, UserQuery(status=UserStatus.ACTIVE))
    assert listed.unwrap().total == 2
    world.users.save(replace(boss, status=UserStatus.SUSPENDED))
    refused = ListUsers(users=world.users).execute(token, UserQuery())
    assert refused == Err(CurrentUserError.TOKEN_REVOKED)
