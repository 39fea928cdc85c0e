"""Tokens that name the published key in their header (`kid`, as at `/.well-known/jwks.json`;
`apps.common.signing_keys`), which simplejwt's own encoder cannot write.
"""

from __future__ import annotations

import functools
from typing import Any

import jwt
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import Token

from apps.common.signing_keys import signing_key_id


class KeyedTokenBackend(TokenBackend):
    """simplejwt's backend (same key, algorithm, `aud`, `iss`) whose tokens name their key in
    the header: JWKS clients (PyJWKClient, API gateways) pick the verifying key by `kid`, and
    simplejwt's own `encode` takes no header."""

    def __init__(self, base: TokenBackend, key_id: str) -> None:
        super().__init__(
            algorithm=base.algorithm,
            signing_key=base.signing_key,
            verifying_key=base.verifying_key,
            audience=base.audience,
            issuer=base.issuer,
            leeway=base.leeway,
            json_encoder=base.json_encoder,
        )
        self.key_id = key_id

    def encode(self, payload: dict[str, Any]) -> str:
        # simplejwt's own `encode` (aud and iss added, then signed) with the header it cannot
        # be given; tests/e2e/accounts/test_rs256.py checks the result against the JWKS.
        claims = payload.copy()
        if self.audience is not None:
            claims["aud"] = self.audience
        if self.issuer is not None:
            claims["iss"] = self.issuer
        return jwt.encode(
            claims,
            self.prepared_signing_key,
            algorithm=self.algorithm,
            json_encoder=self.json_encoder,
            headers={"kid": self.key_id},
        )


@functools.lru_cache(maxsize=4)
def _keyed_backend(key_id: str) -> KeyedTokenBackend:
    return KeyedTokenBackend(token_backend, key_id)


def signed(token: Token) -> str:
    """`token` encoded as simplejwt does, its header naming the published key if there is one."""
    key_id = signing_key_id()
    return str(token) if key_id is None else _keyed_backend(key_id).encode(token.payload)
