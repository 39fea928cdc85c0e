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
    token["sid"] = str(uuid.uuid4())  # every access token the accounts issue names its session
    if lifetime is not None:
        token.set_exp(lifetime=lifetime)
    for name, value in claims.items():
        token[name] = value
    return str(token)


def user_uuid(name: str) -> str:
    """A user id (a UUID, as the accounts issue them) that stands for `name` in a test."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-user:{name}"))


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


_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def non_canonical_signature(token: str) -> str:
    """The token whose signature's last character has an unused low bit set: it decodes to the
    same bytes (a lenient decoder takes it), but is not the text encoding them gives."""
    unused_bits = len(token.rpartition(".")[2]) % 4
    assert unused_bits in (2, 3), "a signature whose length leaves no unused bits"
    return token[:-1] + _BASE64URL[_BASE64URL.index(token[-1]) ^ 1]


def padded(token: str) -> str:
    """The token with base64's `=` padding after its signature (which PyJWT accepts)."""
    return token + "=" * (-len(token.rpartition(".")[2]) % 4)


# The same signed bytes in another text than the compact form (RFC 7515 §7.1: base64url without
# padding); each must be refused wherever a token is taken.
NOT_COMPACT = {
    "padded": padded,
    "trailing ==": lambda token: token + "==",
    "non-canonical signature": non_canonical_signature,
    "whitespace inside": lambda token: token[:-4] + "\t" + token[-4:],
}
# What only a text body can carry (a header's whitespace around its token is the header's).
NOT_COMPACT_TEXT = {
    **NOT_COMPACT,
    "leading space": lambda token: " " + token,
    "trailing newline": lambda token: token + "\n",
}
