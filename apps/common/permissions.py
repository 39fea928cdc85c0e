"""DRF permissions on the token's roles (no database query)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from apps.common.authentication import TokenUser


class IsAuthenticated(BasePermission):
    """A valid, unrevoked access token was presented."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, TokenUser)


class IsAdmin(BasePermission):
    """The access token's `roles` contain `admin`."""

    message = "This endpoint needs the admin role."

    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, TokenUser) and request.user.principal.is_admin
