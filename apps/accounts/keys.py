"""The key tokens are signed with, as the world sees it: its JWK set at
`/.well-known/jwks.json` and its id (`kid`) in each token's header, one value for both.

With a shared secret (HS*) nothing is published and tokens carry no `kid`.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
from typing import Any

import jwt
from django.conf import settings
from jwt.algorithms import get_default_algorithms
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import Token


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint, the key id when JWT_KEY_ID is not set."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@functools.lru_cache(maxsize=4)
def _jwks(algorithm: str, verifying_key: str | None, key_id: str | None) -> dict[str, Any] | None:
    if not algorithm.startswith(("RS", "ES")) or not verifying_key:
        return None
    signer = get_default_algorithms()[algorithm]
    jwk: dict[str, Any] = signer.to_jwk(signer.prepare_key(verifying_key), as_dict=True)
    jwk.update(use="sig", alg=algorithm, kid=key_id or _thumbprint(jwk))
    return {"keys": [jwk]}


def public_jwks() -> dict[str, Any] | None:
    """The JWK set of the configured public key, or None for HMAC signing."""
    found = _jwks(settings.JWT_ALGORITHM, settings.JWT_VERIFYING_KEY, settings.JWT_KEY_ID)
    return copy.deepcopy(found)


def signing_key_id() -> str | None:
    """The published key's `kid`, or None when nothing is published (HMAC signing)."""
    found = _jwks(settings.JWT_ALGORITHM, settings.JWT_VERIFYING_KEY, settings.JWT_KEY_ID)
    return None if found is None else str(found["keys"][0]["kid"])


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
