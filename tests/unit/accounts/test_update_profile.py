"""UpdateProfile."""

from dataclasses import replace
from datetime import timedelta

import pytest

from core.domain.accounts.user import UserStatus
from core.domain.shared.identity import Principal
from core.domain.shared.result import Err
from core.usecases.accounts.profile import (
    CurrentUserError,
    UpdateProfile,
)


def token_of(user_id, issued_at):
    return Principal(user_id, frozenset({"user"}), "jti-1", issued_at, issued_at, "sid-1")


def test_update_profile_trims_the_name(world, alice):
    update = UpdateProfile(users=world.users, uow=world.uow)
    me = token_of(alice.id.value, world.clock.now())
    assert update.execute(me, full_name="  Al ").unwrap().full_name == "Al"
    assert update.execute(me, full_name=None).unwrap().full_name == "Al"
    missing = update.execute(
        token_of("00000000-0000-0000-0000-000000000001", world.clock.now()), full_name="x"
    )
    assert missing == Err(CurrentUserError.UNKNOWN_USER)


def test_the_name_kept_already_writes_nothing(world, alice):
    update = UpdateProfile(users=world.users, uow=world.uow)
    me = token_of(alice.id.value, world.clock.now())
    assert update.execute(me, full_name=f"  {alice.full_name} ").unwrap() == alice
    assert update.execute(me, full_name=None).unwrap() == alice
    assert world.users.saves == 0


@pytest.mark.parametrize(
    "revoked",
    [
        {"status": UserStatus.SUSPENDED},
        {"status": UserStatus.INACTIVE},
        {"tokens_valid_after": "later"},
    ],
    ids=["suspended", "inactive", "cut-off"],
)
def test_a_revoked_token_changes_nothing(world, alice, revoked):
    if revoked.get("tokens_valid_after") == "later":
        revoked = {"tokens_valid_after": world.clock.now() + timedelta(seconds=1)}
    world.users.save(replace(alice, **revoked))
    update = UpdateProfile(users=world.users, uow=world.uow)
    result = update.execute(token_of(alice.id.value, world.clock.now()), full_name="Mallory")
    assert result == Err(CurrentUserError.TOKEN_REVOKED)
    assert world.users.get(alice.id).full_name == "Alice"
    assert (world.uow.commits, world.uow.rollbacks) == (0, 1)
