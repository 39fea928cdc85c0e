"""ProvisionUser."""

from core.domain.accounts.passwords import PasswordRejected
from core.domain.shared.result import Err
from core.usecases.accounts.maintenance import ProvisionError, Provisioning, ProvisionUser


def use_case(world):
    return ProvisionUser(
        users=world.users,
        hasher=world.hasher,
        policy=world.policy,
        uow=world.uow,
        clock=world.clock,
    )


def test_provision_is_idempotent(world):
    provision = use_case(world)
    command = Provisioning("Boss@X.io", "boss-pass-1", "Boss", ("user", "admin"), True)
    assert provision.execute(command).unwrap() is True
    assert provision.execute(command).unwrap() is False
    boss = next(iter(world.users.rows.values()))
    assert (boss.email.value, boss.is_staff, boss.email_verified) == ("boss@x.io", True, True)
    assert provision.execute(Provisioning("nope", "x", "", ())) == Err(ProvisionError.INVALID_EMAIL)


def test_a_password_registration_would_refuse_creates_nobody(world):
    for password in ("short", " " * 20, "boss@x.io"):
        result = use_case(world).execute(Provisioning("boss@x.io", password, "Boss", ("admin",)))
        assert isinstance(result, Err)
        assert isinstance(result.unwrap_err(), PasswordRejected)
        assert result.unwrap_err().messages
    assert world.users.rows == {}
    assert world.uow.commits == 0


def test_roles_that_are_not_roles_create_nobody(world):
    command = Provisioning("boss@x.io", "boss-pass-1", "Boss", ("user", "Boss"))
    assert use_case(world).execute(command) == Err(ProvisionError.INVALID_ROLE)
    assert world.users.rows == {}
    assert world.uow.commits == 0
