"""How a request's `Authorization` field names a bearer token (RFC 6750 §2.1). One rule for
the platform's API and the gateway's edge, so one header means the same at the edge and
behind it.
"""

from __future__ import annotations

from core.domain.shared.identity import TokenError
from core.domain.shared.result import Err, Ok, Result

_BEARER = b"bearer"


def bearer_token(authorization: bytes) -> Result[bytes | None, TokenError]:
    """The token an `Authorization` value carries: Ok(None) when it carries no bearer
    credential (empty, another scheme), Ok(token) for the scheme `Bearer` in any case and one
    token, split on ASCII whitespace as DRF splits it, and `TokenError.INVALID` for a Bearer
    credential that is not exactly that.

    Servers join repeated field lines with commas (gunicorn: "," into `HTTP_AUTHORIZATION`),
    and `Authorization` holds one credential (RFC 9110 §11.6.2), so a comma-joined value of
    which any member starts with the Bearer scheme (`Basic …,Bearer …` included) is refused
    whole: read as the first member's scheme, a second line's token was passed on unchecked.
    A non-ASCII token is refused by whoever decodes it.
    """
    parts = authorization.split()
    if not parts:
        return Ok(None)
    if b"," in authorization and _bearer_among(authorization.split(b",")):
        return Err(TokenError.INVALID)
    if parts[0].lower() != _BEARER:
        return Ok(None)
    if len(parts) != 2:
        return Err(TokenError.INVALID)
    return Ok(parts[1])


def _bearer_among(members: list[bytes]) -> bool:
    for member in members:
        words = member.split(None, 1)
        if words and words[0].lower() == _BEARER:
            return True
    return False
