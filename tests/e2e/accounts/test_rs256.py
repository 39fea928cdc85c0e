"""Asymmetric signing: tokens verify against the key published at /.well-known/jwks.json."""

import httpx
import jwt
import pytest

from tests.e2e.accounts.conftest import ADMIN

pytestmark = pytest.mark.e2e


def test_rs256_tokens_verify_with_the_published_jwk(rs256_server):
    with httpx.Client(base_url=rs256_server.url, timeout=10) as http:
        pair = http.post("/api/v1/auth/login", json=ADMIN).json()
        me = http.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.json()["roles"] == ["user", "admin"]
        jwks = http.get("/.well-known/jwks.json").json()
    key = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(
        pair["access_token"],
        key.key,
        algorithms=["RS256"],
        audience="platform-api",
        issuer="platform",
    )
    assert claims["type"] == "access"
    assert claims["roles"] == ["user", "admin"]
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "RS256"
