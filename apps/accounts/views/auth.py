"""Views of `/api/v1/auth/`: registration, verification, login, tokens, profile, sessions.

Each parses its input with a nested serializer, calls one use case from `wiring`, and maps the
`Result`: `Ok` to the body, `Err` through `ERRORS`. No model or repository is imported here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import ratelimits, wiring
from apps.accounts.errors import ERRORS, reject_password
from apps.accounts.serializers import (
    AcceptedOutput,
    EmailAddressField,
    FullNameField,
    SessionOutput,
    TokenPairOutput,
    UserOutput,
    password_field,
    session_body,
    token_pair_body,
    user_body,
)
from apps.accounts.views.base import AccountsView
from apps.common.clientip import client_ip
from apps.common.openapi import BEARER_401, problems
from apps.common.permissions import IsAuthenticated
from apps.common.serializers import JSONString
from core.domain.accounts.passwords import PasswordRejected
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.authentication import Credentials
from core.usecases.accounts.registration import Registration

VALIDATION = "validation_error"
RATE_LIMITED = {429: ["rate_limited"]}


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PublicView(AccountsView):
    """Endpoints anyone may call; a stray Authorization header is ignored."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []


class RegisterView(PublicView):
    @extend_schema_serializer(component_name="RegisterInput")
    class InputSerializer(serializers.Serializer):
        email = EmailAddressField()
        password = password_field()
        full_name = FullNameField(required=False, default="")

    @extend_schema(
        operation_id="auth_register",
        request=InputSerializer,
        responses={
            201: UserOutput,
            **problems({400: [VALIDATION], 409: ["email_taken"], **RATE_LIMITED}),
        },
    )
    def post(self, request: Request) -> Response:
        ratelimits.enforce(request, "register")
        data = _valid(self.InputSerializer, request)
        match wiring.register_user().execute(Registration(**data)):
            case Ok(user):
                return Response(user_body(user), status=status.HTTP_201_CREATED)
            case Err(PasswordRejected() as rejected):
                reject_password(rejected)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class VerifyEmailView(PublicView):
    @extend_schema_serializer(component_name="VerifyEmailInput")
    class InputSerializer(serializers.Serializer):
        token = JSONString(max_length=200)

    @extend_schema(
        operation_id="auth_verify_email",
        request=InputSerializer,
        responses={200: UserOutput, **problems({400: [VALIDATION, "invalid_token"]})},
    )
    def post(self, request: Request) -> Response:
        data = _valid(self.InputSerializer, request)
        match wiring.verify_email().execute(data["token"]):
            case Ok(user):
                return Response(user_body(user))
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class EmailInput(serializers.Serializer):
    """A malformed address is a field error, as an empty one is: the answer depends only on the
    text sent, so it says nothing about which accounts exist."""

    email = EmailAddressField(lookup=True)


