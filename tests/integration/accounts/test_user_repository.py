"""DjangoUserRepository.add on PostgreSQL: only the email's unique constraint means "taken"."""

from dataclasses import replace

import pytest
from django.db import IntegrityError

from apps.accounts.models import User as UserRow
from apps.accounts.repositories import DjangoUserRepository
from core.domain.accounts.values import Email, UserId
from tests.fakes.accounts import make_user
from tests.fakes.clock import FakeClock

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
