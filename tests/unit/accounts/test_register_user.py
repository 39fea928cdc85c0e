"""RegisterUser."""

from dataclasses import replace

from core.domain.accounts.passwords import (
    BLANK_MESSAGE,
    MAX_PASSWORD_LENGTH,
    TOO_LONG_MESSAGE,
    PasswordRejected,
)
from core.domain.accounts.user import UserStatus
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.registration import RegisterError, RegisterUser, Registration
from tests.unit.accounts.conftest import unlocked_token_writes


def use_case(w):
    return RegisterUser(
        users=w.users,
        tokens=w.tokens,
        hasher=w.hasher,
        policy=w.policy,
        mailer=w.mailer,
        uow=w.uow,
        clock=w.clock,
        events=w.events,
    )


def test_registers_and_mails_a_verification_token(world):
    result = use_case(world).execute(Registration(" New@X.io ", "good-enough-1", " New "))
    match result:
        case Ok(user):
            assert (user.email.value, user.full_name, user.email_verified) == (
                "new@x.io",
                "New",
                False,
            )
    assert world.uow.commits == 1
    assert world.mailer.sent[0][:2] == ("verify", "new@x.io")
    assert world.events.events == ["registered"]


def test_a_taken_email_rolls_back(world, alice):
    result = use_case(world).execute(Registration("ALICE@example.com", "good-enough-1"))
    assert result == Err(RegisterError.EMAIL_TAKEN)
    assert world.uow.rollbacks == 1
    assert world.mailer.sent == []


def test_bad_email(world):
    assert use_case(world).execute(Registration("nope", "good-enough-1")) == Err(
        RegisterError.INVALID_EMAIL
    )


def test_weak_and_email_like_passwords_are_rejected_with_reasons(world):
    weak = use_case(world).execute(Registration("a@x.io", "short"))
    assert weak == Err(PasswordRejected(("too short",)))
    like = use_case(world).execute(Registration("a@x.io", "b@example.org"))
    assert isinstance(like.unwrap_err(), PasswordRejected)
    assert "email address" in like.unwrap_err().messages[0]
    assert world.users.rows == {}


def test_a_password_of_spaces_alone_is_rejected(world):
    blank = use_case(world).execute(Registration("a@x.io", " " * 20))
    assert blank == Err(PasswordRejected((BLANK_MESSAGE,)))
    assert world.users.rows == {}


def test_a_password_longer_than_login_takes_is_refused(world):
    too_long = "long-but-fine-" * 10
    assert len(too_long) > MAX_PASSWORD_LENGTH
    result = use_case(world).execute(Registration("new@x.io", too_long))
    assert result == Err(PasswordRejected((TOO_LONG_MESSAGE,)))
    assert use_case(world).execute(Registration("new@x.io", too_long[:MAX_PASSWORD_LENGTH])).is_ok()


def test_the_verification_token_is_issued_for_the_row_just_inserted(world):
    # A row this unit of work inserted is its own until it commits: the user's row is held
    # before their token is written, the lock order of every path.
    register = use_case(world)
    run = lambda: register.execute(Registration("new@x.io", "good-enough-1")).unwrap()  # noqa: E731
    assert unlocked_token_writes(world, run) == []


def test_the_policy_judges_the_password_as_it_is_hashed_nfkc(world):
    # In fullwidth characters (U+FF20 for "@"...) it is an email address once normalised
    # (NFKC), and it is the normalised password that is hashed and compared.
    fullwidth = "".join(chr(ord(char) + 0xFEE0) for char in "b@example.org")
    like = use_case(world).execute(Registration("a@x.io", fullwidth))
    assert isinstance(like.unwrap_err(), PasswordRejected)
    assert "email address" in like.unwrap_err().messages[0]
    assert world.users.rows == {}


def test_the_address_of_a_deleted_account_registers_again(world, alice):
    world.users.save(replace(alice, status=UserStatus.DELETED))
    again = use_case(world).execute(Registration("alice@example.com", "good-enough-1"))
    assert again.unwrap().id != alice.id
    assert world.users.get(alice.id).status == UserStatus.DELETED
