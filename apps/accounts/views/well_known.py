"""`/.well-known/jwks.json`: the public key, when tokens are signed asymmetrically."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.apiviews import PlatformAPIView
from apps.common.exceptions import ProblemError
from apps.common.openapi import problems
from apps.common.signing_keys import public_jwks


class JwksView(PlatformAPIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(
        operation_id="jwks",
        responses={
            200: inline_serializer(
                name="Jwks", fields={"keys": serializers.ListField(child=serializers.DictField())}
            ),
            **problems({404: ["not_found"]}),
        },
    )
    def get(self, request: Request) -> Response:
        jwks = public_jwks()
        if jwks is None:
            raise ProblemError(404, "not_found", "Tokens are signed with a shared secret.")
        response = Response(jwks)
        response["Cache-Control"] = "public, max-age=300"
        return response
