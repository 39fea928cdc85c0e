"""GetUser."""

from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.admin import (
    GetUser,
    GetUserError,
)

GHOST = "00000000-0000-0000-0000-000000000001"


def who(world, user_id, *roles):
    now = world.clock.now()
    return Principal(user_id, frozenset(roles), "j", now, now)


def test_get_user_for_admins_and_self(world, alice):
    get = GetUser(users=world.users)
    assert get.execute(who(world, alice.id.value, "user"), alice.id.value).is_ok()
    assert get.execute(who(world, "other", "user"), alice.id.value) == Err(GetUserError.FORBIDDEN)
    admin = who(world, "boss", "admin")
    assert get.execute(admin, alice.id.value).is_ok()
    assert get.execute(admin, GHOST) == Err(GetUserError.NOT_FOUND)
    assert get.execute(admin, "junk") == Err(GetUserError.NOT_FOUND)
