"""Tokens for tests of token consumers: minted directly with simplejwt, or forged from a real
one (read, changed, signed again or not) with PyJWT."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken


def access_token(
    user_id: str | None = None,
    roles: tuple[str, ...] = ("user",),
    lifetime: timedelta | None = None,
    **claims,
) -> str:
    token = AccessToken()
    token["sub"] = user_id or str(uuid.uuid4())
    token["roles"] = list(roles)
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    for name, value in claims.items():
        token[name] = value
    return str(token)


def refresh_token(user_id: str | None = None) -> str:
    token = RefreshToken()
    token["sub"] = user_id or str(uuid.uuid4())
    return str(token)


def claims_of(token: str) -> dict:
    """A token's payload, its signature unchecked."""
    return jwt.decode(token, options={"verify_signature": False})


def signed(claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    """`claims` signed with the platform's key (or `key`) and `algorithm`."""
    return jwt.encode(claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm)


def tampered(token: str, **changes) -> str:
    """The token's own header and signature over a payload with `changes`."""
    header, _, signature = token.split(".")
    payload = jwt.utils.base64url_encode(
        jwt.api_jws.json.dumps({**claims_of(token), **changes}).encode()
    ).decode()
    return f"{header}.{payload}.{signature}"