class ResendVerificationView(PublicView):
    @extend_schema(
        operation_id="auth_verify_email_resend",
        request=EmailInput,
        responses={202: AcceptedOutput, **problems({400: [VALIDATION], **RATE_LIMITED})},
    )
    def post(self, request: Request) -> Response:
        ratelimits.enforce(request, "verification_resend")
        data = _valid(EmailInput, request)
        wiring.resend_verification().execute(data["email"])
        return Response(
            {"detail": "If this address has an unverified account, an email is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class LoginView(PublicView):
    @extend_schema_serializer(component_name="LoginInput")
    class InputSerializer(serializers.Serializer):
        email = JSONString(max_length=254)
        password = password_field()

    @extend_schema(
        operation_id="auth_login",
        request=InputSerializer,
        responses={
            200: TokenPairOutput,
            **problems(
                {
                    400: [VALIDATION],
                    401: ["invalid_credentials"],
                    403: ["email_not_verified", "account_inactive"],
                    **RATE_LIMITED,
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        ratelimits.enforce(request, "login")
        data = _valid(self.InputSerializer, request)
        credentials = Credentials(
            email=data["email"],
            password=data["password"],
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            ip=client_ip(request),
        )
        match wiring.authenticate_user().execute(credentials):
            case Ok(signed_in):
                return Response(token_pair_body(signed_in))
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class RefreshTokenInput(serializers.Serializer):
    # Taken as sent: a token with whitespace around it is not the token (`is_compact_jws`).
    refresh_token = JSONString(max_length=4096, trim_whitespace=False)


class RefreshView(PublicView):
    @extend_schema(
        operation_id="auth_refresh",
        request=RefreshTokenInput,
        responses={
            200: TokenPairOutput,
            **problems(
                {
                    400: [VALIDATION],
                    401: ["token_invalid", "token_expired", "token_reused", "account_inactive"],
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = _valid(RefreshTokenInput, request)
        match wiring.refresh_tokens().execute(data["refresh_token"]):
            case Ok(signed_in):
                return Response(token_pair_body(signed_in))
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class AuthenticatedView(AccountsView):
    permission_classes = [IsAuthenticated]


class LogoutView(AuthenticatedView):
    @extend_schema(
        operation_id="auth_logout",
        request=RefreshTokenInput,
        responses={204: None, **problems({400: [VALIDATION], **BEARER_401})},
    )
    def post(self, request: Request) -> Response:
        data = _valid(RefreshTokenInput, request)
        match wiring.logout().execute(request.user.principal, data["refresh_token"]):
            case Ok(_):
                return Response(status=status.HTTP_204_NO_CONTENT)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class LogoutAllView(AuthenticatedView):
    @extend_schema(
        operation_id="auth_logout_all", request=None, responses={204: None, **problems(BEARER_401)}
    )
    def post(self, request: Request) -> Response:
        principal = request.user.principal
        match wiring.logout_all().execute(principal.user_id, caller=principal):
            case Ok(_):
                return Response(status=status.HTTP_204_NO_CONTENT)
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover


class MeView(AuthenticatedView):
    @extend_schema_serializer(component_name="ProfileInput")
    class InputSerializer(serializers.Serializer):
        full_name = FullNameField(required=False)

    @extend_schema(operation_id="auth_me", responses={200: UserOutput, **problems(BEARER_401)})
    def get(self, request: Request) -> Response:
        match wiring.get_current_user().execute(request.user.principal):
            case Ok(user):
                return Response(user_body(user))
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover

    @extend_schema(
        operation_id="auth_me_update",
        request=InputSerializer,
        responses={200: UserOutput, **problems({400: [VALIDATION], **BEARER_401})},
    )
    def patch(self, request: Request) -> Response:
        data = _valid(self.InputSerializer, request)
        match wiring.update_profile().execute(
            request.user.principal, full_name=data.get("full_name")
        ):
            case Ok(user):
                return Response(user_body(user))
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover


class PasswordChangeView(AuthenticatedView):
    @extend_schema_serializer(component_name="PasswordChangeInput")
    class InputSerializer(serializers.Serializer):
        current_password = password_field()
        new_password = password_field()

    @extend_schema(
        operation_id="auth_password_change",
        request=InputSerializer,
        responses={
            204: None,
            **problems({400: [VALIDATION, "invalid_credentials"], **BEARER_401, **RATE_LIMITED}),
        },
    )
    def post(self, request: Request) -> Response:
        ratelimits.enforce(request, "password_change", per_user=True)
        data = _valid(self.InputSerializer, request)
        match wiring.change_password().execute(request.user.principal, **data):
            case Ok(_):
                return Response(status=status.HTTP_204_NO_CONTENT)
            case Err(PasswordRejected() as rejected):
                reject_password(rejected)
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover


class PasswordResetView(PublicView):
    @extend_schema(
        operation_id="auth_password_reset",
        request=EmailInput,
        responses={202: AcceptedOutput, **problems({400: [VALIDATION], **RATE_LIMITED})},
    )
    def post(self, request: Request) -> Response:
        ratelimits.enforce(request, "password_reset")
        data = _valid(EmailInput, request)
        wiring.request_password_reset().execute(data["email"])
        return Response(
            {"detail": "If this address has an account, a reset token is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class PasswordResetConfirmView(PublicView):
    @extend_schema_serializer(component_name="PasswordResetConfirmInput")
    class InputSerializer(serializers.Serializer):
        token = JSONString(max_length=200)
        new_password = password_field()

    @extend_schema(
        operation_id="auth_password_reset_confirm",
        request=InputSerializer,
        responses={204: None, **problems({400: [VALIDATION, "invalid_token"]})},
    )
    def post(self, request: Request) -> Response:
        data = _valid(self.InputSerializer, request)
        match wiring.reset_password().execute(data["token"], data["new_password"]):
            case Ok(_):
                return Response(status=status.HTTP_204_NO_CONTENT)
            case Err(PasswordRejected() as rejected):
                reject_password(rejected)
            case Err(error):
                ERRORS.raise_for(error)
        raise AssertionError("unreachable")  # pragma: no cover


class SessionListView(AuthenticatedView):
    @extend_schema(
        operation_id="auth_sessions",
        responses={200: SessionOutput(many=True), **problems(BEARER_401)},
    )
    def get(self, request: Request) -> Response:
        match wiring.list_sessions().execute(request.user.principal):
            case Ok(sessions):
                return Response([session_body(s) for s in sessions])
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover


class SessionDetailView(AuthenticatedView):
    @extend_schema(
        operation_id="auth_session_revoke",
        parameters=[
            OpenApiParameter(
                "session_id",
                OpenApiTypes.UUID,
                OpenApiParameter.PATH,
                description=(
                    "The session's id: a UUID in its canonical 8-4-4-4-12 form, either letter "
                    "case; any other spelling is 404."
                ),
            )
        ],
        responses={204: None, **problems({404: ["not_found"], **BEARER_401})},
    )
    def delete(self, request: Request, session_id: str) -> Response:
        match wiring.revoke_session().execute(request.user.principal, session_id):
            case Ok(_):
                return Response(status=status.HTTP_204_NO_CONTENT)
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover
