"""ORM rows of the accounts context (database `default`). Entities never see these classes;
`repositories.py` maps between them."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from core.domain.accounts.values import Email


class UserManager(BaseUserManager["User"]):
    """Creates users (`createsuperuser`) with the email normalised as accounts store it and a
    hashed password."""

    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        """The user by email as login looks it up (`Email.lookup`), so `createsuperuser` finds
        `su@example.com` taken when given `SU@Example.com`, and admin sign-in is as forgiving
        as the API's."""
        email = Email.lookup(username) if isinstance(username, str) else None
        return self.get(**{self.model.USERNAME_FIELD: email.value if email else username})

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        normalised = Email.lookup(email)  # the host in A-labels too: one mailbox, one account
        user = self.model(
            email=normalised.value if normalised else email.strip().casefold(), **fields
        )
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(
            is_staff=True, is_superuser=True, email_verified=True, roles=["user", "admin"]
        )
        return self.create_user(email, password, **fields)


class NormalisedEmailField(models.EmailField):  # type: ignore[type-arg]
    """The account's address. `clean` (model validation, and `createsuperuser`'s check of its
    `--email`) normalises it as register does (`Email.parse`) before validating, so a padded or
    upper-case address is accepted as the API would accept it, and the value checked is the one
    stored. Queries and saves are untouched: rows stored under earlier rules still load."""

    def clean(self, value: Any, model_instance: Any) -> Any:
        email = Email.parse(value) if isinstance(value, str) else None
        if email is None:
            raise ValidationError("Enter a valid email address.", code="invalid")
        return super().clean(email.value, model_instance)


class User(AbstractBaseUser, PermissionsMixin):
    """A person with an account; also Django admin's user model."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        SUSPENDED = "suspended"
        DELETED = "deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = NormalisedEmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    email_verified = models.BooleanField(default=False)
    roles = models.JSONField(default=list, blank=True)
    is_staff = models.BooleanField(default=False)
    # Set by whoever creates the user (the domain's clock), not by the database layer.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    tokens_valid_after = models.DateTimeField(null=True, blank=True)
    failed_logins = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = "accounts_user"
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["status"])]

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.status == self.Status.ACTIVE

    def __str__(self) -> str:
        return self.email


class RefreshSession(models.Model):
    """One login: a refresh-token family whose `current_jti` is the only usable refresh token."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    current_jti = models.CharField(max_length=64)
    access_jti = models.CharField(max_length=64, blank=True, default="")
    access_expires_at = models.DateTimeField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True, default="")
    ip = models.CharField(max_length=45, blank=True, default="")
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Why it was revoked (`SessionEnd`); "" while it lives, and for families ended before
    # reasons were kept.
    # Defaulted by the database too: a previous release's workers insert rows without it
    # during a rolling deploy.
    revoked_reason = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        db_table = "accounts_session"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "revoked_at", "expires_at"]),
            models.Index(fields=["expires_at"]),
        ]

    def __str__(self) -> str:
        return f"session {self.id} of {self.user_id}"


class OneTimeToken(models.Model):
    """A single-use email token (verification, password reset); only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="one_time_tokens")
    purpose = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_one_time_token"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "purpose"]),
            models.Index(fields=["expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} token of {self.user_id}"
