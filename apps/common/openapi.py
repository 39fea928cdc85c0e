"""OpenAPI helpers: the problem-document schema and per-status error responses for views."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ProblemSerializer = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text="Stable machine-readable error code."),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            help_text="Field errors, for `validation_error`.",
        ),
    },
)


def problems(codes: Mapping[int, Iterable[str]]) -> dict[int, OpenApiResponse]:
    """`{status: OpenApiResponse}` documenting which problem codes each status may carry."""
    return {
        status: OpenApiResponse(
            response=ProblemSerializer,
            description="Problem document; `code` is one of: "
            + ", ".join(f"`{code}`" for code in sorted(set(names))),
        )
        for status, names in codes.items()
    }


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents `BearerTokenAuthentication` as the `bearerAuth` security scheme (JWT)."""

    target_class = "apps.common.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
