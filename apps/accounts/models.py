"""ORM rows of the accounts context (database `default`). Entities never see these classes;
`repositories.py` maps between them."""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any, ClassVar

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.domain.accounts.user import UserStatus
from core.domain.accounts.values import Email, PasswordHash
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.maintenance import CreateUserError, NewUser


class UserManager(BaseUserManager["User"]):
    """Creates users for Django (`createsuperuser`, `create_user`) through `CreateUser`, so they
    follow the domain's rules as every other way in does: the address as register takes it, a
    user as register makes one, an administrator as the seed makes one."""

    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        """The user by email as login looks it up (`Email.lookup`), so `createsuperuser` finds
        `su@example.com` taken when given `SU@Example.com`, and admin sign-in is as forgiving
        as the API's."""
        email = Email.lookup(username) if isinstance(username, str) else None
        return self.get(**{self.model.USERNAME_FIELD: email.value if email else username})

    def create_user(self, email: str, password: str | None = None, *, full_name: str = "") -> User:
        return self._create(NewUser(email, PasswordHash(make_password(password)), full_name))

    def create_superuser(
        self, email: str, password: str | None = None, *, full_name: str = ""
    ) -> User:
        hashed = PasswordHash(make_password(password))
        return self._create(NewUser(email, hashed, full_name, administrator=True))

    def _create(self, command: NewUser) -> User:
        # Imported here: the composition root's repositories are built on this module's models.
        from apps.accounts import wiring

        match wiring.create_user().execute(command):
            case Ok(user):
                return self.get(pk=user.id.value)
            case Err(CreateUserError.INVALID_EMAIL):
                raise ValueError(f"{command.email!r} is not an email address register accepts")
            case Err(_):
                raise ValueError(f"an account with the email {command.email!r} already exists")


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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = NormalisedEmailField(max_length=254, unique=True)
    # A deleted account's address (`User.holds_email`): `email` then holds a placeholder of
    # its own, so the address may register again. Defaulted by the database too: a previous
    # release's workers insert users without it during a rolling deploy.
    deleted_email = models.CharField(max_length=254, blank=True, default="", db_default="")
    full_name = models.CharField(max_length=200, blank=True, default="")
    # The domain's statuses, labelled as the admin's filter shows them ("Active").
    status = models.CharField(
        max_length=16,
        choices=[(status.value, status.name.title()) for status in UserStatus],
        default=UserStatus.ACTIVE.value,
    )
    email_verified = models.BooleanField(default=False)
    roles = models.JSONField(default=list, blank=True)
    is_staff = models.BooleanField(default=False)
    # Set by whoever creates the user (the domain's clock), not by the database layer.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    tokens_valid_after = models.DateTimeField(null=True, blank=True)
    # When every session was last ended (logout-all, leaving `active`, a reset): part of the
    # session auth hash, so Django admin's cookie sessions signed in before then end too.
    sessions_ended_at = models.DateTimeField(null=True, blank=True)
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
        return self.status == UserStatus.ACTIVE

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        """Django's HMAC of the password, with `sessions_ended_at` mixed in once set: a cookie
        session (Django admin) signed in before every session of the user was ended
        (`User.end_sessions`: logout-all, the admin's "revoke sessions", leaving `active`, a
        reset) no longer matches and is logged out on its next request, as one signed in
        before a password change is. Unset, the hash is Django's own. `SECRET_KEY_FALLBACKS`
        go through here too (`get_session_auth_fallback_hash`)."""
        if self.sessions_ended_at is None:
            return str(super()._get_session_auth_hash(secret=secret))
        key_salt = "apps.accounts.models.User.get_session_auth_hash"
        ended = self.sessions_ended_at.astimezone(UTC).isoformat()
        return salted_hmac(
            key_salt, f"{self.password}\n{ended}", secret=secret, algorithm="sha256"
        ).hexdigest()

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
