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


def test_an_id_in_upper_case_is_the_same_user(world, alice):
    get = GetUser(users=world.users)
    upper = alice.id.value.upper()
    assert get.execute(who(world, alice.id.value, "user"), upper).unwrap() == alice
    assert get.execute(who(world, "boss", "admin"), upper).unwrap() == alice


def test_a_malformed_id_is_not_found_for_admins_and_forbidden_for_others(world, alice):
    get = GetUser(users=world.users)
    assert get.execute(who(world, "boss", "admin"), "not-a-uuid") == Err(GetUserError.NOT_FOUND)
    mine = who(world, alice.id.value, "user")
    assert get.execute(mine, "not-a-uuid") == Err(GetUserError.FORBIDDEN)
