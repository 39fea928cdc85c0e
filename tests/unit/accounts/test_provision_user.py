"""ProvisionUser."""

from core.usecases.accounts.maintenance import Provisioning, ProvisionUser


def test_provision_is_idempotent(world):
    provision = ProvisionUser(
        users=world.users, hasher=world.hasher, uow=world.uow, clock=world.clock
    )
    command = Provisioning("Boss@X.io", "boss-pass-1", "Boss", ("user", "admin"), True)
    assert provision.execute(command).unwrap() is True
    assert provision.execute(command).unwrap() is False
    boss = next(iter(world.users.rows.values()))
    assert (boss.email.value, boss.is_staff, boss.email_verified) == ("boss@x.io", True, True)
    assert provision.execute(Provisioning("nope", "x", "", ())).is_err()
