"""DRF authentication by bearer access token, stateless: no database query per request.

`request.user` becomes a `TokenUser` wrapping the verified `Principal`; views that need the
full user load it through their own use case.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.common.logging import bind_user
from apps.common.tokens import SimpleJWTAccessTokenVerifier
from core.domain.shared.bearer import bearer_token
from core.domain.shared.identity import Principal, TokenError
from core.domain.shared.result import Err, Ok

# The challenge of every 401 about a bearer token (RFC 6750), also those a view answers after
# loading the token's user.
BEARER_CHALLENGE = 'Bearer realm="api"'
_DETAILS = {
    TokenError.INVALID: "The access token is not valid.",
    TokenError.EXPIRED: "The access token has expired.",
    TokenError.REVOKED: "The access token has been revoked.",
}


class TokenUser:
    """What `request.user` is for a bearer-token request: the principal, DRF-compatible."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, principal: Principal, raw_token: str) -> None:
        self.principal = principal
        self.raw_token = raw_token

    @property
    def id(self) -> str:
        return self.principal.user_id

    pk = id

    def __str__(self) -> str:
        return self.principal.user_id


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access token>` (`bearer_token`); absent header or another scheme
    means anonymous."""

    def __init__(self) -> None:
        self._verifier = SimpleJWTAccessTokenVerifier()

    def authenticate(self, request: Any) -> tuple[TokenUser, str] | None:
        match bearer_token(get_authorization_header(request)):
            case Ok(None):
                return None
            case Ok(bytes() as token) if token.isascii():
                raw = token.decode("ascii")
            case _:
                raise exceptions.AuthenticationFailed(
                    _DETAILS[TokenError.INVALID], code="token_invalid"
                )
        match self._verifier.verify(raw):
            case Ok(principal):
                bind_user(request._request, principal.user_id)
                return TokenUser(principal, raw), raw
            case Err(error):
                raise exceptions.AuthenticationFailed(_DETAILS[error], code=str(error.value))
        raise AssertionError("unreachable")  # pragma: no cover

    def authenticate_header(self, request: Any) -> str:
        return BEARER_CHALLENGE
