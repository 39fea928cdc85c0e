"""UpdateProfile."""

from core.domain.shared.result import Err
from core.usecases.accounts.profile import (
    CurrentUserError,
    UpdateProfile,
)


def test_update_profile_trims_the_name(world, alice):
    update = UpdateProfile(users=world.users, uow=world.uow)
    assert update.execute(alice.id.value, full_name="  Al ").unwrap().full_name == "Al"
    assert update.execute(alice.id.value, full_name=None).unwrap().full_name == "Al"
    missing = update.execute("00000000-0000-0000-0000-000000000001", full_name="x")
    assert missing == Err(CurrentUserError.UNKNOWN_USER)
