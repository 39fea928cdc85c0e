"""CreateUser: the users Django admin's add form and `createsuperuser` make."""

from core.domain.accounts.values import PasswordHash
from core.domain.shared.result import Err
from core.usecases.accounts.maintenance import CreateUser, CreateUserError, NewUser

HASH = PasswordHash("fake$hash")


def use_case(world):
    return CreateUser(users=world.users, uow=world.uow, clock=world.clock)


def test_a_user_is_made_as_register_makes_one(world):
    user = use_case(world).execute(NewUser(" Carol@X.io ", HASH, " Carol ")).unwrap()
    assert (user.email.value, user.full_name, user.roles) == ("carol@x.io", "Carol", ("user",))
    assert (user.email_verified, user.is_staff, user.created_at) == (
        False,
        False,
        world.clock.now(),
    )
    assert world.users.get(user.id) == user
    assert world.uow.commits == 1


def test_an_administrator_is_verified_staff_with_the_admin_roles(world):
    boss = use_case(world).execute(NewUser("boss@x.io", HASH, administrator=True)).unwrap()
    assert (boss.roles, boss.is_staff, boss.email_verified) == (("user", "admin"), True, True)


def test_an_address_register_refuses_creates_nobody(world):
    result = use_case(world).execute(NewUser("josé@x.io", HASH))
    assert result == Err(CreateUserError.INVALID_EMAIL)
    assert world.users.rows == {}


def test_a_taken_address_creates_nobody(world, alice):
    result = use_case(world).execute(NewUser(alice.email.value.upper(), HASH))
    assert result == Err(CreateUserError.EMAIL_TAKEN)
    assert list(world.users.rows.values()) == [alice]
    assert world.uow.commits == 0
