"""Output representations shared by the accounts views (inputs are nested in each view)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.common.openapi import pattern_schema
from apps.common.serializers import JSONString
from core.domain.accounts.passwords import MAX_PASSWORD_LENGTH
from core.domain.accounts.sessions import Session
from core.domain.accounts.user import User, UserStatus
from core.domain.accounts.values import (
    MAX_EMAIL_LENGTH,
    NAME_MESSAGE,
    ROLE_PATTERN,
    Email,
    is_email_shaped,
    is_valid_full_name,
    is_valid_role,
)
from core.usecases.accounts.authentication import SignedIn


def password_field(**kwargs: Any) -> serializers.CharField:
    """Passwords are taken verbatim (no trimming), as JSON strings only, and never echoed."""
    return JSONString(
        trim_whitespace=False, max_length=MAX_PASSWORD_LENGTH, write_only=True, **kwargs
    )


@extend_schema_field(OpenApiTypes.EMAIL)
class EmailAddressField(JSONString):
    """An email address as the domain accepts it (`Email.parse`: normalised, then validated);
    its value is the normalised address. With `lookup`, text shaped like an address
    (`is_email_shaped`), as sent: the use case looks an account up by it (`Email.lookup`), and
    one that can name none (`ß@x.io`) is answered as an unknown address is."""

    default_error_messages = {"invalid": "Enter a valid email address."}

    def __init__(self, *, lookup: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_EMAIL_LENGTH)
        super().__init__(**kwargs)
        self._lookup = lookup

    def to_internal_value(self, data: Any) -> str:
        text: str = super().to_internal_value(data)
        if self._lookup:
            if not is_email_shaped(text):
                self.fail("invalid")
            return text
        email = Email.parse(text)
        if email is None:
            self.fail("invalid")
        return email.value


class FullNameField(JSONString):
    """A person's name as the domain accepts it (`is_valid_full_name`: one line, no control
    characters), at most 200 characters; blank is no name."""

    default_error_messages = {"not_a_name": NAME_MESSAGE}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        name = super().to_internal_value(data)
        if not is_valid_full_name(name):
            self.fail("not_a_name")
        return name


ROLE_SCHEMA = pattern_schema(ROLE_PATTERN, max_length=50)


@extend_schema_field(ROLE_SCHEMA)
class RoleField(serializers.CharField):
    """A role as the domain accepts it (`is_valid_role`: a short lowercase slug); a JSON string,
    never a number coerced to one."""

    default_error_messages = {
        "not_a_string": "Not a valid string.",
        "invalid": "Roles are short lowercase slugs (`user`, `admin`, `billing:read`).",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        role = super().to_internal_value(data)
        if not is_valid_role(role):
            self.fail("invalid")
        return role


class UserOutput(serializers.Serializer):
    """A user as clients see it: never a password, hash or token."""

    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    status = serializers.ChoiceField(choices=[s.value for s in UserStatus])
    email_verified = serializers.BooleanField()
    roles = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    last_login_at = serializers.DateTimeField(allow_null=True)


def user_body(user: User) -> dict[str, Any]:
    return UserOutput(
        {
            "id": user.id.value,
            "email": user.email.value,
            "full_name": user.full_name,
            "status": user.status.value,
            "email_verified": user.email_verified,
            "roles": list(user.roles),
            "created_at": user.created_at,
            "last_login_at": user.last_login_at,
        }
    ).data


class TokenPairOutput(serializers.Serializer):
    """What login and refresh answer."""

    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds the access token is valid (1800).")
    refresh_expires_in = serializers.IntegerField(
        help_text="Seconds until the refresh token (and its session) expires."
    )
    user = UserOutput()


def token_pair_body(signed_in: SignedIn) -> dict[str, Any]:
    """The lifetimes count from when the pair was signed (`exp` - `iat`), on the use cases'
    clock: never a second reading of the wall clock, which may tell another time."""
    tokens = signed_in.tokens
    access_left = tokens.access_expires_at - tokens.issued_at
    refresh_left = tokens.refresh_expires_at - tokens.issued_at
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "Bearer",
        "expires_in": int(access_left.total_seconds()),
        "refresh_expires_in": max(0, int(refresh_left.total_seconds())),
        "user": user_body(signed_in.user),
    }


class SessionOutput(serializers.Serializer):
    """A live refresh family of the caller."""

    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()
    user_agent = serializers.CharField()
    ip = serializers.CharField()


def session_body(session: Session) -> dict[str, Any]:
    return SessionOutput(
        {
            "id": session.id,
            "created_at": session.created_at,
            "last_used_at": session.last_used_at,
            "user_agent": session.user_agent,
            "ip": session.ip,
        }
    ).data


class AcceptedOutput(serializers.Serializer):
    """The same answer whether or not the address has an account."""

    detail = serializers.CharField()
