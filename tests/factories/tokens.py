"""Access tokens minted directly with simplejwt, for tests of token consumers."""

from __future__ import annotations

import uuid
from datetime import timedelta

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
