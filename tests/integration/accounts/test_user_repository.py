"""DjangoUserRepository on PostgreSQL: only the email's unique constraint means "taken" to
`add`, which finds it without a refused insert; `lock_active_admins` locks the admins with
the given users, in id order."""

from dataclasses import replace

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from apps.accounts.models import User as UserRow
from apps.accounts.repositories import DjangoUserRepository
from core.domain.accounts.values import Email, UserId
from tests.fakes.accounts import make_user
from tests.fakes.clock import FakeClock
from tests.integration.races import in_thread

pytestmark = pytest.mark.django_db(databases=["default"])


@pytest.fixture
def users():
    return DjangoUserRepository()


@pytest.fixture
def alice(users):
    user = make_user(FakeClock())
    assert users.add(user)
    return user


def test_an_address_taken_is_refused(users, alice):
    again = replace(alice, id=UserId.new(), email=Email("alice@example.com"))
    assert users.add(again) is False
    assert UserRow.objects.filter(email="alice@example.com").count() == 1


def test_an_address_taken_is_found_without_a_refused_statement(users, alice):
    """A refused insert's message names the address (`Key (email)=(alice@…) already exists`)
    and psycopg's instrumentation records it on the span: every statement `add` sends for a
    taken address succeeds, and the transaction goes on."""
    refused = []

    def watch(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception as error:
            refused.append(error)
            raise

    with connection.execute_wrapper(watch):
        assert users.add(replace(alice, id=UserId.new())) is False
    assert refused == []
    assert UserRow.objects.filter(email="alice@example.com").count() == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda alice: {"id": alice.id, "email": Email("bob@example.com")},  # the primary key
        lambda alice: {"id": UserId.new(), "email": Email("bob@example.com"), "failed_logins": -1},
    ],
    ids=["primary-key", "check"],
)
def test_any_other_violation_is_no_address_taken_but_raised(users, alice, change):
    with pytest.raises(IntegrityError):
        users.add(replace(alice, **change(alice)))
    # The savepoint was undone; the outer transaction goes on.
    assert not UserRow.objects.filter(email="bob@example.com").exists()


def _an_admin(users, email, **fields):
    user = make_user(FakeClock(), email=email, roles=("user", "admin"), **fields)
    assert users.add(user)
    return user


def test_the_active_admins_come_in_id_order_whatever_order_they_were_added_in(users):
    # Added in descending id order (the table's own order): PostgreSQL locks the rows in the
    # order the statement returns them, and only id order never deadlocks with another path.
    for n in (3, 2, 1):
        _an_admin(users, f"admin{n}@example.com", id=UserId(f"00000000-0000-0000-0000-{n:012}"))
    with transaction.atomic():
        admins = users.lock_active_admins(with_users=[])
    assert [a.email.value for a in admins] == [f"admin{n}@example.com" for n in (1, 2, 3)]


def _locked_elsewhere(user) -> bool:
    """Whether another connection finds the user's row locked (`FOR UPDATE NOWAIT`)."""

    def try_lock():
        try:
            with transaction.atomic():
                list(UserRow.objects.select_for_update(nowait=True).filter(pk=user.id.value))
        except OperationalError:
            return True
        return False

    thread, answers = in_thread(try_lock)
    thread.join(timeout=30)
    return answers[0]


@pytest.mark.django_db(transaction=True, databases=["default"])
def test_the_active_admins_are_locked_with_the_given_users_and_nobody_else(users):
    boss = _an_admin(users, "boss@example.com")
    plain, other = make_user(FakeClock()), make_user(FakeClock(), email="other@example.com")
    for user in (plain, other):
        assert users.add(user)
    with transaction.atomic():
        admins = users.lock_active_admins(with_users=[plain.id])
        assert [a.id for a in admins] == [boss.id]  # the users are locked, not counted
        locked = {u.email.value: _locked_elsewhere(u) for u in (boss, plain, other)}
    assert locked == {
        "boss@example.com": True,
        "alice@example.com": True,
        "other@example.com": False,
    }
