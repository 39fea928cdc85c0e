"""Views of `/api/v1/users`: the admin's list and changes, and reading one user.

Thin as the auth views: parse, call one use case from `wiring`, map the `Result`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import wiring
from apps.accounts.errors import ERRORS
from apps.accounts.serializers import ROLE_SCHEMA, FullNameField, RoleField, UserOutput, user_body
from apps.accounts.views.base import AccountsView
from apps.common.openapi import BEARER_401, problems
from apps.common.pagination import PageNumberField, PagePagination, page_parameters
from apps.common.permissions import IsAdmin, IsAuthenticated
from apps.common.serializers import RejectsUnknownFields
from core.domain.accounts.user import UserStatus
from core.domain.accounts.values import MAX_ROLES
from core.domain.shared.result import Err, Ok
from core.usecases.accounts.admin import UserChanges
from core.usecases.accounts.ports import UserQuery

STATUSES = [s.value for s in UserStatus]
USER_ID = OpenApiParameter(
    "user_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description=(
        "The user's id: a UUID in its canonical 8-4-4-4-12 form, either letter case; any "
        "other spelling is 404 (403 for a non-admin, as any id but their own)."
    ),
)


class UserListView(AccountsView):
    permission_classes = [IsAdmin]

    @extend_schema_serializer(component_name="UserListQuery")
    class QuerySerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254, required=False)
        status = serializers.ChoiceField(choices=STATUSES, required=False)
        role = RoleField(required=False)
        page = PageNumberField(min_value=1, default=1)
        page_size = PageNumberField(min_value=1, default=PagePagination.page_size)

    @extend_schema(
        operation_id="users_list",
        parameters=[
            OpenApiParameter("email", str, description="Part of the email address."),
            OpenApiParameter("status", str, enum=STATUSES),
            OpenApiParameter("role", ROLE_SCHEMA, description="A role the user holds."),
            *page_parameters("Users"),
        ],
        responses={
            200: inline_serializer(
                name="UserPage",
                fields={
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": UserOutput(many=True),
                },
            ),
            **problems(
                {
                    400: ["validation_error"],
                    **BEARER_401,
                    403: ["permission_denied"],
                    404: ["not_found"],  # a page past the end, as every paginated list
                }
            ),
        },
    )
    def get(self, request: Request) -> Response:
        serializer = self.QuerySerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # Larger sizes are cut to the largest, as PagePagination does on every other list.
        page, size = data["page"], min(data["page_size"], PagePagination.max_page_size)
        query = UserQuery(
            email=data.get("email"),
            status=UserStatus(data["status"]) if "status" in data else None,
            role=data.get("role"),
            offset=(page - 1) * size,
            limit=size,
        )
        match wiring.list_users().execute(request.user.principal, query):
            case Ok(result):
                pass
            case Err(error):
                ERRORS.raise_for_caller(error)
        if page > 1 and not result.items:  # the users are paged in the database: same answer
            raise NotFound("Invalid page.")  # as PagePagination past the end of other lists
        return Response(
            {
                "count": result.total,
                "next": self._link(request, page + 1) if page * size < result.total else None,
                "previous": self._link(request, page - 1) if page > 1 else None,
                "results": [user_body(user) for user in result.items],
            }
        )

    @staticmethod
    def _link(request: Request, page: int) -> str:
        params = request.query_params.copy()
        params["page"] = str(page)
        return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


class UserDetailView(AccountsView):
    @extend_schema_serializer(component_name="UserChangeInput")
    class InputSerializer(RejectsUnknownFields):
        """What an admin changes of a user; any other field (`email`, `is_staff`) is refused."""

        status = serializers.ChoiceField(choices=STATUSES, required=False)
        roles = serializers.ListField(child=RoleField(), max_length=MAX_ROLES, required=False)
        full_name = FullNameField(required=False)

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.request.method == "PATCH" else [IsAuthenticated()]

    @extend_schema(
        operation_id="users_read",
        parameters=[USER_ID],
        responses={
            200: UserOutput,
            **problems({**BEARER_401, 403: ["permission_denied"], 404: ["not_found"]}),
        },
    )
    def get(self, request: Request, user_id: str) -> Response:
        match wiring.get_user().execute(request.user.principal, user_id):
            case Ok(user):
                return Response(user_body(user))
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover

    @extend_schema(
        operation_id="users_update",
        description=(
            "Change a user's status, roles or name. Leaving `active` revokes the user's tokens "
            "and ends their sessions; new roles revoke their access tokens. A change that would "
            "leave no active admin — the `admin` role taken from the last active admin, or a "
            "status other than `active` given to them, the caller themself included — is "
            "refused with nothing changed: 400 `validation_error`, the field under `errors` "
            '(`{"roles": [...]}` or `{"status": [...]}`).'
        ),
        parameters=[USER_ID],
        request=InputSerializer,
        responses={
            200: UserOutput,
            **problems(
                {
                    400: ["validation_error", "illegal_status_transition", "user_deleted"],
                    **BEARER_401,
                    403: ["permission_denied"],
                    404: ["not_found"],
                }
            ),
        },
    )
    def patch(self, request: Request, user_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changes = UserChanges(
            status=UserStatus(data["status"]) if "status" in data else None,
            roles=tuple(data["roles"]) if "roles" in data else None,
            full_name=data.get("full_name"),
        )
        match wiring.update_user().execute(user_id, changes, caller=request.user.principal):
            case Ok(user):
                return Response(user_body(user))
            case Err(error):
                ERRORS.raise_for_caller(error)
        raise AssertionError("unreachable")  # pragma: no cover
