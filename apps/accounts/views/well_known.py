"""`/.well-known/jwks.json`: the public key, when tokens are signed asymmetrically."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from jwt.algorithms import get_default_algorithms
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.common.apiviews import PlatformAPIView
from apps.common.exceptions import ProblemError
from apps.common.openapi import problems


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint, the key id when JWT_KEY_ID is not set."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwks() -> dict[str, Any] | None:
    """The JWK set of the configured public key, or None for HMAC signing."""
    algorithm, key = settings.JWT_ALGORITHM, settings.JWT_VERIFYING_KEY
    if not algorithm.startswith(("RS", "ES")) or not key:
        return None
    signer = get_default_algorithms()[algorithm]
    jwk: dict[str, Any] = signer.to_jwk(signer.prepare_key(key), as_dict=True)
    jwk.update(use="sig", alg=algorithm, kid=settings.JWT_KEY_ID or _thumbprint(jwk))
    return {"keys": [jwk]}


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
