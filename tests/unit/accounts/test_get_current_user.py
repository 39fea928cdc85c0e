"""GetCurrentUser."""

from dataclasses import replace

from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err
from core.usecases.accounts.profile import (
    CurrentUserError,
    GetCurrentUser,
)


def test_get_current_user(world, alice):
    assert GetCurrentUser(users=world.users).execute(alice.id.value).unwrap().id == alice.id
    assert GetCurrentUser(users=world.users).execute("not-a-uuid") == Err(
        CurrentUserError.UNKNOWN_USER
    )


def test_a_deleted_user_is_not_current(world, alice):
    world.users.save(replace(alice, status=UserStatus.DELETED))
    assert GetCurrentUser(users=world.users).execute(alice.id.value).is_err()
