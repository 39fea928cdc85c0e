"""The key tokens are signed with, as the world sees it: its JWK set at
`/.well-known/jwks.json` and its id (`kid`) in each token's header, one value for both.

Here, not in the accounts, because the access-token verifier every context shares checks a
token's `kid` against it. With a shared secret (HS*) nothing is published and tokens carry no
`kid`.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
from typing import Any

from django.conf import settings
from jwt.algorithms import get_default_algorithms


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
