"""The accounts app's one error table: use-case error code → HTTP status and human detail."""

from __future__ import annotations

from typing import NoReturn

from rest_framework.exceptions import ValidationError

from apps.common.errors import ErrorTable, FieldError
from core.domain.accounts.passwords import PasswordRejected
from core.usecases.accounts.admin import GetUserError, UpdateUserError
from core.usecases.accounts.authentication import AuthenticateError, LogoutError, RefreshError
from core.usecases.accounts.caller import CurrentUserError
from core.usecases.accounts.password_reset import ResetPasswordError
from core.usecases.accounts.profile import ChangePasswordError
from core.usecases.accounts.registration import RegisterError, VerifyEmailError
from core.usecases.accounts.sessions import RevokeSessionError

LAST_ADMIN_MESSAGE = (
    "This would leave no active admin: the last active admin keeps the admin role and stays "
    "active until another user is an active admin."
)

ERRORS = ErrorTable(
    # A list, not a dict: several use cases share a code (equal StrEnum members collide).
    [
        (RegisterError.EMAIL_TAKEN, (409, "An account with this email already exists.")),
        (RegisterError.INVALID_EMAIL, (400, "Enter a valid email address.")),
        (VerifyEmailError.INVALID, (400, "The token is unknown, used or expired.")),
        (AuthenticateError.INVALID_CREDENTIALS, (401, "The email or password is not correct.")),
        (AuthenticateError.EMAIL_NOT_VERIFIED, (403, "Confirm your email address first.")),
        (AuthenticateError.ACCOUNT_INACTIVE, (403, "This account is not active.")),
        (RefreshError.INVALID, (401, "The refresh token is not valid.")),
        (RefreshError.EXPIRED, (401, "The refresh token has expired.")),
        (
            RefreshError.REUSED,
            (
                401,
                "The refresh token was already used; the session has been ended.",
            ),
        ),
        (RefreshError.ACCOUNT_INACTIVE, (401, "This account is not active.")),
        (LogoutError.INVALID, (401, "The refresh token is not valid for this user.")),
        (CurrentUserError.UNKNOWN_USER, (401, "The access token's user no longer exists.")),
        (CurrentUserError.TOKEN_REVOKED, (401, "The access token has been revoked.")),
        (ChangePasswordError.INVALID_CREDENTIALS, (400, "The current password is not correct.")),
        (ChangePasswordError.UNKNOWN_USER, (401, "The access token's user no longer exists.")),
        (ChangePasswordError.TOKEN_REVOKED, (401, "The access token has been revoked.")),
        (ResetPasswordError.INVALID, (400, "The token is unknown, used or expired.")),
        (RevokeSessionError.NOT_FOUND, (404, "You have no live session with this id.")),
        (GetUserError.FORBIDDEN, (403, "Only admins may see other users.")),
        (GetUserError.NOT_FOUND, (404, "No user has this id.")),
        (UpdateUserError.NOT_FOUND, (404, "No user has this id.")),
        (
            UpdateUserError.ILLEGAL_TRANSITION,
            (
                400,
                "This status change is not allowed (deleted is final; inactive and suspended "
                "users can only be reactivated or deleted).",
            ),
        ),
        (UpdateUserError.INVALID_ROLE, (400, "Roles are short lowercase slugs.")),
        (UpdateUserError.USER_DELETED, (400, "A deleted user is final: nothing of it changes.")),
        # The field whose change would end the last admin, as a field error of the request.
        (UpdateUserError.LAST_ADMIN_ROLE, FieldError("roles", LAST_ADMIN_MESSAGE)),
        (UpdateUserError.LAST_ADMIN_STATUS, FieldError("status", LAST_ADMIN_MESSAGE)),
        (UpdateUserError.LAST_ADMIN_VERIFICATION, FieldError("email_verified", LAST_ADMIN_MESSAGE)),
    ]
)


def reject_password(rejected: PasswordRejected) -> NoReturn:
    """A password the policy refused is a field error (400 `validation_error`)."""
    raise ValidationError({rejected.field: list(rejected.messages)})
