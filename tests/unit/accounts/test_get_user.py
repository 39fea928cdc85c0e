"""GetUser."""

from dataclasses import replace

import pytest

from core.domain.accounts.user import UserStatus
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.admin import (
    GetUser,
    GetUserError,
)
from core.usecases.accounts.caller import CurrentUserError
from tests.fakes.accounts import make_user

GHOST = "00000000-0000-0000-0000-000000000001"


def who(world, user, *roles):
    now = world.clock.now()
    return Principal(user.id.value, frozenset(roles), "j", now, now)


@pytest.fixture
def boss(world):
    user = make_user(world.clock, email="boss@example.com", roles=("user", "admin"))
    world.users.add(user)
    return user


@pytest.fixture
def bob(world):
    user = make_user(world.clock, email="bob@example.com")
    world.users.add(user)
    return user


def test_get_user_for_admins_and_self(world, alice, bob, boss):
    get = GetUser(users=world.users)
    assert get.execute(who(world, alice, "user"), alice.id.value).is_ok()
    assert get.execute(who(world, bob, "user"), alice.id.value) == Err(GetUserError.FORBIDDEN)
    admin = who(world, boss, "admin")
    assert get.execute(admin, alice.id.value).is_ok()
    assert get.execute(admin, GHOST) == Err(GetUserError.NOT_FOUND)
    assert get.execute(admin, "junk") == Err(GetUserError.NOT_FOUND)


def test_an_id_in_upper_case_is_the_same_user(world, alice, boss):
    get = GetUser(users=world.users)
    upper = alice.id.value.upper()
    assert get.execute(who(world, alice, "user"), upper).unwrap() == alice
    assert get.execute(who(world, boss, "admin"), upper).unwrap() == alice


def test_a_malformed_id_is_not_found_for_admins_and_forbidden_for_others(world, alice, boss):
    get = GetUser(users=world.users)
    assert get.execute(who(world, boss, "admin"), "not-a-uuid") == Err(GetUserError.NOT_FOUND)
    mine = who(world, alice, "user")
    assert get.execute(mine, "not-a-uuid") == Err(GetUserError.FORBIDDEN)


def test_an_admin_token_the_database_revokes_reads_nobody(world, alice, boss):
    # Demoted, or suspended, since the token was minted: what the cache's facts say too.
    get = GetUser(users=world.users)
    world.users.save(replace(boss, roles=("user",)))
    assert get.execute(who(world, boss, "admin"), alice.id.value) == Err(
        CurrentUserError.TOKEN_REVOKED
    )
    world.users.save(replace(boss, status=UserStatus.SUSPENDED))
    assert get.execute(who(world, boss, "admin"), alice.id.value) == Err(
        CurrentUserError.TOKEN_REVOKED
    )
