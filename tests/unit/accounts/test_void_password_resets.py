from datetime import timedelta

from core.domain.shared.result import Ok
from core.usecases.accounts.password_reset import VoidPasswordResets
from core.usecases.accounts.ports import TokenPurpose
from tests.fakes.accounts import make_user


def void(world):
    return VoidPasswordResets(tokens=world.tokens, uow=world.uow, clock=world.clock)


def test_every_reset_token_of_the_user_stops_working_and_nothing_else(world, alice):
    bob = make_user(world.clock, email="bob@example.com")
    world.users.add(bob)
    later = world.clock.now() + timedelta(hours=1)
    reset = world.tokens.issue(alice.id, TokenPurpose.RESET, later)
    verify = world.tokens.issue(alice.id, TokenPurpose.VERIFY_EMAIL, later)
    others = world.tokens.issue(bob.id, TokenPurpose.RESET, later)
    assert void(world).execute(alice.id.value) == Ok(None)
    now = world.clock.now()
    assert world.tokens.peek(reset, TokenPurpose.RESET, now) is None
    assert world.tokens.peek(verify, TokenPurpose.VERIFY_EMAIL, now) == alice.id
    assert world.tokens.peek(others, TokenPurpose.RESET, now) == bob.id
    assert (world.uow.commits, world.uow.rollbacks) == (1, 0)


def test_a_user_without_reset_tokens_is_fine(world, alice):
    assert void(world).execute(alice.id.value) == Ok(None)
