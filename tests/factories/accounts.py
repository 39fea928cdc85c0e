"""factory-boy factories of accounts rows, and helpers to log in over the API."""

from __future__ import annotations

import factory

from apps.accounts.models import User
from core.domain.accounts.user import UserStatus

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    """An active, verified user with role `user` and the password `PASSWORD`."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    status = UserStatus.ACTIVE.value
    email_verified = True
    roles = factory.LazyFunction(lambda: ["user"])

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


class AdminFactory(UserFactory):
    roles = factory.LazyFunction(lambda: ["user", "admin"])
    is_staff = True
