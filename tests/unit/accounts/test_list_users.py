"""ListUsers."""

from core.usecases.accounts.admin import (
    ListUsers,
)
from core.usecases.accounts.ports import UserQuery
from tests.fakes.accounts import make_user


def test_list_users_filters(world, alice):
    world.users.add(make_user(world.clock, email="b@x.io", roles=("user", "admin")))
    page = ListUsers(users=world.users).execute(UserQuery(role="admin")).unwrap()
    assert [u.email.value for u in page.items] == ["b@x.io"]
    assert page.total == 1
